#include "lab/config/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numbers>
#include <utility>

#include "lab/config/config_loader.h"

namespace chaoslab::config {
namespace {

// One table per enum: the YAML spelling of each value, in declaration order.
template <typename E>
using NameTable = std::vector<std::pair<E, std::string_view>>;

const NameTable<Role>& RoleTable() {
  static const auto* table = new NameTable<Role>{{Role::kWorkstation, "workstation"},
                                                 {Role::kServer, "server"},
                                                 {Role::kDomainController, "domain-controller"},
                                                 {Role::kKiosk, "kiosk"},
                                                 {Role::kCloudVm, "cloud-vm"}};
  return *table;
}

const NameTable<Network>& NetworkTable() {
  static const auto* table = new NameTable<Network>{{Network::kWired, "wired"},
                                                    {Network::kWifi, "wifi"},
                                                    {Network::kVpn, "vpn"},
                                                    {Network::kOffline, "offline"}};
  return *table;
}

const NameTable<FaultKind>& FaultKindTable() {
  static const auto* table = new NameTable<FaultKind>{{FaultKind::kChannel291, "channel-291"},
                                                      {FaultKind::kTruncated, "truncated"},
                                                      {FaultKind::kZeroed, "zeroed"},
                                                      {FaultKind::kBadMagic, "bad-magic"},
                                                      {FaultKind::kGood, "good"}};
  return *table;
}

const NameTable<RolloutPolicy>& RolloutPolicyTable() {
  static const auto* table = new NameTable<RolloutPolicy>{
      {RolloutPolicy::kAllAtOnce, "all-at-once"}, {RolloutPolicy::kRings, "rings"}};
  return *table;
}

const NameTable<RunbookStart>& RunbookStartTable() {
  static const auto* table = new NameTable<RunbookStart>{
      {RunbookStart::kAtDetection, "at-detection"}, {RunbookStart::kAfterRevert, "after-revert"}};
  return *table;
}

const NameTable<StepKind>& StepKindTable() {
  static const auto* table =
      new NameTable<StepKind>{{StepKind::kReboot, "reboot"},
                              {StepKind::kBoot, "boot"},
                              {StepKind::kUnlockBitlocker, "unlock-bitlocker"},
                              {StepKind::kDelete, "delete"},
                              {StepKind::kRestart, "restart"},
                              {StepKind::kRescueDisk, "rescue-disk"},
                              {StepKind::kRevertSnapshot, "revert-snapshot"},
                              {StepKind::kReimage, "reimage"},
                              {StepKind::kHypervisorRepair, "hypervisor-repair"}};
  return *table;
}

const NameTable<BootTarget>& BootTargetTable() {
  static const auto* table = new NameTable<BootTarget>{{BootTarget::kSafeMode, "safe-mode"},
                                                       {BootTarget::kWinRE, "winre"},
                                                       {BootTarget::kUsb, "usb"},
                                                       {BootTarget::kPxe, "pxe"}};
  return *table;
}
const NameTable<ImageKind>& ImageKindTable() {
  static const auto* table =
      new NameTable<ImageKind>{{ImageKind::kWinsim, "winsim"}, {ImageKind::kWindows, "windows"}};
  return *table;
}
const NameTable<RecoveryPath>& RecoveryPathTable() {
  static const auto* table = new NameTable<RecoveryPath>{{RecoveryPath::kSafeMode, "safe-mode"},
                                                         {RecoveryPath::kWinRE, "winre"},
                                                         {RecoveryPath::kUsb, "usb"},
                                                         {RecoveryPath::kPxe, "pxe"},
                                                         {RecoveryPath::kBitlocker, "bitlocker"},
                                                         {RecoveryPath::kRescueDisk, "rescue-disk"},
                                                         {RecoveryPath::kSnapshot, "snapshot"},
                                                         {RecoveryPath::kReimage, "reimage"}};
  return *table;
}

const NameTable<Resource>& ResourceTable() {
  static const auto* table = new NameTable<Resource>{
      {Resource::kTechnician, "technician"}, {Resource::kRemoteConsole, "remote-console"},
      {Resource::kUsbStick, "usb-stick"},    {Resource::kKeyEscrow, "key-escrow"},
      {Resource::kPxeServer, "pxe-server"},  {Resource::kHypervisor, "hypervisor"}};
  return *table;
}

const NameTable<BackendKind>& BackendKindTable() {
  static const auto* table =
      new NameTable<BackendKind>{{BackendKind::kQemu, "qemu"}, {BackendKind::kSim, "sim"}};
  return *table;
}

template <typename E>
std::string_view NameIn(const NameTable<E>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  std::abort();  // every enum value is in its table
}

template <typename E>
std::optional<E> ParseIn(const NameTable<E>& table, std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

template <typename E>
std::vector<E> ValuesOf(const NameTable<E>& table) {
  std::vector<E> out;
  for (const auto& entry : table) out.push_back(entry.first);
  return out;
}

}  // namespace

std::string_view RoleName(Role r) { return NameIn(RoleTable(), r); }
std::string_view NetworkName(Network n) { return NameIn(NetworkTable(), n); }
std::string_view FaultKindName(FaultKind k) { return NameIn(FaultKindTable(), k); }
std::string_view RolloutPolicyName(RolloutPolicy p) { return NameIn(RolloutPolicyTable(), p); }
std::string_view RunbookStartName(RunbookStart s) { return NameIn(RunbookStartTable(), s); }
std::string_view StepKindName(StepKind k) { return NameIn(StepKindTable(), k); }
std::string_view BootTargetName(BootTarget t) { return NameIn(BootTargetTable(), t); }
std::string_view ResourceName(Resource r) { return NameIn(ResourceTable(), r); }
std::string_view BackendKindName(BackendKind b) { return NameIn(BackendKindTable(), b); }
std::string_view ImageKindName(ImageKind k) { return NameIn(ImageKindTable(), k); }
std::string_view RecoveryPathName(RecoveryPath r) { return NameIn(RecoveryPathTable(), r); }

std::optional<Role> ParseRole(std::string_view name) { return ParseIn(RoleTable(), name); }
std::optional<Network> ParseNetwork(std::string_view name) { return ParseIn(NetworkTable(), name); }
std::optional<FaultKind> ParseFaultKind(std::string_view name) {
  return ParseIn(FaultKindTable(), name);
}
std::optional<RolloutPolicy> ParseRolloutPolicy(std::string_view name) {
  return ParseIn(RolloutPolicyTable(), name);
}
std::optional<RunbookStart> ParseRunbookStart(std::string_view name) {
  return ParseIn(RunbookStartTable(), name);
}
std::optional<StepKind> ParseStepKind(std::string_view name) {
  return ParseIn(StepKindTable(), name);
}
std::optional<BootTarget> ParseBootTarget(std::string_view name) {
  return ParseIn(BootTargetTable(), name);
}
std::optional<Resource> ParseResource(std::string_view name) {
  return ParseIn(ResourceTable(), name);
}
std::optional<BackendKind> ParseBackendKind(std::string_view name) {
  return ParseIn(BackendKindTable(), name);
}
std::optional<ImageKind> ParseImageKind(std::string_view name) {
  return ParseIn(ImageKindTable(), name);
}
std::optional<RecoveryPath> ParseRecoveryPath(std::string_view name) {
  return ParseIn(RecoveryPathTable(), name);
}

const std::vector<Role>& AllRoles() {
  static const auto* all = new std::vector<Role>(ValuesOf(RoleTable()));
  return *all;
}
const std::vector<Network>& AllNetworks() {
  static const auto* all = new std::vector<Network>(ValuesOf(NetworkTable()));
  return *all;
}
const std::vector<FaultKind>& AllFaultKinds() {
  static const auto* all = new std::vector<FaultKind>(ValuesOf(FaultKindTable()));
  return *all;
}
const std::vector<RolloutPolicy>& AllRolloutPolicies() {
  static const auto* all = new std::vector<RolloutPolicy>(ValuesOf(RolloutPolicyTable()));
  return *all;
}
const std::vector<RunbookStart>& AllRunbookStarts() {
  static const auto* all = new std::vector<RunbookStart>(ValuesOf(RunbookStartTable()));
  return *all;
}
const std::vector<StepKind>& AllStepKinds() {
  static const auto* all = new std::vector<StepKind>(ValuesOf(StepKindTable()));
  return *all;
}
const std::vector<BootTarget>& AllBootTargets() {
  static const auto* all = new std::vector<BootTarget>(ValuesOf(BootTargetTable()));
  return *all;
}
const std::vector<Resource>& AllResources() {
  static const auto* all = new std::vector<Resource>(ValuesOf(ResourceTable()));
  return *all;
}
const std::vector<BackendKind>& AllBackendKinds() {
  static const auto* all = new std::vector<BackendKind>(ValuesOf(BackendKindTable()));
  return *all;
}
const std::vector<ImageKind>& AllImageKinds() {
  static const auto* all = new std::vector<ImageKind>(ValuesOf(ImageKindTable()));
  return *all;
}
const std::vector<RecoveryPath>& AllRecoveryPaths() {
  static const auto* all = new std::vector<RecoveryPath>(ValuesOf(RecoveryPathTable()));
  return *all;
}

std::optional<RecoveryPath> StepRecoveryPath(StepKind kind, BootTarget into) {
  switch (kind) {
    case StepKind::kBoot:
      switch (into) {
        case BootTarget::kSafeMode:
          return RecoveryPath::kSafeMode;
        case BootTarget::kWinRE:
          return RecoveryPath::kWinRE;
        case BootTarget::kUsb:
          return RecoveryPath::kUsb;
        case BootTarget::kPxe:
          return RecoveryPath::kPxe;
      }
      return std::nullopt;
    case StepKind::kUnlockBitlocker:
      return RecoveryPath::kBitlocker;
    case StepKind::kRescueDisk:
    case StepKind::kHypervisorRepair:  // the same disk repair, by a script
      return RecoveryPath::kRescueDisk;
    case StepKind::kRevertSnapshot:
      return RecoveryPath::kSnapshot;
    case StepKind::kReimage:
      return RecoveryPath::kReimage;
    case StepKind::kReboot:
    case StepKind::kDelete:
    case StepKind::kRestart:
      return std::nullopt;
  }
  return std::nullopt;
}

bool ImageSupports(const ImageConfig& image, RecoveryPath path) {
  for (RecoveryPath p : image.recovery) {
    if (p == path) return true;
  }
  return false;
}

const std::vector<std::string>& SensorVersions() {
  static const auto* versions = new std::vector<std::string>{"7.10", "7.11", "7.11-fixed"};
  return *versions;
}

namespace {
constexpr std::string_view kWeekdays[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
}  // namespace

std::optional<int> ParseWeekday(std::string_view name) {
  for (int d = 0; d < 7; ++d)
    if (kWeekdays[d] == name) return d;
  return std::nullopt;
}

std::string_view WeekdayName(int day) { return kWeekdays[((day % 7) + 7) % 7]; }

int ScenarioDate::Weekday() const {
  // 1970-01-01 was a Thursday; Monday = 0.
  return static_cast<int>(((DaysSinceEpoch() + 3) % 7 + 7) % 7);
}

int64_t ScenarioDate::DaysSinceEpoch() const {
  // The proleptic Gregorian date's days since 1970-01-01 (Howard Hinnant's days_from_civil).
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int64_t>(era) * 146097 + doe - 719468;
}

std::string UtcInstant::ToString() const {
  // Howard Hinnant's civil_from_days.
  const int64_t days = (unix_s >= 0 ? unix_s : unix_s - 86399) / 86400;
  const int64_t secs = unix_s - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2);
  char text[96];
  std::snprintf(text, sizeof(text), "%04lld-%02lld-%02lldT%02lld:%02lldZ",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs % 3600 / 60));
  return text;
}

std::string ScenarioDate::ToString() const {
  char text[16];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02d", year, month, day);
  return text;
}

std::string HostName(const std::string& group, int64_t index) {
  std::string number = std::to_string(index);
  if (number.size() < 2) number.insert(0, "0");
  return group + "-" + number;
}

int64_t TotalHosts(const SetupConfig& setup) {
  int64_t total = 0;
  for (const GroupConfig& group : setup.groups) total += group.count;
  return total;
}

SetupConfig ScaleSetupTo(const SetupConfig& setup, int64_t hosts) {
  const int64_t total = TotalHosts(setup);
  if (total == hosts || total == 0) return setup;
  const double f = static_cast<double>(hosts) / static_cast<double>(total);
  const auto scaled = [f](int n) {
    return static_cast<int>(std::max<int64_t>(1, std::llround(n * f)));
  };
  SetupConfig s = setup;
  std::map<std::string, std::pair<int, int>> counts;  // group → (before, after)
  for (auto& g : s.groups) {
    int before = g.count;
    g.count = scaled(g.count);
    counts[g.name] = {before, g.count};
  }
  // The hypervisors grow with the fleet they run (the script is written once, whatever the size).
  if (s.hypervisor.enabled) s.hypervisor.repairs_at_once = scaled(s.hypervisor.repairs_at_once);
  for (auto& site : s.sites) {
    site.technicians = scaled(site.technicians);
    if (site.usb_sticks > 0) site.usb_sticks = scaled(site.usb_sticks);
    if (site.console_sessions > 0) site.console_sessions = scaled(site.console_sessions);
    // The people who come to help scale with the site (their draw is rounded to whole people).
    for (auto* wave : {&site.crisis.call_in, &site.crisis.outside_help}) {
      if (!*wave) continue;
      Distribution& n = (*wave)->technicians;
      n.a *= f;
      n.b *= f;
      n.c *= f;
    }
  }
  for (auto& svc : s.services) {
    for (auto& need : svc.needs) {
      auto [before, after] = counts[need.group];
      // The epsilon keeps an exact share (3 of 6 → 2 of 4) from rounding up on float noise.
      need.at_least = std::clamp(
          static_cast<int>(std::ceil(need.at_least * static_cast<double>(after) / before - 1e-9)),
          1, after);
    }
  }
  return s;
}

// z of the standard normal at the 90th percentile: p90 = median * exp(sigma * z90).
constexpr double kZ90 = 1.2815515655446004;

namespace {

double LognormalSigma(Seconds median, Seconds p90) {
  if (median <= 0 || p90 <= median) return 0;
  return std::log(p90 / median) / kZ90;
}

}  // namespace

Seconds Distribution::SampleUnit(double u1, double u2) const {
  u1 = std::clamp(u1, 0.0, 1.0);
  u2 = std::clamp(u2, 0.0, 1.0);
  switch (kind) {
    case Kind::kConstant:
      return std::max(a, 0.0);
    case Kind::kUniform:
      return std::max(a + u1 * (b - a), 0.0);
    case Kind::kTriangular: {
      // Inverse CDF: the density rises linearly from a to the mode b and falls to c.
      if (c <= a) return std::max(a, 0.0);
      const double at_mode = (b - a) / (c - a);
      const double x = u1 < at_mode ? a + std::sqrt(u1 * (c - a) * (b - a))
                                    : c - std::sqrt((1 - u1) * (c - a) * (c - b));
      return std::max(x, 0.0);
    }
    case Kind::kLognormal: {
      if (a <= 0) return 0;
      // Box-Muller: 1 - u1 is in (0, 1], so the logarithm is finite.
      const double z = std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * std::numbers::pi * u2);
      return a * std::exp(LognormalSigma(a, b) * z);
    }
  }
  std::abort();  // every kind is handled above
}

