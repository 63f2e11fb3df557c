#include "agents/bde/bde_tool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "agents/bde/bde_format.h"

namespace chaoslab::bde {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int code;
  std::string out;
  std::string err;
};

ToolRun Tool(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = BdeToolMain(args, out, err);
  return {code, out.str(), err.str()};
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class BdeToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "bde-tool-test.XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    std::string plain(128 * 1024, '\0');
    plain.replace(4096, 10, "WINSIM-FAT");
    std::ofstream(P("plain.img"), std::ios::binary) << plain;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  // Encrypts plain.img into enc.img; returns the recovery password and TPM secret.
  std::pair<std::string, std::string> Encrypt(const std::string& seed = "tool-test") {
    ToolRun r = Tool({"encrypt", "--in", P("plain.img"), "--out", P("enc.img"),
                      "--recovery-password-out", P("pw.txt"), "--tpm-secret-out", P("tpm.txt"),
                      "--seed", seed, "--iterations", "100"});
    EXPECT_EQ(r.code, 0) << r.err;
    std::string pw = ReadAll(P("pw.txt")), tpm = ReadAll(P("tpm.txt"));
    if (!pw.empty()) pw.pop_back();
    if (!tpm.empty()) tpm.pop_back();
    return {pw, tpm};
  }

  std::string dir_;
};

TEST_F(BdeToolTest, EncryptWritesTheSecretsPrivately) {
  auto [pw, tpm] = Encrypt();
  EXPECT_TRUE(ParseRecoveryPassword(pw).ok()) << pw;
  EXPECT_EQ(pw.size(), 55u);
  EXPECT_TRUE(ParseTpmSecret(tpm).ok()) << tpm;
  for (const char* f : {"pw.txt", "tpm.txt"}) {
    struct stat st {};
    ASSERT_EQ(stat(P(f).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_EQ(ReadAll(P("enc.img")).find("WINSIM-FAT"), std::string::npos);
}

TEST_F(BdeToolTest, InspectShowsTheHeader) {
  Encrypt();
  ToolRun r = Tool({"inspect", P("enc.img")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cipher: aes-xts-plain64 (512-bit key, 512-byte sectors)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("data-offset-sectors: 2048"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("data-sectors: 256"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pbkdf2-iterations: 100"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("protectors: tpm recovery-password"), std::string::npos) << r.out;
  ToolRun plain = Tool({"inspect", P("plain.img")});
  EXPECT_EQ(plain.code, kToolExitNotEncrypted);
}

TEST_F(BdeToolTest, CheckAcceptsTheRightKeysAndRefusesWrongOnes) {
  auto [pw, tpm] = Encrypt();
  EXPECT_EQ(Tool({"check", P("enc.img"), "--recovery-password", pw}).code, 0);
  EXPECT_EQ(Tool({"check", P("enc.img"), "--recovery-password-file", P("pw.txt")}).code, 0);
  EXPECT_EQ(Tool({"check", P("enc.img"), "--tpm-secret", tpm}).code, 0);
  EXPECT_EQ(Tool({"check", P("enc.img"), "--tpm-secret-file", P("tpm.txt")}).code, 0);

  std::string wrong = FormatRecoveryPassword(RecoveryKey{});  // well-formed, not this volume's
  ToolRun r = Tool({"check", P("enc.img"), "--recovery-password", wrong});
  EXPECT_EQ(r.code, kToolExitError);
  EXPECT_NE(r.err.find("does not unlock"), std::string::npos) << r.err;
  ToolRun typo = Tool({"check", P("enc.img"), "--recovery-password", "123456" + pw.substr(6)});
  EXPECT_EQ(typo.code, kToolExitError);
  EXPECT_NE(typo.err.find("group 1"), std::string::npos) << typo.err;
  EXPECT_EQ(Tool({"check", P("enc.img"), "--tpm-secret", std::string(64, '0')}).code,
            kToolExitError);
  EXPECT_EQ(Tool({"check", P("enc.img")}).code, kToolExitUsage);
  EXPECT_EQ(Tool({"check", P("enc.img"), "--tpm-secret", tpm, "--recovery-password", pw}).code,
            kToolExitUsage);
  EXPECT_EQ(Tool({"check", P("plain.img"), "--tpm-secret", tpm}).code, kToolExitNotEncrypted);
}

TEST_F(BdeToolTest, DecryptRestoresThePlaintext) {
  auto [pw, tpm] = Encrypt();
  ToolRun r =
      Tool({"decrypt", "--in", P("enc.img"), "--out", P("back.img"), "--recovery-password", pw});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadAll(P("back.img")), ReadAll(P("plain.img")));
  ToolRun wrong = Tool({"decrypt", "--in", P("enc.img"), "--out", P("bad.img"), "--tpm-secret",
                        std::string(64, 'a')});
  EXPECT_EQ(wrong.code, kToolExitError);
  EXPECT_FALSE(fs::exists(P("bad.img")));
}

TEST_F(BdeToolTest, UsageErrors) {
  EXPECT_EQ(Tool({}).code, kToolExitUsage);
  EXPECT_EQ(Tool({"frobnicate"}).code, kToolExitUsage);
  EXPECT_EQ(Tool({"encrypt", "--in", P("plain.img")}).code, kToolExitUsage);
  EXPECT_EQ(Tool({"encrypt", "--in", P("plain.img"), "--out", P("x.img"), "--recovery-password-out",
                  P("a"), "--tpm-secret-out", P("b"), "--iterations", "0"})
                .code,
            kToolExitUsage);
  EXPECT_EQ(Tool({"encrypt", "--bogus", "1"}).code, kToolExitUsage);
  Encrypt();
  // The output must not exist yet.
  ToolRun again =
      Tool({"encrypt", "--in", P("plain.img"), "--out", P("enc.img"), "--recovery-password-out",
            P("pw2.txt"), "--tpm-secret-out", P("tpm2.txt")});
  EXPECT_EQ(again.code, kToolExitUsage);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_FALSE(fs::exists(P("pw2.txt")));
  EXPECT_EQ(Tool({"--help"}).code, 0);
}

}  // namespace
}  // namespace chaoslab::bde
