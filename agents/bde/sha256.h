// SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and PBKDF2-HMAC-SHA256 (RFC 8018), written here so
// that the guest's static `bde` needs no crypto library: OpenSSL's libcrypto.a adds ~4 MB to a
// static binary and warns about NSS functions at link time. The host tool uses the same code for
// the key derivation; the tests check it against OpenSSL and the published test vectors.
// Pure functions and value types: thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

namespace chaoslab::bde {

using Digest = std::array<uint8_t, 32>;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data);
  Digest Finish();  // the object must not be used afterwards (except by assignment)

 private:
  void Compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

Digest Sha256Of(std::span<const uint8_t> data);

// HMAC-SHA256 with the key's inner and outer states computed once, so that PBKDF2's inner loop
// costs two compressions per iteration (it matters in a TCG guest).
class HmacSha256 {
 public:
  explicit HmacSha256(std::span<const uint8_t> key);
  Digest Mac(std::span<const uint8_t> message) const;
  // MAC of the concatenation of `parts` (avoids building the message).
  Digest Mac(std::initializer_list<std::span<const uint8_t>> parts) const;

 private:
  Sha256 inner_;
  Sha256 outer_;
};

Digest HmacSha256Of(std::span<const uint8_t> key, std::span<const uint8_t> message);

// PBKDF2-HMAC-SHA256 into `out` (any length). `iterations` >= 1.
void Pbkdf2HmacSha256(std::span<const uint8_t> password, std::span<const uint8_t> salt,
                      uint32_t iterations, std::span<uint8_t> out);

// Equal in time independent of where the inputs differ (for MAC checks).
bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);

// Overwrites `data` in a way the compiler may not drop (keys on the stack).
void SecureWipe(std::span<uint8_t> data);

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace chaoslab::bde