Seconds Distribution::Mean() const {
  switch (kind) {
    case Kind::kConstant:
      return a;
    case Kind::kUniform:
      return (a + b) / 2;
    case Kind::kTriangular:
      return (a + b + c) / 3;
    case Kind::kLognormal: {
      const double sigma = LognormalSigma(a, b);
      return a * std::exp(sigma * sigma / 2);
    }
  }
  std::abort();
}

std::string Distribution::ToString() const {
  switch (kind) {
    case Kind::kConstant:
      return FormatDuration(a);
    case Kind::kUniform:
      return "uniform(" + FormatDuration(a) + ", " + FormatDuration(b) + ")";
    case Kind::kTriangular:
      return "triangular(" + FormatDuration(a) + ", " + FormatDuration(b) + ", " +
             FormatDuration(c) + ")";
    case Kind::kLognormal:
      return "lognormal(median " + FormatDuration(a) + ", p90 " + FormatDuration(b) + ")";
  }
  std::abort();
}

bool ConditionsMatch(const Conditions& when, const GroupConfig& group) {
  auto in = [](const auto& list, const auto& value) {
    return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
  };
  if (when.bitlocker && *when.bitlocker != group.bitlocker) return false;
  if (when.oob_console && *when.oob_console != group.oob_console) return false;
  if (when.cloud && *when.cloud != group.cloud) return false;
  if (when.on_hypervisor && *when.on_hypervisor != group.on_hypervisor) return false;
  return in(when.roles, group.role) && in(when.groups, group.name) && in(when.sites, group.site);
}

}  // namespace chaoslab::config
