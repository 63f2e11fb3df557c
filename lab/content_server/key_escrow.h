// The key escrow: where the BitLocker recovery passwords of the fleet live (Active Directory,
// Entra ID...). The content server answers `GET /v1/escrow/key?host=<id>` from it; a lab run can
// take it down (SetAvailable(false)) when the hosts that serve it crash.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "lab/common/status.h"

namespace chaoslab {

class KeyEscrow {
 public:
  KeyEscrow() = default;
  KeyEscrow(const KeyEscrow&) = delete;
  KeyEscrow& operator=(const KeyEscrow&) = delete;

  // Keeps `recovery_password` for `host_id`, replacing an earlier one.
  void Store(const std::string& host_id, const std::string& recovery_password);

  // Stores the recovery password in `path` for `host_id`: a file holding one BitLocker recovery
  // password (8 groups of 6 digits, each group a multiple of 11 below 720896, as BitLocker makes
  // them), such as the recovery-password.txt of a golden Windows image (images/windows/build.sh).
  // Surrounding whitespace is ignored. NotFound or IoError naming the file if it cannot be read,
  // InvalidArgument (without the file's contents) if it holds no such password.
  Status LoadFromFile(const std::string& host_id, const std::string& path);

  // While unavailable every Lookup fails with Unavailable (the escrow's servers are down).
  // Available from the start.
  void SetAvailable(bool available);
  bool available() const;

  // The host's recovery password. Unavailable when the escrow is down, NotFound for a host it
  // does not know. Only successful lookups are counted.
  Result<std::string> Lookup(const std::string& host_id);
  int lookups() const;

  // A new credential for `host_id` (32 random hex digits), replacing any earlier one: what the
  // host's link presents to the content server (lab/content_server/host_credential.h).
  std::string IssueCredential(const std::string& host_id);

  // Makes `credential` (hex digits) `host_id`'s, replacing any earlier one: a credential made
  // elsewhere (IssueCredential draws one; tests and fuzzers need a known one).
  void StoreCredential(const std::string& host_id, const std::string& credential);

  // The host that `credential` was issued to; nullopt for a credential this escrow never issued.
  std::optional<std::string> HostOfCredential(std::string_view credential) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> passwords_;
  std::map<std::string, std::string, std::less<>> host_of_credential_;
  bool available_ = true;
  int lookups_ = 0;
};

}  // namespace chaoslab
