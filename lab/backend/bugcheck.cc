#include "lab/backend/bugcheck.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

namespace chaoslab {
namespace {

struct Named {
  uint64_t code;
  const char* name;
};

// Names from Microsoft's "Bug check code reference". The 0x1000xxxx codes are the same stop with
// the high bit Windows sets when the parameters are 64-bit ("_M" variants).
constexpr Named kStopCodes[] = {
    {0x0000000A, "IRQL_NOT_LESS_OR_EQUAL"},
    {0x0000001E, "KMODE_EXCEPTION_NOT_HANDLED"},
    {0x0000003B, "SYSTEM_SERVICE_EXCEPTION"},
    {0x00000050, "PAGE_FAULT_IN_NONPAGED_AREA"},
    {0x0000007A, "KERNEL_DATA_INPAGE_ERROR"},
    {0x0000007B, "INACCESSIBLE_BOOT_DEVICE"},
    {0x0000007E, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED"},
    {0x0000007F, "UNEXPECTED_KERNEL_MODE_TRAP"},
    {0x0000008E, "KERNEL_MODE_EXCEPTION_NOT_HANDLED"},
    {0x0000009F, "DRIVER_POWER_STATE_FAILURE"},
    {0x000000C2, "BAD_POOL_CALLER"},
    {0x000000C5, "DRIVER_CORRUPTED_EXPOOL"},
    {0x000000D1, "DRIVER_IRQL_NOT_LESS_OR_EQUAL"},
    {0x000000E2, "MANUALLY_INITIATED_CRASH"},
    {0x000000EF, "CRITICAL_PROCESS_DIED"},
    {0x000000F4, "CRITICAL_OBJECT_TERMINATION"},
    {0x00000101, "CLOCK_WATCHDOG_TIMEOUT"},
    {0x00000124, "WHEA_UNCORRECTABLE_ERROR"},
    {0x00000133, "DPC_WATCHDOG_VIOLATION"},
    {0x00000139, "KERNEL_SECURITY_CHECK_FAILURE"},
    {0x0000013A, "KERNEL_MODE_HEAP_CORRUPTION"},
    {0x00000154, "UNEXPECTED_STORE_EXCEPTION"},
    {0x000001CA, "SYNTHETIC_WATCHDOG_TIMEOUT"},
    {0x1000007E, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"},
    {0x1000008E, "KERNEL_MODE_EXCEPTION_NOT_HANDLED_M"},
    {0xDEADDEAD, "MANUALLY_INITIATED_CRASH1"},
};

Bugcheck Make(uint64_t code, const std::array<uint64_t, 4>& params) {
  Bugcheck b;
  b.code = code;
  b.params = params;
  b.name = std::string(StopCodeName(code));
  if (b.name.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "BUGCHECK_0x%08" PRIX64, code);
    b.name = buf;
  }
  return b;
}

// QMP numbers are uint64 in JSON; tolerate a string ("0x50" or "80") as some tools re-serialise.
std::optional<uint64_t> Number(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) return static_cast<uint64_t>(v.get<int64_t>());
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    const uint64_t n = std::strtoull(s.c_str(), &end, 0);
    if (!s.empty() && end == s.c_str() + s.size()) return n;
  }
  return std::nullopt;
}

}  // namespace

std::string_view StopCodeName(uint64_t code) {
  for (const Named& n : kStopCodes) {
    if (n.code == code) return n.name;
  }
  return {};
}

std::optional<Bugcheck> DecodeGuestPanicked(std::string_view event_json) {
  nlohmann::json j = nlohmann::json::parse(event_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  if (j.contains("data") && j["data"].is_object()) j = j["data"];
  if (!j.contains("info") || !j["info"].is_object()) return std::nullopt;
  const nlohmann::json& info = j["info"];
  if (!info.contains("type") || info["type"] != "hyper-v") return std::nullopt;
  std::array<uint64_t, 5> args{};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string key = "arg" + std::to_string(i + 1);
    if (!info.contains(key)) return std::nullopt;
    std::optional<uint64_t> n = Number(info[key]);
    if (!n) return std::nullopt;
    args[i] = *n;
  }
  return Make(args[0], {args[1], args[2], args[3], args[4]});
}

std::optional<Bugcheck> DecodeLibvirtPanicLog(std::string_view text) {
  static const std::regex re(
      R"re(hyper-v: arg1='(0x[0-9a-fA-F]+)', arg2='(0x[0-9a-fA-F]+)', arg3='(0x[0-9a-fA-F]+)', arg4='(0x[0-9a-fA-F]+)', arg5='(0x[0-9a-fA-F]+)')re");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(text.begin(), text.end(), m, re)) return std::nullopt;
  std::array<uint64_t, 5> args{};
  for (size_t i = 0; i < args.size(); ++i) {
    args[i] = std::strtoull(m[i + 1].str().c_str(), nullptr, 16);
  }
  return Make(args[0], {args[1], args[2], args[3], args[4]});
}

std::string BugcheckSignalLine(const Bugcheck& b) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "@@bugcheck code=0x%08" PRIX64 " name=%s p1=0x%" PRIX64 " p2=0x%" PRIX64
                " p3=0x%" PRIX64 " p4=0x%" PRIX64 " via=hyperv",
                b.code, b.name.c_str(), b.params[0], b.params[1], b.params[2], b.params[3]);
  return buf;
}

}  // namespace chaoslab
