#include "lab/engine/guest_signal.h"

#include <charconv>
#include <sstream>

namespace chaoslab {

long long GuestSignal::Int(const std::string& key, long long fallback) const {
  auto it = fields.find(key);
  if (it == fields.end()) return fallback;
  long long v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return (ec == std::errc() && p == s.data() + s.size()) ? v : fallback;
}

std::string GuestSignal::Str(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? std::string() : it->second;
}

std::optional<GuestSignal> ParseGuestSignal(std::string_view line) {
  size_t at = line.find("@@");
  if (at == std::string_view::npos) return std::nullopt;
  std::istringstream words{std::string(line.substr(at + 2))};
  std::string source, word;
  words >> source;
  GuestSignal sig{GuestSignal::Kind::kPhase, {}};
  std::string verb;
  while (words >> word) {
    size_t eq = word.find('=');
    if (eq == 0) continue;  // "=value": no key=value word, and no verb either
    if (eq == std::string::npos) {
      if (verb.empty()) verb = word;
      continue;
    }
    sig.fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  using K = GuestSignal::Kind;
  if (source == "winsim") {
    if (verb == "ready")
      sig.kind = K::kReady;
    else if (verb == "repair")
      sig.kind = K::kRepair;
    else if (verb == "boot-failed")
      sig.kind = K::kBootFailed;
    else if (sig.fields.count("cmd"))
      sig.kind = K::kCommand;
    else if (sig.fields.count("phase"))
      sig.kind = K::kPhase;
    else
      return std::nullopt;
  } else if (source == "csagent") {
    if (verb == "loaded")
      sig.kind = K::kLoaded;
    else if (verb == "rejected")
      sig.kind = K::kRejected;
    else if (verb == "ipc-notification")
      sig.kind = K::kIpcOk;
    else if (verb == "fetched")
      sig.kind = K::kFetched;
    else if (verb == "quarantined")
      sig.kind = K::kQuarantined;
    else if (verb == "heartbeat")
      sig.kind = K::kHeartbeat;
    else
      return std::nullopt;
  } else if (source == "bugcheck") {
    sig.kind = K::kBugcheck;
  } else {
    return std::nullopt;
  }
  return sig;
}

}  // namespace chaoslab
