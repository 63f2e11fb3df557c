#include "lab/fuzz/lab_fuzz.h"

#include <cstdlib>

namespace chaoslab::fuzz {
namespace {

struct Named {
  Target target;
  std::string_view name;
};
constexpr Named kTargets[] = {{Target::kQmp, "qmp"},
                              {Target::kContentServer, "content_server"},
                              {Target::kYaml, "yaml"},
                              {Target::kChannel, "channel"},
                              {Target::kDashboard, "dashboard"},
                              {Target::kGuestSignal, "guest_signal"}};

// The input being checked, for Fail's report (libFuzzer saves it too; the unit test does not).
thread_local std::string_view g_input;

}  // namespace

std::string_view TargetName(Target target) {
  for (const Named& n : kTargets) {
    if (n.target == target) return n.name;
  }
  return "?";
}

std::optional<Target> TargetByName(std::string_view name) {
  for (const Named& n : kTargets) {
    if (n.name == name) return n.target;
  }
  return std::nullopt;
}

void CheckInput(Target target, std::string_view bytes, Stats& stats) {
  ++stats["inputs"];
  g_input = bytes;
  switch (target) {
    case Target::kQmp:
      return CheckQmp(bytes, stats);
    case Target::kContentServer:
      return CheckContentServer(bytes, stats);
    case Target::kYaml:
      return CheckYaml(bytes, stats);
    case Target::kChannel:
      return CheckChannel(bytes, stats);
    case Target::kDashboard:
      return CheckDashboard(bytes, stats);
    case Target::kGuestSignal:
      return CheckGuestSignal(bytes, stats);
  }
}

void PrintStats(Target target, const Stats& stats, FILE* out) {
  std::string line = "lab-fuzz target=" + std::string(TargetName(target));
  for (const auto& [name, count] : stats) line += " " + name + "=" + std::to_string(count);
  std::fprintf(out, "%s\n", line.c_str());
}

void Fail(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "lab-fuzz: ORACLE FAILED: %.*s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::string shown;
  for (char c : g_input.substr(0, 400)) {
    auto u = static_cast<unsigned char>(c);
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", u);
    shown += (u >= 0x20 && u < 0x7f) || c == '\n' ? std::string(1, c) : std::string(hex);
  }
  std::fprintf(stderr, "lab-fuzz: the input (%zu bytes, up to 400 shown):\n%s\n", g_input.size(),
               shown.c_str());
  std::abort();
}

std::string SourceDir() {
  if (const char* dir = std::getenv("CHAOSLAB_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return CHAOSLAB_FUZZ_SOURCE_DIR;
}

}  // namespace chaoslab::fuzz
