// The chaoslab BitLocker emulation ("BDE"): on-disk header, recovery passwords and key wrapping.
// Shared by the host tool (chaoslab-bde, which encrypts images) and the guest tool (bde, which
// unlocks them); no OpenSSL here, so the guest binary stays small and static.
//
// Disk layout (docs/GUEST-PROTOCOL.md):
//   bytes 0 .. 1 MiB     header region; the header itself is the first 4 KiB, the rest is zero
//   bytes 1 MiB .. end   the plaintext volume (FAT32), encrypted aes-xts-plain64 with 512-byte
//                        sectors and the IV counting sectors from the start of the data area, so
//                        the kernel maps it with the dm-crypt table
//                        `0 <data_sectors> crypt aes-xts-plain64 <vmk> 0 <dev> 2048`
//
// Header (little-endian):
//   0    magic "CHAOSLAB-BDE-V1\n" (16 bytes; a text line, so a shell can spot it with `read`)
//   16   u32 version (1)            20  u32 header bytes (4096)
//   24   u64 data offset (sectors)  32  u64 data sectors
//   40   cipher, 32 bytes, NUL-padded ("aes-xts-plain64")
//   72   u32 key bytes (64)         76  u32 sector bytes (512)
//   80   u32 PBKDF2 iterations      84  u32 protector count (1..4)
//   88   volume id (16 bytes; its first 4 bytes in hex are the "recovery key ID")
//   104  salt (32 bytes)
//   136  4 protector slots of 128 bytes: u32 type (1 TPM, 2 recovery password), u32 0,
//        nonce[16], wrapped volume master key[64], tag[32], 8 zero bytes
//   648  SHA-256 of bytes 0..647 (detects a damaged header, not an attacker: the tags do that)
//
// Key wrapping (encrypt-then-MAC built from HMAC-SHA256 only, so the guest needs no AES in user
// space; the kernel's dm-crypt does the AES):
//   KEK       recovery password: PBKDF2-HMAC-SHA256(16-byte key the 48 digits encode, salt, iter)
//             TPM: HMAC-SHA256(tpm secret, "chaoslab-bde/tpm" || salt)
//   Kenc      HMAC(KEK, "chaoslab-bde/wrap/enc"), Kmac = HMAC(KEK, "chaoslab-bde/wrap/mac")
//   wrapped   VMK XOR (HMAC(Kenc, nonce || be32(1)) || HMAC(Kenc, nonce || be32(2)))
//   tag       HMAC(Kmac, header bytes 0..135 with the protector count as 0 || le32(type) ||
//             nonce || wrapped)
// A wrong password gives a wrong Kmac, so the tag does not match: refused before any data is
// touched. The tag also binds the header fields (offsets, cipher, salt), so editing them fails.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agents/bde/sha256.h"
#include "lab/common/status.h"

namespace chaoslab::bde {

inline constexpr std::string_view kMagic = "CHAOSLAB-BDE-V1\n";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kSectorBytes = 512;
inline constexpr uint64_t kHeaderRegionBytes = 1 << 20;  // the data area starts at 1 MiB
inline constexpr size_t kHeaderBytes = 4096;             // what a reader needs to read
inline constexpr size_t kVolumeKeyBytes = 64;            // AES-256-XTS: two 256-bit keys
inline constexpr size_t kTpmSecretBytes = 32;
inline constexpr size_t kRecoveryKeyBytes = 16;  // what the 48 digits encode (as in BitLocker)
inline constexpr size_t kMaxProtectors = 4;
// ~0.1 s in a TCG guest, a few ms on the host; real BitLocker uses far more (it runs on metal).
inline constexpr uint32_t kDefaultIterations = 10000;
inline constexpr std::string_view kCipher = "aes-xts-plain64";

enum class ProtectorType : uint32_t { kTpm = 1, kRecoveryPassword = 2 };
std::string_view ProtectorTypeName(ProtectorType type);  // "tpm", "recovery-password"

using VolumeKey = std::array<uint8_t, kVolumeKeyBytes>;
using Kek = std::array<uint8_t, 32>;
using RecoveryKey = std::array<uint8_t, kRecoveryKeyBytes>;
using TpmSecret = std::array<uint8_t, kTpmSecretBytes>;

struct Protector {
  ProtectorType type = ProtectorType::kTpm;
  std::array<uint8_t, 16> nonce{};
  VolumeKey wrapped_key{};
  Digest tag{};
};

struct VolumeHeader {
  uint32_t version = kFormatVersion;
  uint64_t data_offset_sectors = kHeaderRegionBytes / kSectorBytes;
  uint64_t data_sectors = 0;
  std::string cipher = std::string(kCipher);
  uint32_t key_bytes = kVolumeKeyBytes;
  uint32_t sector_bytes = kSectorBytes;
  uint32_t pbkdf2_iterations = kDefaultIterations;
  std::array<uint8_t, 16> volume_id{};
  std::array<uint8_t, 32> salt{};
  std::vector<Protector> protectors;

