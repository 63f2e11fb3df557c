// The guest console protocol (docs/GUEST-PROTOCOL.md): a guest's serial output, untrusted, split
// into lines as the backends' console readers do (ConsoleLineSplitter, in chunks) and each line
// read by ParseGuestSignal as the engine does.
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string>

#include "lab/backend/console_lines.h"
#include "lab/engine/guest_signal.h"
#include "lab/fuzz/lab_fuzz.h"

namespace chaoslab::fuzz {
namespace {

using Kind = GuestSignal::Kind;

// Whitespace as the parser's word splitting sees it (the C locale's isspace).
bool Space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// The word that names who speaks: what follows the first "@@", after any whitespace.
std::string_view Source(std::string_view line) {
  std::string_view rest = line.substr(line.find("@@") + 2);
  while (!rest.empty() && Space(rest.front())) rest.remove_prefix(1);
  size_t end = 0;
  while (end < rest.size() && !Space(rest[end])) ++end;
  return rest.substr(0, end);
}

std::string_view SourceOf(Kind kind) {
  switch (kind) {
    case Kind::kPhase:
    case Kind::kReady:
    case Kind::kCommand:
    case Kind::kRepair:
    case Kind::kBootFailed:
      return "winsim";
    case Kind::kLoaded:
    case Kind::kRejected:
    case Kind::kIpcOk:
    case Kind::kFetched:
    case Kind::kQuarantined:
    case Kind::kHeartbeat:
      return "csagent";
    case Kind::kBugcheck:
      return "bugcheck";
  }
  return "?";
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kPhase:
      return "phase";
    case Kind::kReady:
      return "ready";
    case Kind::kLoaded:
      return "loaded";
    case Kind::kRejected:
      return "rejected";
    case Kind::kIpcOk:
      return "ipc";
    case Kind::kFetched:
      return "fetched";
    case Kind::kQuarantined:
      return "quarantined";
    case Kind::kHeartbeat:
      return "heartbeat";
    case Kind::kBugcheck:
      return "bugcheck";
    case Kind::kCommand:
      return "command";
    case Kind::kRepair:
      return "repair";
    case Kind::kBootFailed:
      return "boot_failed";
  }
  return "?";
}

// What Int must say about `value`: the number when it is all decimal digits (a leading '-'
// allowed) and fits in a long long, else the fallback.
long long ExpectedInt(const std::string& value, long long fallback) {
  size_t digits = value.starts_with('-') ? 1 : 0;
  if (digits == value.size()) return fallback;
  for (size_t i = digits; i < value.size(); ++i) {
    if (value[i] < '0' || value[i] > '9') return fallback;
  }
  errno = 0;
  long long v = std::strtoll(value.c_str(), nullptr, 10);
  return errno == ERANGE ? fallback : v;
}

// One protocol line: every field is a key=value word of the line after "@@", the kind is one its
// source word can say, and the accessors keep to their domain.
void CheckSignal(const std::string& line, const GuestSignal& sig, Stats& stats) {
  // The engine quotes line.substr(line.find("@@")): without "@@" that would throw.
  const size_t at = line.find("@@");
  if (at == std::string::npos) Fail("guest signal", "a signal from a line without @@");
  if (Source(line) != SourceOf(sig.kind)) {
    Fail("guest signal", "kind " + std::string(KindName(sig.kind)) + " from source '" +
                             std::string(Source(line)) + "'");
  }
  if (sig.kind == Kind::kCommand && !sig.fields.contains("cmd")) Fail("guest signal", "no cmd=");
  if (sig.kind == Kind::kPhase && !sig.fields.contains("phase")) Fail("guest signal", "no phase=");
  const std::string_view words = std::string_view(line).substr(at + 2);
  for (const auto& [key, value] : sig.fields) {
    if (key.empty()) Fail("guest signal", "a field without a key: '=" + value + "'");
    for (char c : key) {
      if (Space(c) || c == '=') Fail("guest signal", "a key with '=' or whitespace: " + key);
    }
    for (char c : value) {
      if (Space(c)) Fail("guest signal", "a value with whitespace, key " + key);
    }
    if (words.find(key + "=" + value) == std::string_view::npos) {
      Fail("guest signal", "field " + key + " is not a word of the line");
    }
    constexpr long long kFallback = -7777;
    if (sig.Int(key, kFallback) != ExpectedInt(value, kFallback)) {
      Fail("guest signal", "Int(" + key + ") of '" + value + "'");
    }
    if (sig.Str(key) != value) Fail("guest signal", "Str(" + key + ")");
    ++stats["fields"];
  }
  if (sig.Int("\x01 absent", 42) != 42 || !sig.Str("\x01 absent").empty()) {
    Fail("guest signal", "an absent field has a value");
  }
  ++stats[std::string("kind_") + KindName(sig.kind)];
}

}  // namespace

void CheckGuestSignal(std::string_view bytes, Stats& stats) {
  // The console reader gets the bytes in chunks of whatever size read() returns.
  const size_t chunk = 1 + bytes.size() % 97;
  std::vector<std::string> lines;
  try {
    ConsoleLineSplitter splitter;
    auto keep = [&](std::string line) { lines.push_back(std::move(line)); };
    for (size_t at = 0; at < bytes.size(); at += chunk)
      splitter.Feed(bytes.substr(at, chunk), keep);
    splitter.Flush(keep);
  } catch (const std::exception& e) {
    Fail("console lines threw", e.what());
  }
  // The lines are the bytes without their line ends, in order, none longer than the reader's limit
  // (it may overshoot by what one read added).
  std::string joined, expected;
  for (const std::string& line : lines) {
    if (line.find_first_of("\r\n") != std::string::npos) Fail("console lines", "a line end kept");
    if (line.size() > kMaxConsoleLine + chunk) Fail("console lines", "a line over the limit");
    joined += line;
  }
  for (char c : bytes) {
    if (c != '\r' && c != '\n') expected += c;
  }
  if (joined != expected) Fail("console lines", "the lines are not the bytes");

  for (const std::string& line : lines) {
    ++stats["lines"];
    std::optional<GuestSignal> sig;
    try {
      sig = ParseGuestSignal(line);
    } catch (const std::exception& e) {
      Fail("guest signal threw", e.what());
    }
    if (!sig) continue;
    ++stats["signals"];
    try {
      CheckSignal(line, *sig, stats);
    } catch (const std::exception& e) {
      Fail("guest signal accessor threw", e.what());
    }
  }
}

}  // namespace chaoslab::fuzz
