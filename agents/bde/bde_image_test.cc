#include "agents/bde/bde_image.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace chaoslab::bde {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

// A temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bde-test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Looks like the start of a winsim system disk: a FAT32 boot sector and a directory with the
// names the lab cares about, repeated so that every 512-byte sector has some of them.
std::string FakeFatVolume(size_t bytes) {
  std::string v(bytes, '\0');
  std::string boot = "\xeb\x58\x90mkfs.fat";
  v.replace(0, boot.size(), boot);
  v.replace(0x52, 8, "FAT32   ");
  v.replace(0x47, 11, "WINSIM     ");
  v[510] = '\x55';
  v[511] = '\xaa';
  for (size_t off = 1024; off + 64 <= bytes; off += 512) {
    v.replace(off, 11, "CROWDS~1   ");
    v.replace(off + 16, 32, "C-00000291-00000000-00000002.sys");
  }
  return v;
}

TEST(BdeImageTest, EncryptedImageHidesTheVolumeAndDecryptsBack) {
  TempDir dir;
  std::string plain = FakeFatVolume(256 * 1024);
  WriteAll(dir / "plain.img", plain);
  EncryptOptions o;
  o.in = dir / "plain.img";
  o.out = dir / "enc.img";
  o.iterations = 100;
  auto r = EncryptImage(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  std::string enc = ReadAll(o.out);
  ASSERT_EQ(enc.size(), kHeaderRegionBytes + plain.size());
  EXPECT_EQ(enc.substr(0, 16), "CHAOSLAB-BDE-V1\n");
  // Nothing of the volume is visible: no boot sector signature, no FAT words, no file names.
  std::string data = enc.substr(kHeaderRegionBytes);
  EXPECT_NE(data.substr(510, 2), "\x55\xaa");
  EXPECT_NE(enc.substr(510, 2), "\x55\xaa");
  for (const char* word : {"FAT32", "mkfs.fat", "WINSIM", "C-00000291", "CROWDS"}) {
    EXPECT_EQ(enc.find(word), std::string::npos) << word;
  }
  // The header region past the header is zero (no key material lying around).
  EXPECT_EQ(enc.find_first_not_of('\0', kHeaderBytes), kHeaderRegionBytes);

  auto header = ReadImageHeader(o.out);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->data_sectors, plain.size() / 512);
  EXPECT_EQ(header->KeyId(), r->header.KeyId());

  for (bool use_tpm : {false, true}) {
    auto key = use_tpm ? UnlockWithTpmSecret(*header, r->tpm_secret_hex)
                       : UnlockWithRecoveryPassword(*header, r->recovery_password);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    std::string out = dir / (use_tpm ? "tpm.img" : "pw.img");
    ASSERT_TRUE(DecryptImage(o.out, out, *key).ok());
    EXPECT_EQ(ReadAll(out), plain) << use_tpm;
  }
}

TEST(BdeImageTest, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir dir;
  WriteAll(dir / "plain.img", FakeFatVolume(64 * 1024));
  auto encrypt = [&](const std::string& out, const std::string& seed) {
    EncryptOptions o;
    o.in = dir / "plain.img";
    o.out = dir / out;
    o.seed = seed;
    o.iterations = 10;
    auto r = EncryptImage(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->recovery_password : std::string();
  };
  std::string a = encrypt("a.img", "lab-seed");
  std::string b = encrypt("b.img", "lab-seed");
  std::string c = encrypt("c.img", "other-seed");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(ReadAll(dir / "a.img"), ReadAll(dir / "b.img"));
  EXPECT_NE(ReadAll(dir / "a.img").substr(kHeaderRegionBytes),
            ReadAll(dir / "c.img").substr(kHeaderRegionBytes));
  // Without a seed two encryptions differ.
  EncryptOptions o;
  o.in = dir / "plain.img";
  o.iterations = 10;
  o.out = dir / "r1.img";
  auto r1 = EncryptImage(o);
  o.out = dir / "r2.img";
  auto r2 = EncryptImage(o);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NE(r1->recovery_password, r2->recovery_password);
  EXPECT_NE(r1->tpm_secret_hex, r2->tpm_secret_hex);
}

TEST(BdeImageTest, XtsDependsOnTheSectorAndRoundTrips) {
  VolumeKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  std::vector<uint8_t> two(1024, 0x41);  // two identical plaintext sectors
  std::vector<uint8_t> buf = two;
  ASSERT_TRUE(XtsSectors(key, 7, buf, true).ok());
  EXPECT_NE(std::vector<uint8_t>(buf.begin(), buf.begin() + 512),
            std::vector<uint8_t>(buf.begin() + 512, buf.end()));
  // Sector 8 alone encrypts like the second half (the tweak is the absolute sector number).
  std::vector<uint8_t> one(512, 0x41);
  ASSERT_TRUE(XtsSectors(key, 8, one, true).ok());
  EXPECT_EQ(one, std::vector<uint8_t>(buf.begin() + 512, buf.end()));
  ASSERT_TRUE(XtsSectors(key, 7, buf, false).ok());
  EXPECT_EQ(buf, two);
  std::vector<uint8_t> odd(100);
  EXPECT_EQ(XtsSectors(key, 0, odd, true).code(), ErrorCode::kInvalidArgument);
}

TEST(BdeImageTest, RefusesBadInputsAndExistingOutputs) {
  TempDir dir;
  WriteAll(dir / "odd.img", std::string(1000, 'x'));
  WriteAll(dir / "plain.img", FakeFatVolume(4096));
  WriteAll(dir / "exists.img", "x");
  EncryptOptions o;
  o.in = dir / "odd.img";
  o.out = dir / "out.img";
  EXPECT_EQ(EncryptImage(o).status().code(), ErrorCode::kInvalidArgument);
  o.in = dir / "missing.img";
  EXPECT_EQ(EncryptImage(o).status().code(), ErrorCode::kIoError);
  o.in = dir / "plain.img";
  o.out = dir / "exists.img";
  EXPECT_EQ(EncryptImage(o).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadAll(dir / "exists.img"), "x");
  EXPECT_FALSE(fs::exists(dir / "out.img"));
  EXPECT_EQ(ReadImageHeader(dir / "plain.img").status().code(), ErrorCode::kNotFound);
  // No temporary files are left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 3);
}

TEST(BdeImageTest, ATruncatedImageIsReportedNotMisread) {
  TempDir dir;
  WriteAll(dir / "plain.img", FakeFatVolume(64 * 1024));
  EncryptOptions o;
  o.in = dir / "plain.img";
  o.out = dir / "enc.img";
  o.iterations = 10;
  ASSERT_TRUE(EncryptImage(o).ok());
  std::string enc = ReadAll(o.out);
  WriteAll(dir / "short.img", enc.substr(0, enc.size() - 512));
  EXPECT_EQ(ReadImageHeader(dir / "short.img").status().code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace chaoslab::bde
