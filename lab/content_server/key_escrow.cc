#include "lab/content_server/key_escrow.h"

namespace chaoslab {

void KeyEscrow::Store(const std::string& host_id, const std::string& recovery_password) {
  std::lock_guard<std::mutex> lock(mu_);
  passwords_[host_id] = recovery_password;
}

void KeyEscrow::SetAvailable(bool available) {
  std::lock_guard<std::mutex> lock(mu_);
  available_ = available;
}

bool KeyEscrow::available() const {
  std::lock_guard<std::mutex> lock(mu_);
  return available_;
}

Result<std::string> KeyEscrow::Lookup(const std::string& host_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!available_) return Status::Unavailable("the key escrow is unavailable");
  auto it = passwords_.find(host_id);
  if (it == passwords_.end()) {
    return Status::NotFound("the key escrow has no recovery password for host '" + host_id + "'");
  }
  ++lookups_;
  return it->second;
}

int KeyEscrow::lookups() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lookups_;
}

}  // namespace chaoslab
