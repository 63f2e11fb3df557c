#include "lab/content_server/key_escrow.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace chaoslab {
namespace {

bool IsBitLockerRecoveryPassword(const std::string& pw) {
  if (pw.size() != 55) return false;
  for (size_t group = 0; group < 8; ++group) {
    const size_t at = group * 7;
    if (group > 0 && pw[at - 1] != '-') return false;
    int value = 0;
    for (size_t i = at; i < at + 6; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(pw[i]))) return false;
      value = value * 10 + (pw[i] - '0');
    }
    if (value % 11 != 0 || value >= 720896) return false;
  }
  return true;
}

}  // namespace

Status KeyEscrow::LoadFromFile(const std::string& host_id, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("recovery password file " + path + " does not exist");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Status::IoError("cannot read " + path);
  const size_t begin = text.find_first_not_of(" \t\r\n");
  const size_t end = text.find_last_not_of(" \t\r\n");
  const std::string pw = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
  if (!IsBitLockerRecoveryPassword(pw)) {
    return Status::InvalidArgument(path +
                                   " holds no BitLocker recovery password (8 groups of 6 digits, "
                                   "each a multiple of 11 below 720896)");
  }
  Store(host_id, pw);
  return Status::Ok();
}

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

std::string KeyEscrow::IssueCredential(const std::string& host_id) {
  std::random_device entropy;  // the kernel's random source, not a seeded stream
  std::string credential;
  for (int i = 0; i < 4; ++i) {
    char word[9];
    std::snprintf(word, sizeof word, "%08x", static_cast<unsigned>(entropy()));
    credential += word;
  }
  StoreCredential(host_id, credential);
  return credential;
}

void KeyEscrow::StoreCredential(const std::string& host_id, const std::string& credential) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(host_of_credential_, [&](const auto& entry) { return entry.second == host_id; });
  host_of_credential_[credential] = host_id;
}

std::optional<std::string> KeyEscrow::HostOfCredential(std::string_view credential) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = host_of_credential_.find(credential);
  if (it == host_of_credential_.end()) return std::nullopt;
  return it->second;
}

}  // namespace chaoslab