  // "1A2B3C4D": what the recovery screen shows so the right password can be found.
  std::string KeyId() const;
  const Protector* Find(ProtectorType type) const;  // nullptr if there is none
};

// True if `bytes` starts with the magic (the disk is one of ours, encrypted).
bool HasMagic(std::span<const uint8_t> bytes);

// kHeaderBytes bytes. The header must be valid (at most kMaxProtectors protectors).
std::vector<uint8_t> SerializeHeader(const VolumeHeader& header);

// NotFound if the magic is missing (not encrypted); Corruption for a short buffer, a checksum
// mismatch or a field this version cannot use (other version, cipher, key or sector size).
Result<VolumeHeader> ParseHeader(std::span<const uint8_t> bytes);

// 8 groups of 6 digits joined by '-': each group is a 16-bit block of the key times 11, as
// BitLocker does it, so a mistyped group is caught before the slow key derivation.
std::string FormatRecoveryPassword(const RecoveryKey& key);
// Accepts the 48 digits with or without dashes/spaces between the groups. InvalidArgument names
// the first group that is not a multiple of 11 below 720896 (a typo) or a wrong digit count.
Result<RecoveryKey> ParseRecoveryPassword(std::string_view text);

// Lower-case hex; the inverse is strict (even length, hex digits only).
std::string ToHex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> FromHex(std::string_view hex);
Result<TpmSecret> ParseTpmSecret(std::string_view hex);  // 64 hex digits

Kek KekFromRecoveryKey(const RecoveryKey& key, const VolumeHeader& header);
Kek KekFromTpmSecret(const TpmSecret& secret, const VolumeHeader& header);

// Wraps `key` for `header` (its fields before the protectors must be final: the tag binds them).
Protector WrapKey(const VolumeHeader& header, ProtectorType type, const Kek& kek,
                  const VolumeKey& key, const std::array<uint8_t, 16>& nonce);
// InvalidArgument("... does not unlock ...") when the tag does not match (wrong key or password).
Result<VolumeKey> UnwrapKey(const VolumeHeader& header, const Protector& protector, const Kek& kek);

// The whole unlock: find the protector, derive its KEK, unwrap. NotFound if the volume has no
// protector of that kind; InvalidArgument for a malformed or wrong password/secret.
Result<VolumeKey> UnlockWithRecoveryPassword(const VolumeHeader& header, std::string_view password);
Result<VolumeKey> UnlockWithTpmSecret(const VolumeHeader& header, std::string_view hex);

// Fills a buffer with random (or, for tests, seeded) bytes.
using RandomSource = std::function<void(std::span<uint8_t>)>;
// A deterministic source: HMAC-SHA256(seed, "chaoslab-bde/seed" || be64(counter)) blocks.
RandomSource SeededRandom(std::string seed);

// A fresh header with random volume id, salt and volume master key and both protectors.
struct NewVolume {
  VolumeHeader header;
  VolumeKey key{};
  RecoveryKey recovery_key{};
  TpmSecret tpm_secret{};
  std::string RecoveryPassword() const { return FormatRecoveryPassword(recovery_key); }
};
NewVolume CreateVolume(uint64_t data_sectors, uint32_t iterations, const RandomSource& random);

}  // namespace chaoslab::bde
