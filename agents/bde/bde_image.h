// Host side of the BitLocker emulation: encrypts a plaintext disk image into the layout of
// bde_format.h (AES-256-XTS from OpenSSL's libcrypto), reads headers, decrypts for tests and
// inspection. Free functions, no shared state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "agents/bde/bde_format.h"
#include "lab/common/status.h"

namespace chaoslab::bde {

struct EncryptOptions {
  std::string in;   // raw plaintext image; its size must be a positive multiple of 512
  std::string out;  // must not exist; written to a temporary name first, then renamed
  // Derive every "random" value (keys, salt, ids, nonces) from this string: the same seed and
  // input give the same bytes. Only for tests; absent = OpenSSL's RAND_bytes.
  std::optional<std::string> seed;
  uint32_t iterations = kDefaultIterations;
};

struct EncryptedImage {
  VolumeHeader header;
  std::string recovery_password;  // 8 groups of 6 digits
  std::string tpm_secret_hex;     // 64 hex digits (what the emulated TPM releases)
};

// InvalidArgument for bad options or an input of the wrong size, IoError for file problems,
// Internal if OpenSSL fails.
Result<EncryptedImage> EncryptImage(const EncryptOptions& options);

// The header of an encrypted image; NotFound if the image is not encrypted.
Result<VolumeHeader> ReadImageHeader(const std::string& path);

// Writes the plaintext volume of `in` (encrypted with `key`) to `out` (must not exist).
Status DecryptImage(const std::string& in, const std::string& out, const VolumeKey& key);

// AES-256-XTS over whole 512-byte sectors in place; the tweak of sector i is `first_sector + i`
// (64-bit little-endian), as dm-crypt's plain64 IV. `data.size()` must be a multiple of 512.
Status XtsSectors(const VolumeKey& key, uint64_t first_sector, std::span<uint8_t> data,
                  bool encrypt);

// OpenSSL's RAND_bytes (aborts if the system has no entropy: an impossible state on Linux).
RandomSource SystemRandom();

}  // namespace chaoslab::bde
