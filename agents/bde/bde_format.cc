#include "agents/bde/bde_format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

namespace chaoslab::bde {
namespace {

constexpr size_t kOffVersion = 16;
constexpr size_t kOffHeaderBytes = 20;
constexpr size_t kOffDataOffset = 24;
constexpr size_t kOffDataSectors = 32;
constexpr size_t kOffCipher = 40;
constexpr size_t kCipherField = 32;
constexpr size_t kOffKeyBytes = 72;
constexpr size_t kOffSectorBytes = 76;
constexpr size_t kOffIterations = 80;
constexpr size_t kOffProtectorCount = 84;
constexpr size_t kOffVolumeId = 88;
constexpr size_t kOffSalt = 104;
constexpr size_t kOffProtectors = 136;  // everything before this is bound into every tag
constexpr size_t kProtectorBytes = 128;
constexpr size_t kOffChecksum = kOffProtectors + kMaxProtectors * kProtectorBytes;  // 648
static_assert(kOffChecksum + 32 <= kHeaderBytes);

constexpr std::string_view kTpmLabel = "chaoslab-bde/tpm";
constexpr std::string_view kEncLabel = "chaoslab-bde/wrap/enc";
constexpr std::string_view kMacLabel = "chaoslab-bde/wrap/mac";
constexpr std::string_view kSeedLabel = "chaoslab-bde/seed";

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The header fields every protector's tag covers (bytes 0..135 of the serialized header).
std::array<uint8_t, kOffProtectors> BoundFields(const VolumeHeader& h) {
  std::array<uint8_t, kOffProtectors> b{};
  std::memcpy(b.data(), kMagic.data(), kMagic.size());
  Put32(&b[kOffVersion], h.version);
  Put32(&b[kOffHeaderBytes], kHeaderBytes);
  Put64(&b[kOffDataOffset], h.data_offset_sectors);
  Put64(&b[kOffDataSectors], h.data_sectors);
  std::memcpy(&b[kOffCipher], h.cipher.data(), std::min(h.cipher.size(), kCipherField - 1));
  Put32(&b[kOffKeyBytes], h.key_bytes);
  Put32(&b[kOffSectorBytes], h.sector_bytes);
  Put32(&b[kOffIterations], h.pbkdf2_iterations);
  Put32(&b[kOffProtectorCount], static_cast<uint32_t>(h.protectors.size()));
  std::memcpy(&b[kOffVolumeId], h.volume_id.data(), h.volume_id.size());
  std::memcpy(&b[kOffSalt], h.salt.data(), h.salt.size());
  return b;
}

// The protector count is part of the bound fields, but a protector is wrapped before the others
// exist; so the tag covers the fields with the count zeroed.
std::array<uint8_t, kOffProtectors> TagFields(const VolumeHeader& h) {
  std::array<uint8_t, kOffProtectors> b = BoundFields(h);
  Put32(&b[kOffProtectorCount], 0);
  return b;
}

struct WrapKeys {
  Digest enc;
  Digest mac;
  ~WrapKeys() {
    SecureWipe(enc);
    SecureWipe(mac);
  }
};

WrapKeys DeriveWrapKeys(const Kek& kek) {
  HmacSha256 h(kek);
  return {h.Mac(AsBytes(kEncLabel)), h.Mac(AsBytes(kMacLabel))};
}

VolumeKey Keystream(const Digest& enc_key, const std::array<uint8_t, 16>& nonce) {
  HmacSha256 h(enc_key);
  VolumeKey out{};
  for (uint8_t block = 0; block < 2; ++block) {
    const uint8_t counter[4] = {0, 0, 0, static_cast<uint8_t>(block + 1)};
    Digest d = h.Mac({nonce, counter});
    std::copy(d.begin(), d.end(), out.begin() + 32 * block);
    SecureWipe(d);
  }
  return out;
}

Digest Tag(const VolumeHeader& header, const Digest& mac_key, ProtectorType type,
           const std::array<uint8_t, 16>& nonce, const VolumeKey& wrapped) {
  auto fields = TagFields(header);
  uint8_t type_bytes[4];
  Put32(type_bytes, static_cast<uint32_t>(type));
  return HmacSha256(mac_key).Mac({fields, type_bytes, nonce, wrapped});
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view ProtectorTypeName(ProtectorType type) {
  switch (type) {
    case ProtectorType::kTpm:
      return "tpm";
    case ProtectorType::kRecoveryPassword:
      return "recovery-password";
  }
  return "unknown";
}

std::string VolumeHeader::KeyId() const {
  std::string hex = ToHex(std::span<const uint8_t>(volume_id.data(), 4));
  std::transform(hex.begin(), hex.end(), hex.begin(), [](char c) {
    return static_cast<char>(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
  });
  return hex;
}

const Protector* VolumeHeader::Find(ProtectorType type) const {
  for (const Protector& p : protectors) {
    if (p.type == type) return &p;
  }
  return nullptr;
}

bool HasMagic(std::span<const uint8_t> bytes) {
  return bytes.size() >= kMagic.size() &&
         std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) == 0;
}

std::vector<uint8_t> SerializeHeader(const VolumeHeader& header) {
  std::vector<uint8_t> out(kHeaderBytes, 0);
  auto fields = BoundFields(header);
  std::copy(fields.begin(), fields.end(), out.begin());
  size_t n = std::min(header.protectors.size(), kMaxProtectors);
  for (size_t i = 0; i < n; ++i) {
    const Protector& p = header.protectors[i];
    uint8_t* slot = &out[kOffProtectors + i * kProtectorBytes];
    Put32(slot, static_cast<uint32_t>(p.type));
    std::memcpy(slot + 8, p.nonce.data(), p.nonce.size());
    std::memcpy(slot + 24, p.wrapped_key.data(), p.wrapped_key.size());
    std::memcpy(slot + 88, p.tag.data(), p.tag.size());
  }
  Digest sum = Sha256Of(std::span<const uint8_t>(out.data(), kOffChecksum));
  std::copy(sum.begin(), sum.end(), out.begin() + kOffChecksum);
  return out;
}

Result<VolumeHeader> ParseHeader(std::span<const uint8_t> bytes) {
  if (!HasMagic(bytes)) return Status::NotFound("no BitLocker (chaoslab-bde) header");
  if (bytes.size() < kOffChecksum + 32) {
    return Status::Corruption("BitLocker header is truncated (" + std::to_string(bytes.size()) +
                              " bytes)");
  }
  Digest sum = Sha256Of(bytes.first(kOffChecksum));
  if (!std::equal(sum.begin(), sum.end(), bytes.begin() + kOffChecksum)) {
    return Status::Corruption("BitLocker header checksum mismatch (the header is damaged)");
  }
  const uint8_t* b = bytes.data();
  VolumeHeader h;
  h.version = Get32(b + kOffVersion);
  if (h.version != kFormatVersion) {
    return Status::Corruption("BitLocker header version " + std::to_string(h.version) +
                              " is not supported (expected 1)");
  }
  h.data_offset_sectors = Get64(b + kOffDataOffset);
  h.data_sectors = Get64(b + kOffDataSectors);
  const char* cipher = reinterpret_cast<const char*>(b + kOffCipher);
  h.cipher.assign(cipher, strnlen(cipher, kCipherField));
  h.key_bytes = Get32(b + kOffKeyBytes);
  h.sector_bytes = Get32(b + kOffSectorBytes);
  h.pbkdf2_iterations = Get32(b + kOffIterations);
  uint32_t count = Get32(b + kOffProtectorCount);
  std::memcpy(h.volume_id.data(), b + kOffVolumeId, h.volume_id.size());
  std::memcpy(h.salt.data(), b + kOffSalt, h.salt.size());
  if (h.cipher != kCipher || h.key_bytes != kVolumeKeyBytes || h.sector_bytes != kSectorBytes) {
    return Status::Corruption("BitLocker header names cipher '" + h.cipher + "' with " +
                              std::to_string(h.key_bytes) + "-byte keys and " +
                              std::to_string(h.sector_bytes) +
                              "-byte sectors; only aes-xts-plain64, 64, 512 are supported");
  }
  if (h.data_offset_sectors * kSectorBytes < kHeaderBytes || h.data_sectors == 0 ||
      h.pbkdf2_iterations == 0 || count == 0 || count > kMaxProtectors) {
    return Status::Corruption("BitLocker header has impossible values (data offset " +
                              std::to_string(h.data_offset_sectors) + ", sectors " +
                              std::to_string(h.data_sectors) + ", iterations " +
                              std::to_string(h.pbkdf2_iterations) + ", protectors " +
                              std::to_string(count) + ")");
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* slot = b + kOffProtectors + i * kProtectorBytes;
    Protector p;
    uint32_t type = Get32(slot);
    if (type != static_cast<uint32_t>(ProtectorType::kTpm) &&
        type != static_cast<uint32_t>(ProtectorType::kRecoveryPassword)) {
      return Status::Corruption("BitLocker protector " + std::to_string(i) + " has unknown type " +
                                std::to_string(type));
    }
    p.type = static_cast<ProtectorType>(type);
    std::memcpy(p.nonce.data(), slot + 8, p.nonce.size());
    std::memcpy(p.wrapped_key.data(), slot + 24, p.wrapped_key.size());
    std::memcpy(p.tag.data(), slot + 88, p.tag.size());
    h.protectors.push_back(p);
  }
  return h;
}

std::string FormatRecoveryPassword(const RecoveryKey& key) {
  std::string out;
  for (size_t i = 0; i < 8; ++i) {
    uint32_t block = (uint32_t{key[2 * i]} | (uint32_t{key[2 * i + 1]} << 8)) * 11;
    char digits[8];
    std::snprintf(digits, sizeof digits, "%06u", block);
    if (i > 0) out += '-';
    out += digits;
  }
  return out;
}

Result<RecoveryKey> ParseRecoveryPassword(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (c != '-' && c != ' ') {
      return Status::InvalidArgument(
          "a recovery password has only digits and dashes (8 groups of 6 digits)");
    }
  }
  if (digits.size() != 48) {
    return Status::InvalidArgument("a recovery password has 48 digits (8 groups of 6), got " +
                                   std::to_string(digits.size()));
  }
  RecoveryKey key{};
  for (size_t i = 0; i < 8; ++i) {
    uint32_t block = 0;
    for (size_t j = 0; j < 6; ++j)
      block = block * 10 + static_cast<uint32_t>(digits[6 * i + j] - '0');
    if (block % 11 != 0 || block / 11 > 0xffff) {
      return Status::InvalidArgument("group " + std::to_string(i + 1) + " (" +
                                     digits.substr(6 * i, 6) +
                                     ") of the recovery password is not valid: check for typos");
    }
    uint32_t value = block / 11;
    key[2 * i] = static_cast<uint8_t>(value);
    key[2 * i + 1] = static_cast<uint8_t>(value >> 8);
  }
  return key;
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

Result<std::vector<uint8_t>> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status::InvalidArgument("odd number of hex digits");
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return Status::InvalidArgument("not a hex digit in '" + std::string(hex) + "'");
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

Result<TpmSecret> ParseTpmSecret(std::string_view hex) {
  if (hex.size() != 2 * kTpmSecretBytes) {
    return Status::InvalidArgument("a TPM secret is " + std::to_string(2 * kTpmSecretBytes) +
                                   " hex digits, got " + std::to_string(hex.size()));
  }
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, FromHex(hex));
  TpmSecret secret{};
  std::copy(bytes.begin(), bytes.end(), secret.begin());
  SecureWipe(bytes);
  return secret;
}

Kek KekFromRecoveryKey(const RecoveryKey& key, const VolumeHeader& header) {
  Kek kek{};
  Pbkdf2HmacSha256(key, header.salt, header.pbkdf2_iterations, kek);
  return kek;
}

Kek KekFromTpmSecret(const TpmSecret& secret, const VolumeHeader& header) {
  return HmacSha256(secret).Mac({AsBytes(kTpmLabel), header.salt});
}

Protector WrapKey(const VolumeHeader& header, ProtectorType type, const Kek& kek,
                  const VolumeKey& key, const std::array<uint8_t, 16>& nonce) {
  WrapKeys keys = DeriveWrapKeys(kek);
  Protector p;
  p.type = type;
  p.nonce = nonce;
  VolumeKey stream = Keystream(keys.enc, nonce);
  for (size_t i = 0; i < key.size(); ++i) p.wrapped_key[i] = key[i] ^ stream[i];
  SecureWipe(stream);
  p.tag = Tag(header, keys.mac, type, nonce, p.wrapped_key);
  return p;
}

Result<VolumeKey> UnwrapKey(const VolumeHeader& header, const Protector& protector,
                            const Kek& kek) {
  WrapKeys keys = DeriveWrapKeys(kek);
  Digest tag = Tag(header, keys.mac, protector.type, protector.nonce, protector.wrapped_key);
  if (!ConstantTimeEqual(tag, protector.tag)) {
    return Status::InvalidArgument(std::string("the ") +
                                   std::string(ProtectorTypeName(protector.type)) +
                                   " key does not unlock this volume");
  }
  VolumeKey stream = Keystream(keys.enc, protector.nonce);
  VolumeKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = protector.wrapped_key[i] ^ stream[i];
  SecureWipe(stream);
  return key;
}

Result<VolumeKey> UnlockWithRecoveryPassword(const VolumeHeader& header,
                                             std::string_view password) {
  const Protector* p = header.Find(ProtectorType::kRecoveryPassword);
  if (p == nullptr) return Status::NotFound("the volume has no recovery password protector");
  ASSIGN_OR_RETURN(RecoveryKey key, ParseRecoveryPassword(password));
  Kek kek = KekFromRecoveryKey(key, header);
  SecureWipe(key);
  Result<VolumeKey> out = UnwrapKey(header, *p, kek);
  SecureWipe(kek);
  return out;
}

Result<VolumeKey> UnlockWithTpmSecret(const VolumeHeader& header, std::string_view hex) {
  const Protector* p = header.Find(ProtectorType::kTpm);
  if (p == nullptr) return Status::NotFound("the volume has no TPM protector");
  ASSIGN_OR_RETURN(TpmSecret secret, ParseTpmSecret(hex));
  Kek kek = KekFromTpmSecret(secret, header);
  SecureWipe(secret);
  Result<VolumeKey> out = UnwrapKey(header, *p, kek);
  SecureWipe(kek);
  return out;
}

RandomSource SeededRandom(std::string seed) {
  auto counter = std::make_shared<uint64_t>(0);
  auto mac = std::make_shared<HmacSha256>(AsBytes(seed));
  return [counter, mac](std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
      uint8_t index[8];
      for (int i = 0; i < 8; ++i) index[i] = static_cast<uint8_t>(*counter >> (56 - 8 * i));
      ++*counter;
      Digest d = mac->Mac({AsBytes(kSeedLabel), index});
      size_t take = std::min(d.size(), out.size() - done);
      std::copy_n(d.begin(), take, out.begin() + static_cast<std::ptrdiff_t>(done));
      done += take;
    }
  };
}

NewVolume CreateVolume(uint64_t data_sectors, uint32_t iterations, const RandomSource& random) {
  NewVolume v;
  v.header.data_sectors = data_sectors;
  v.header.pbkdf2_iterations = iterations == 0 ? kDefaultIterations : iterations;
  random(v.header.volume_id);
  random(v.header.salt);
  random(v.key);
  random(v.tpm_secret);
  random(v.recovery_key);
  std::array<uint8_t, 16> nonce{};
  random(nonce);
  Kek tpm_kek = KekFromTpmSecret(v.tpm_secret, v.header);
  v.header.protectors.push_back(WrapKey(v.header, ProtectorType::kTpm, tpm_kek, v.key, nonce));
  random(nonce);
  Kek password_kek = KekFromRecoveryKey(v.recovery_key, v.header);
  v.header.protectors.push_back(
      WrapKey(v.header, ProtectorType::kRecoveryPassword, password_kek, v.key, nonce));
  SecureWipe(tpm_kek);
  SecureWipe(password_kek);
  return v;
}

}  // namespace chaoslab::bde
