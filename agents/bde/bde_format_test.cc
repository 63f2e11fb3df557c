#include "agents/bde/bde_format.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "agents/bde/sha256.h"

namespace chaoslab::bde {
namespace {

std::string Hex(std::span<const uint8_t> b) { return ToHex(b); }

std::vector<uint8_t> RandomBytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(Sha256Test, PublishedVectors) {
  EXPECT_EQ(Hex(Sha256Of(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256Of(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256Of(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million;
  std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.Update(a);
  EXPECT_EQ(Hex(million.Finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, MatchesOpenSslForEveryLengthAndSplit) {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 300; ++len) {
    std::vector<uint8_t> data = RandomBytes(rng, len);
    uint8_t expected[32];
    unsigned int n = 0;
    ASSERT_EQ(EVP_Digest(data.data(), data.size(), expected, &n, EVP_sha256(), nullptr), 1);
    EXPECT_EQ(Hex(Sha256Of(data)), Hex(expected)) << len;
    // The same bytes fed in uneven pieces.
    Sha256 h;
    size_t at = 0;
    while (at < len) {
      size_t take = std::min<size_t>(len - at, 1 + rng() % 70);
      h.Update(std::span<const uint8_t>(data.data() + at, take));
      at += take;
    }
    EXPECT_EQ(Hex(h.Finish()), Hex(expected)) << len;
  }
}

TEST(HmacSha256Test, Rfc4231AndOpenSsl) {
  // RFC 4231, test case 2.
  EXPECT_EQ(Hex(HmacSha256Of(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  std::mt19937 rng(11);
  for (size_t key_len : {0, 1, 32, 63, 64, 65, 131}) {
    std::vector<uint8_t> key = RandomBytes(rng, key_len);
    std::vector<uint8_t> msg = RandomBytes(rng, 100 + key_len);
    uint8_t expected[32];
    unsigned int n = 0;
    ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(),
                   expected, &n),
              nullptr);
    EXPECT_EQ(Hex(HmacSha256Of(key, msg)), Hex(expected)) << key_len;
    // Split message parts give the same MAC as the whole.
    std::span<const uint8_t> m(msg);
    EXPECT_EQ(Hex(HmacSha256(key).Mac({m.first(10), m.subspan(10)})), Hex(expected));
  }
}

TEST(Pbkdf2Test, Rfc7914VectorAndOpenSsl) {
  // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64).
  std::vector<uint8_t> out(64);
  Pbkdf2HmacSha256(AsBytes("passwd"), AsBytes("salt"), 1, out);
  EXPECT_EQ(Hex(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
  std::mt19937 rng(3);
  for (uint32_t iterations : {1u, 2u, 1000u, 10000u}) {
    std::vector<uint8_t> password = RandomBytes(rng, 16);
    std::vector<uint8_t> salt = RandomBytes(rng, 32);
    std::vector<uint8_t> mine(45), theirs(45);
    Pbkdf2HmacSha256(password, salt, iterations, mine);
    ASSERT_EQ(PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(password.data()),
                                static_cast<int>(password.size()), salt.data(),
                                static_cast<int>(salt.size()), static_cast<int>(iterations),
                                EVP_sha256(), static_cast<int>(theirs.size()), theirs.data()),
              1);
    EXPECT_EQ(Hex(mine), Hex(theirs)) << iterations;
  }
}

TEST(RecoveryPasswordTest, FormatsAndParsesLikeBitLocker) {
  RecoveryKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 37 + 5);
  std::string pw = FormatRecoveryPassword(key);
  ASSERT_EQ(pw.size(), 8 * 6 + 7u);
  for (size_t i = 0; i < pw.size(); ++i) {
    if (i % 7 == 6) {
      EXPECT_EQ(pw[i], '-') << pw;
    } else {
      EXPECT_TRUE(pw[i] >= '0' && pw[i] <= '9') << pw;
    }
  }
  for (size_t g = 0; g < 8; ++g) EXPECT_EQ(std::stoul(pw.substr(7 * g, 6)) % 11, 0u) << pw;
  auto parsed = ParseRecoveryPassword(pw);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, key);
  // Without dashes, or with spaces, it is the same password.
  std::string digits;
  for (char c : pw) {
    if (c != '-') digits += c;
  }
  EXPECT_EQ(*ParseRecoveryPassword(digits), key);
  std::string spaced = pw;
  std::replace(spaced.begin(), spaced.end(), '-', ' ');
  EXPECT_EQ(*ParseRecoveryPassword(spaced), key);
  // The largest and smallest block values.
  RecoveryKey ff;
  ff.fill(0xff);
  EXPECT_EQ(FormatRecoveryPassword(ff).substr(0, 6), "720885");
  EXPECT_EQ(*ParseRecoveryPassword(FormatRecoveryPassword(ff)), ff);
  EXPECT_EQ(FormatRecoveryPassword(RecoveryKey{}),
            "000000-000000-000000-000000-000000-000000-000000-000000");
}

TEST(RecoveryPasswordTest, CatchesTyposBeforeAnyKeyDerivation) {
  RecoveryKey key{};
  key[4] = 9;
  std::string pw = FormatRecoveryPassword(key);  // group 3 is 009 * 11 = 000099
  std::string typo = pw;
  typo[7 * 2 + 5] = '8';  // 000098: not a multiple of 11
  auto r = ParseRecoveryPassword(typo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("group 3"), std::string::npos) << r.status().message();
  EXPECT_FALSE(ParseRecoveryPassword(pw.substr(0, pw.size() - 1)).ok());  // 47 digits
  EXPECT_FALSE(ParseRecoveryPassword(pw + "0").ok());                     // 49 digits
  EXPECT_FALSE(ParseRecoveryPassword("abcdef" + pw.substr(6)).ok());
  EXPECT_FALSE(ParseRecoveryPassword("720896" + pw.substr(6)).ok());  // 65536 * 11: too big
}

TEST(VolumeHeaderTest, SerializesAndParsesBack) {
  NewVolume v = CreateVolume(67584, 1000, SeededRandom("header"));
  std::vector<uint8_t> bytes = SerializeHeader(v.header);
  ASSERT_EQ(bytes.size(), kHeaderBytes);
  EXPECT_TRUE(HasMagic(bytes));
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 16), "CHAOSLAB-BDE-V1\n");
  auto h = ParseHeader(bytes);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->data_sectors, 67584u);
  EXPECT_EQ(h->data_offset_sectors, 2048u);
  EXPECT_EQ(h->cipher, "aes-xts-plain64");
  EXPECT_EQ(h->pbkdf2_iterations, 1000u);
  EXPECT_EQ(h->volume_id, v.header.volume_id);
  EXPECT_EQ(h->salt, v.header.salt);
  ASSERT_EQ(h->protectors.size(), 2u);
  EXPECT_EQ(h->protectors[0].type, ProtectorType::kTpm);
  EXPECT_EQ(h->protectors[1].type, ProtectorType::kRecoveryPassword);
  EXPECT_EQ(h->protectors[1].tag, v.header.protectors[1].tag);
  EXPECT_EQ(SerializeHeader(*h), bytes);
  std::string id = ToHex(std::span<const uint8_t>(v.header.volume_id.data(), 4));
  for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(h->KeyId(), id);
}

TEST(VolumeHeaderTest, RefusesMissingDamagedOrForeignHeaders) {
  NewVolume v = CreateVolume(100, 10, SeededRandom("damage"));
  std::vector<uint8_t> bytes = SerializeHeader(v.header);

  std::vector<uint8_t> fat(kHeaderBytes, 0);
  fat[0] = 0xeb;
  fat[510] = 0x55;
  fat[511] = 0xaa;
  EXPECT_EQ(ParseHeader(fat).status().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(HasMagic(fat));

  std::vector<uint8_t> flipped = bytes;
  flipped[40] ^= 1;  // one bit of the cipher name
  EXPECT_EQ(ParseHeader(flipped).status().code(), ErrorCode::kCorruption);

  EXPECT_EQ(ParseHeader(std::span<const uint8_t>(bytes.data(), 600)).status().code(),
            ErrorCode::kCorruption);
}

TEST(KeyWrapTest, BothProtectorsUnlockTheSameKey) {
  NewVolume v = CreateVolume(100, 50, SeededRandom("unlock"));
  auto by_password = UnlockWithRecoveryPassword(v.header, v.RecoveryPassword());
  ASSERT_TRUE(by_password.ok()) << by_password.status().ToString();
  EXPECT_EQ(*by_password, v.key);
  auto by_tpm = UnlockWithTpmSecret(v.header, ToHex(v.tpm_secret));
  ASSERT_TRUE(by_tpm.ok()) << by_tpm.status().ToString();
  EXPECT_EQ(*by_tpm, v.key);
  // And after a trip through the disk format.
  auto parsed = ParseHeader(SerializeHeader(v.header));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*UnlockWithRecoveryPassword(*parsed, v.RecoveryPassword()), v.key);
}

TEST(KeyWrapTest, AWrongPasswordOrSecretIsRefused) {
  NewVolume v = CreateVolume(100, 50, SeededRandom("wrong"));
  NewVolume other = CreateVolume(100, 50, SeededRandom("other"));
  // Well-formed, but another volume's password.
  auto r = UnlockWithRecoveryPassword(v.header, other.RecoveryPassword());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("does not unlock"), std::string::npos);
  EXPECT_FALSE(UnlockWithTpmSecret(v.header, ToHex(other.tpm_secret)).ok());
  // The recovery password is not a TPM secret and vice versa.
  EXPECT_FALSE(UnlockWithTpmSecret(v.header, v.RecoveryPassword()).ok());
  EXPECT_FALSE(UnlockWithTpmSecret(v.header, "00").ok());
  // The protectors really are different: the TPM KEK does not open the password protector.
  Kek tpm_kek = KekFromTpmSecret(v.tpm_secret, v.header);
  EXPECT_FALSE(UnwrapKey(v.header, *v.header.Find(ProtectorType::kRecoveryPassword), tpm_kek).ok());
}

TEST(KeyWrapTest, TheTagBindsTheHeaderAndTheWrappedKey) {
  NewVolume v = CreateVolume(100, 50, SeededRandom("bind"));
  std::string pw = v.RecoveryPassword();

  VolumeHeader moved = v.header;
  moved.data_offset_sectors = 4096;  // someone edits the layout and fixes the checksum
  auto reparsed = ParseHeader(SerializeHeader(moved));
  ASSERT_TRUE(reparsed.ok());
  EXPECT_FALSE(UnlockWithRecoveryPassword(*reparsed, pw).ok());

  VolumeHeader flipped = v.header;
  flipped.protectors[1].wrapped_key[5] ^= 0x10;
  EXPECT_FALSE(UnlockWithRecoveryPassword(flipped, pw).ok());

  VolumeHeader salted = v.header;
  salted.salt[0] ^= 1;
  EXPECT_FALSE(UnlockWithRecoveryPassword(salted, pw).ok());
  EXPECT_FALSE(UnlockWithTpmSecret(salted, ToHex(v.tpm_secret)).ok());
}

TEST(KeyWrapTest, TheWrappedKeyIsNotTheKey) {
  NewVolume v = CreateVolume(100, 50, SeededRandom("hidden"));
  std::vector<uint8_t> bytes = SerializeHeader(v.header);
  std::string header(bytes.begin(), bytes.end());
  std::string key(v.key.begin(), v.key.end());
  EXPECT_EQ(header.find(key.substr(0, 16)), std::string::npos);
  EXPECT_EQ(header.find(key.substr(32, 16)), std::string::npos);
  EXPECT_NE(v.header.protectors[0].wrapped_key, v.header.protectors[1].wrapped_key);
}

TEST(SeededRandomTest, SameSeedSameVolumeOtherSeedOtherVolume) {
  NewVolume a = CreateVolume(100, 10, SeededRandom("seed-1"));
  NewVolume b = CreateVolume(100, 10, SeededRandom("seed-1"));
  NewVolume c = CreateVolume(100, 10, SeededRandom("seed-2"));
  EXPECT_EQ(SerializeHeader(a.header), SerializeHeader(b.header));
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.RecoveryPassword(), b.RecoveryPassword());
  EXPECT_NE(SerializeHeader(a.header), SerializeHeader(c.header));
  EXPECT_NE(a.key, c.key);
  EXPECT_NE(a.RecoveryPassword(), c.RecoveryPassword());
  // Every value differs from the others (no counter reuse).
  EXPECT_NE(std::vector<uint8_t>(a.key.begin(), a.key.begin() + 32),
            std::vector<uint8_t>(a.tpm_secret.begin(), a.tpm_secret.end()));
}

TEST(HexTest, RoundTripsAndIsStrict) {
  std::vector<uint8_t> bytes = {0x00, 0x7f, 0xab, 0xff};
  EXPECT_EQ(ToHex(bytes), "007fabff");
  EXPECT_EQ(*FromHex("007FabfF"), bytes);
  EXPECT_FALSE(FromHex("abc").ok());
  EXPECT_FALSE(FromHex("zz").ok());
  EXPECT_FALSE(ParseTpmSecret(std::string(63, 'a')).ok());
  EXPECT_TRUE(ParseTpmSecret(std::string(64, 'a')).ok());
}

}  // namespace
}  // namespace chaoslab::bde
