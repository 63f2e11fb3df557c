// Playbook configuration: what the user wrote, as plain structs.
//
// Parsing (config_loader.h) turns YAML into these structs and rejects unknown keys, wrong types and
// impossible values with "file:line:column: what was expected". Paths are resolved relative to the
// file that names them. Nothing here opens a VM or a socket: these are inputs to the engine.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::config {

// Seconds of scenario time. Times of day ("04:09") are seconds since the scenario day's midnight.
using Seconds = double;

enum class Role { kWorkstation, kServer, kDomainController, kKiosk, kCloudVm };
enum class Network { kWired, kWifi, kVpn, kOffline };
enum class FaultKind { kChannel291, kTruncated, kZeroed, kBadMagic, kGood };
// all-at-once: every online host sees new content at the release (July 2024). rings: the release
// goes out ring by ring (canary → early → broad), each ring `after` the release, and a health gate
// halts it when the rings released so far crash too often (the staged rollout committed to
// afterwards).
enum class RolloutPolicy { kAllAtOnce, kRings };
enum class RunbookStart { kAtDetection, kAfterRevert };
// Runbook steps (DESIGN.md "Runbook"); YAML spellings: reboot, boot, unlock-bitlocker, delete,
// restart, rescue-disk, revert-snapshot, reimage, hypervisor-repair.
enum class StepKind {
  kReboot,           // reset the host (resume it if parked) up to `times` times until it is healthy
  kBoot,             // reset into a recovery environment (`into`): safe mode, WinRE, USB or PXE
  kUnlockBitlocker,  // fetch the host's 48-digit recovery password from the key escrow and type it
                     // (nothing to do on a host without BitLocker)
  kDelete,           // delete files matching `pattern` in the sensor's content folder (console)
  kRestart,          // leave the recovery environment, boot normally, wait for healthy or a crash
  kRescueDisk,       // power off, repair the system disk from a rescue VM (unlock if needed), start
  kRevertSnapshot,   // power off, revert the system disk to the pre-update snapshot, start
  kReimage,          // power off, fresh system disk from the golden image, start
  // rescue-disk done by the organisation's script on its hypervisor: no person per host, up to
  // `hypervisor.repairs_at_once` disks at once once the script is ready; virtual hosts only
  kHypervisorRepair,
};
// Where a `boot` step takes the host. YAML: safe-mode, winre, usb, pxe.
enum class BootTarget { kSafeMode, kWinRE, kUsb, kPxe };
// What a step can need (DESIGN.md). YAML: technician, remote-console, usb-stick, key-escrow,
// pxe-server, hypervisor.
//   technician      one of the host site's technicians, on shift, who travels to the host
//   remote-console  the host has an out-of-band console (group `console: oob`); a technician of
//                   the host's site works it without travelling, one of up to K consoles at once
//                   (site `remote_consoles`)
//   usb-stick       one of the site's recovery sticks (held until the host is back)
//   key-escrow      the key escrow answers (it may live on fleet hosts that are down themselves);
//                   only hosts with BitLocker wait for it, the others skip this need
//   pxe-server      the setup has network boot (`pxe: true`)
//   hypervisor      one of the setup's `hypervisor.repairs_at_once` repair slots, once its repair
//                   script is ready (held until the disk is back on its host); hypervisor-repair
//                   steps only
// The loader adds the needs a step cannot do without when the runbook does not write them:
// usb-stick for `boot: usb`, pxe-server for `boot: pxe`, key-escrow for `unlock-bitlocker`,
// hypervisor and key-escrow for `hypervisor-repair`.
enum class Resource { kTechnician, kRemoteConsole, kUsbStick, kKeyEscrow, kPxeServer, kHypervisor };
// qemu: real guests (lab/vm); sim: modelled hosts (lab/sim), calibrated on real guests.
enum class BackendKind { kQemu, kSim };
// What an image is. YAML: winsim (the Linux stand-in of images/winsim, default when image.yaml
// names no kind), windows (a golden image made from a user's ISO by images/windows/build.sh).
enum class ImageKind { kWinsim, kWindows };
// The ways out of the boot loop an image can be taken (image.yaml `recovery:`), each the ability a
// runbook step relies on. YAML: safe-mode, winre, usb, pxe (boot into), bitlocker (unlock with the
// recovery password on the console), rescue-disk (its disk repaired from a rescue VM), snapshot
// (revert-snapshot), reimage. `reboot`, `delete` and `restart` need none: every image can be reset,
// and delete runs in whatever environment a previous step booted.
enum class RecoveryPath {
  kSafeMode,
  kWinRE,
  kUsb,
  kPxe,
  kBitlocker,
  kRescueDisk,
  kSnapshot,
  kReimage
};

// The spelling of each enum value in YAML ("domain-controller", "channel-291", "after-revert"...).
std::string_view RoleName(Role r);
std::string_view NetworkName(Network n);
std::string_view FaultKindName(FaultKind k);
std::string_view RolloutPolicyName(RolloutPolicy p);
std::string_view RunbookStartName(RunbookStart s);
std::string_view StepKindName(StepKind k);
std::string_view BootTargetName(BootTarget t);
std::string_view ResourceName(Resource r);
std::string_view BackendKindName(BackendKind b);
std::string_view ImageKindName(ImageKind k);
std::string_view RecoveryPathName(RecoveryPath r);

// The reverse: the enum value for a YAML spelling, or nullopt if there is none (exact match).
std::optional<Role> ParseRole(std::string_view name);
std::optional<Network> ParseNetwork(std::string_view name);
std::optional<FaultKind> ParseFaultKind(std::string_view name);
std::optional<RolloutPolicy> ParseRolloutPolicy(std::string_view name);
std::optional<RunbookStart> ParseRunbookStart(std::string_view name);
std::optional<StepKind> ParseStepKind(std::string_view name);
std::optional<BootTarget> ParseBootTarget(std::string_view name);
std::optional<Resource> ParseResource(std::string_view name);
std::optional<BackendKind> ParseBackendKind(std::string_view name);
std::optional<ImageKind> ParseImageKind(std::string_view name);
std::optional<RecoveryPath> ParseRecoveryPath(std::string_view name);

// Every value of each enum, in declaration order (for help texts and "allowed: ..." messages).
const std::vector<Role>& AllRoles();
const std::vector<Network>& AllNetworks();
const std::vector<FaultKind>& AllFaultKinds();
const std::vector<RolloutPolicy>& AllRolloutPolicies();
const std::vector<RunbookStart>& AllRunbookStarts();
const std::vector<StepKind>& AllStepKinds();
const std::vector<BootTarget>& AllBootTargets();
const std::vector<Resource>& AllResources();
const std::vector<BackendKind>& AllBackendKinds();
const std::vector<ImageKind>& AllImageKinds();
const std::vector<RecoveryPath>& AllRecoveryPaths();

// The recovery path a runbook step needs from the image, or nullopt for steps every image can do.
std::optional<RecoveryPath> StepRecoveryPath(StepKind kind, BootTarget into);

// Sensor versions a group may run: "7.10" predates the IPC template type (never affected), "7.11"
// is the affected sensor, "7.11-fixed" has the bounds check and validator fix.
const std::vector<std::string>& SensorVersions();

// A duration that varies (how long a human step takes). YAML forms:
//   "5m"                                   constant
//   {uniform: [5m, 20m]}                   uniform between the two
//   {triangular: [3m, 5m, 20m]}            min, mode, max
//   {lognormal: {median: 10m, p90: 30m}}   log-normal with that median and 90th percentile
struct Distribution {
  enum class Kind { kConstant, kUniform, kTriangular, kLognormal };
  Kind kind = Kind::kConstant;
  // constant: a; uniform: [a, b]; triangular: a = min, b = mode, c = max; lognormal: a = median,
  // b = p90 (b >= a).
  Seconds a = 0, b = 0, c = 0;
  // Draws one value (>= 0) from `rng`; the same rng state gives the same value on every machine.
  template <typename Rng>
  Seconds Sample(Rng& rng) const {
    // Two statements: the order in which function arguments are evaluated is unspecified.
    const double u1 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    return SampleUnit(u1, u2);
  }
  // Deterministic transform of two uniforms in [0, 1) (the second only for lognormal).
  Seconds SampleUnit(double u1, double u2) const;
  Seconds Mean() const;
  std::string ToString() const;  // "5m", "uniform(5m, 20m)", ...
};

// Scenario seconds that each VM phase costs, for one role (from the image's timing profile).
struct PhaseTiming {
  Seconds boot = 45;  // power-on or reset to "ready"
  Seconds driver_load =
      20;  // power-on or reset to boot-start drivers (where a bad channel file crashes)
  Seconds crash_dump = 15;     // bugcheck screen and dump until the machine resets
  Seconds content_fetch = 60;  // published content until a running host has fetched it
};

// What a host's link does to its traffic (image.yaml `networks:`, docs/TIME-BASE.md). A winsim
// guest applies it itself, on its own clock (netem on its network adapter); for other images the
// lab-side relay delays each connection instead, on the lab machine's clock.
struct NetworkProfile {
  int64_t rtt_ms = 0;          // round trip to the vendor's cloud
  int64_t jitter_ms = 0;       // each packet's delay uniform in rtt +- jitter
  double loss_percent = 0;     // of packets
  int64_t bandwidth_mbit = 0;  // 0: not limited
  // From the sensor's start until the link carries anything, drawn uniformly per boot in
  // [min, max] (`usable_after_ms: 300` or `[100, 2000]`).
  int64_t usable_after_min_ms = 0;
  int64_t usable_after_max_ms = 0;
  bool operator==(const NetworkProfile&) const = default;
};

struct ImageConfig {
  std::string name;                     // "winsim"
  ImageKind kind = ImageKind::kWinsim;  // `kind:`, winsim when not written
  std::string description;
  std::string recipe_dir;  // absolute path of images/<name>
  std::string file;        // absolute path of images/<name>/image.yaml
  // One entry for every Role: roles image.yaml does not list, and phases a role does not list, keep
  // the PhaseTiming defaults, so timing.at(role) always works.
  // "custom" (images/kernel, purpose-built and fast) or "debian" (the stock kernel, the fallback).
  std::string kernel = "custom";
  // The boot race, in the guest's real milliseconds: from the sensor starting (its driver loads the
  // cached content) to the first IPC notification that interprets it. The cloud fetch runs
  // meanwhile; if newer content arrives first, the boot survives (`winsim.ipc_ms`). 450 when
  // image.yaml does not say. The lab passes a run's window to every winsim guest
  // (ScenarioConfig::RaceWindowMs()), so the guest's own fallback when the word is absent (200 ms
  // in images/winsim/init) never applies to a lab run; the rescue VM boots offline from the
  // recovery media and runs no race.
  int race_window_ms = 450;
  // `networks:` per network kind; a network not listed is not shaped at all.
  std::map<Network, NetworkProfile> networks;
  std::map<Role, PhaseTiming> timing;
  // `recovery:`, as written, no duplicates. Not written: every path (the winsim guest implements
  // them all); a windows image must list its own.
  std::vector<RecoveryPath> recovery = AllRecoveryPaths();
  SourceLocation where;
};

// Whether the image can be taken down `path`.
bool ImageSupports(const ImageConfig& image, RecoveryPath path);

// Days of the week as bits: bit 0 Monday ... bit 6 Sunday.
inline constexpr uint8_t kEveryDay = 0x7f;
// "mon".."sun" → 0..6 (Monday 0), or nullopt.
std::optional<int> ParseWeekday(std::string_view name);
std::string_view WeekdayName(int day);  // 0..6 → "mon".."sun"

// A time-of-day window when a site's technicians are at work, in the site's local time:
// "08:00-16:00"; an end before the start runs over midnight ("22:00-06:00"). `days`: the days it
// starts on (an overnight shift belongs to the day it starts), every day unless written.
struct Shift {
  Seconds start = 0;
  Seconds end = 24 * 3600;
  SourceLocation where;
  uint8_t days = kEveryDay;
};

// One wave of people who come to help a site during the incident: `technicians` more of them,
// arriving `after` the site knew of the incident. Both drawn once per site from the scenario's
// seed (whole people: the draw rounded).
struct StaffArrival {
  Distribution after;
  Distribution technicians;
  SourceLocation where;
};

// What changes at a site once it knows of the incident (`crisis:` in a site). Unset parts change
// nothing; a site without it keeps its shifts and technicians throughout.
struct CrisisStaffing {
  // Scenario time the site knows; nullopt: when its first host crashes.
  std::optional<Seconds> known_at;
  SourceLocation known_at_where;
  // After this delay, the site's technicians work around the clock (shifts and days no longer
  // apply).
  std::optional<Distribution> extended_hours;
  std::optional<StaffArrival> call_in;       // the site's own people called in
  std::optional<StaffArrival> outside_help;  // vendors, partners, managed-service providers
  SourceLocation where;

  bool any() const { return extended_hours || call_in || outside_help; }
};

struct SiteConfig {
  std::string name;
  int technicians = 1;
  std::vector<Shift> shifts;  // empty: technicians are there around the clock
  Distribution travel;        // walk/drive to a host before hands-on work (default 0)
  int usb_sticks = 0;         // recovery sticks kept at the site
  // `remote_consoles: {per_technician: K, sessions: N}`: how the site's technicians work
  // out-of-band consoles (remote-console steps without a technician in person). One technician
  // works up to K consoles at once (default 1: one host each, as in person); at most N console
  // sessions at once (the console network's or licence's limit; 0, the default: no limit).
  int consoles_per_technician = 1;
  int console_sessions = 0;
  // `timezone: "+02:00"`: local time minus UTC, in seconds. Shifts and their days are local.
  Seconds utc_offset = 0;
  CrisisStaffing crisis;
  SourceLocation where;
};

struct GroupConfig {
  std::string name;
  Role role = Role::kWorkstation;
  int count = 1;
  std::string site;  // as loaded: always one of the setup's sites (the first one if not written)
  std::string sensor_version = "7.11";  // "7.10", "7.11" or "7.11-fixed"
  Network network = Network::kWired;
  bool online_in_window = true;  // online (and so fetching content) during the release window;
                                 // defaults to false for network: offline
  bool bitlocker = false;        // system volume encrypted (TPM + recovery password protectors)
  bool oob_console = false;  // `console: oob` (iLO/iDRAC/IPMI, hypervisor or cloud serial console)
  bool cloud = false;        // a cloud VM (offline repair via a rescue VM); true for role cloud-vm
  // `virtual: true`: a VM on a hypervisor the organisation runs itself, whose disk its admins can
  // repair from the hypervisor (hypervisor-repair). Not with `cloud` (the provider's hypervisor).
  bool on_hypervisor = false;
  SourceLocation where;
};

// Where the BitLocker recovery passwords live (Active Directory, Entra ID...).
struct KeyEscrowConfig {
  // Group whose hosts serve the escrow (e.g. the domain controllers): it answers while at least
  // one of them is healthy. Empty: an external service that stays up.
  std::string hosted_on;
  Distribution lookup;  // a person finding one key (default 0)
  SourceLocation where;
};

// A business service that needs hosts of some groups: "crew scheduling needs 15 of 20 crew-app
// servers and 1 domain controller". Down while any need is not met.
struct ServiceNeed {
  std::string group;
  int at_least = 1;
  SourceLocation where;
};
// Work a service piles up while it, or a service it takes work from, is out, and must work off
// once all are back before it counts as recovered (FACTS.md: Delta's crew-tracking system could
// not cope with the volume of changes). Amounts are in hours of the service's normal work.
struct ServiceBacklog {
  double grows = 0;      // hours of work piling up per hour it or an input is out (> 0)
  double works_off = 0;  // hours of backlog cleared per hour once all are up, beyond new work (> 0)
  // The most work that can pile up (the changes a schedule can need are finite), as a duration of
  // normal work; 0: no limit.
  Seconds cap = 0;
  std::vector<std::string> inputs;           // services of the same setup; no cycles
  std::vector<SourceLocation> inputs_where;  // where each input is written
  SourceLocation where;
};
struct ServiceConfig {
  std::string name;
  std::vector<ServiceNeed> needs;  // at least one; every group exists; at_least <= group count
  std::optional<ServiceBacklog> backlog;  // none: up as soon as its needs are met
  SourceLocation where;
};

// The organisation's own hypervisors as a repair resource (`hypervisor:` in a setup): an admin
// writes and tests a repair script once (`script_ready`, from the first host that asks for it),
// then the script repairs up to `repairs_at_once` virtual disks in parallel (each the machine part
// of a hypervisor-repair step: detach, attach to a helper VM, unlock, delete, reattach, start).
struct HypervisorConfig {
  bool enabled = false;  // the setup has `hypervisor:`
  int repairs_at_once = 1;
  Distribution script_ready;  // drawn once per organisation (default 0)
  SourceLocation where;
};

// Disk snapshots the IT team takes (cloud backups, VM snapshots): what snapshot-revert goes back
// to.
struct SnapshotConfig {
  bool enabled = false;
  Seconds taken_at = 0;  // time of day of the snapshot before the update (default 00:00, nightly)
  SourceLocation where;
};

struct SetupConfig {
  std::string name;
  std::string file;  // absolute path of the setup YAML
  std::string description;
  std::string image;                // image name, e.g. "winsim"
  SourceLocation image_where;       // where `image:` is written (for "image not found" errors)
  std::vector<SiteConfig> sites;    // at least one; names unique
  std::vector<GroupConfig> groups;  // at least one; names unique; every site names one of `sites`
  KeyEscrowConfig key_escrow;
  bool pxe = false;  // network boot of recovery images is set up
  SnapshotConfig snapshots;
  HypervisorConfig hypervisor;
  std::vector<ServiceConfig> services;
  SourceLocation where;
};

// Hosts in all groups of a setup.
int64_t TotalHosts(const SetupConfig& setup);

// The name of a group's `index`-th host (1-based): "ws-711-03". It names the host's files and its
// libvirt domain, so the loader checks it against the identifier rule (lab/common/identifier.h).
std::string HostName(const std::string& group, int64_t index);

// The setup with about `hosts` hosts (fewer for VMs, more for the simulator): group counts,
// technicians, USB sticks and hypervisor repair slots scaled by the same factor (at least 1 each),
// services' needs by their group's new count. Unchanged when it already has that many.
SetupConfig ScaleSetupTo(const SetupConfig& setup, int64_t hosts);

struct FaultConfig {
  FaultKind kind = FaultKind::kChannel291;
  int channel = 291;  // the channel the faulty file is published on (the sensor knows 291)
  SourceLocation where;
};

// One ring of a staged rollout: `percent` of the fleet's hosts (assigned by seed, every ring with a
// share gets at least one host), released `after` the rollout's release time.
struct RingConfig {
  std::string name;
  double percent = 100;
  Seconds after = 0;
  SourceLocation where;
};

// Halts a ringed rollout before the next ring when the crash rate of the hosts in the rings
// released so far exceeds `max_crash_rate` (a fraction).
struct HealthGateConfig {
  bool enabled = false;
  double max_crash_rate = 0.05;
  SourceLocation where;
};

struct RolloutConfig {
  RolloutPolicy policy = RolloutPolicy::kAllAtOnce;
  Seconds start = 4 * 3600;             // power-on of the fleet
  Seconds release = 4 * 3600 + 9 * 60;  // FACTS.md: released 04:09 UTC
  Seconds revert = 5 * 3600 + 27 * 60;  // FACTS.md: reverted 05:27 UTC
  std::vector<RingConfig> rings;  // rings: at least one, percents sum to 100, `after` ascending
  HealthGateConfig gate;
  // Groups that hold content at N-1 (customer pinning): they take a version only once a newer one
  // is out, and never one that was withdrawn (the revert withdraws the faulty version).
  std::vector<std::string> pinned;
  SourceLocation where;
};

// Facts about a host a step can depend on (`when:`). Unset fields match every host; list fields
// match a host whose value is in the list. YAML keys: bitlocker, role, console (oob|none), cloud,
// virtual, group, site.
struct Conditions {
  std::optional<bool> bitlocker;
  std::vector<Role> roles;
  std::optional<bool> oob_console;
  std::optional<bool> cloud;
  std::optional<bool> on_hypervisor;  // `virtual:`
  std::vector<std::string> groups;
  std::vector<std::string> sites;
  SourceLocation where;
};

// Whether every condition of `when` holds for the hosts of `group` (all facts `when` can test are
// facts of a whole group).
bool ConditionsMatch(const Conditions& when, const GroupConfig& group);

// A moment in UTC, written "2024-07-20T12:00Z": seconds since 1970-01-01T00:00Z.
struct UtcInstant {
  int64_t unix_s = 0;
  SourceLocation where;
  std::string ToString() const;  // "2024-07-20T12:00Z"
};

// A tool that appeared during the incident (a runbook's `tools:`), e.g. Microsoft's USB recovery
// tool: no step can use it before it was published.
struct ToolConfig {
  std::string name;
  UtcInstant available;
  SourceLocation where;
};

struct StepConfig {
  StepKind kind = StepKind::kReboot;
  int times = 1;                            // reboot: attempts before the host counts as failed
  BootTarget into = BootTarget::kSafeMode;  // boot
  std::string pattern = "C-00000291*.sys";  // delete: file names in the sensor's content folder
  Conditions when;                          // the step is skipped for hosts it does not match
  std::vector<Resource> needs;  // all held while the step's human part runs; no duplicates
  Distribution takes;           // the human part (default 0)
  // `tool:`, one of the runbook's `tools:`; the step waits until it is published. Empty: none.
  std::string tool;
  std::optional<UtcInstant> tool_available;  // the tool's `available`, copied from `tools:`
  SourceLocation where;
};

// "Fix hosts matching `first` before hosts matching any of `then`". Selectors are role names,
// group names or "key-escrow" (the group hosting the escrow). Cycles are errors.
struct PriorityRule {
  std::string first;
  std::vector<std::string> then;
  SourceLocation where;
};

// A runbook to escalate to (`on_failure:`), defined below.
struct Escalation;
// At most this many runbooks after the first in an `on_failure:` chain (reboot → safe mode → USB
// → reimage is three).
inline constexpr int kMaxEscalations = 4;

struct RunbookConfig {
  std::string name;
  std::string file;
  std::string description;
  RunbookStart starts = RunbookStart::kAfterRevert;
  std::vector<StepConfig> steps;
  std::vector<PriorityRule> priorities;
  std::vector<ToolConfig> tools;  // `tools:`, names unique; every step's `tool:` is one of them
  int parallelism = 0;  // hosts remediated at once, fleet-wide; 0 = as many as resources allow
  // Where a host goes when this runbook ends without recovering it: `on_failure:` of this runbook,
  // then of that one, and so on, flattened into one list in order (at most kMaxEscalations, no
  // runbook twice). Each escalated-to runbook's own list is empty: the chain is here.
  std::vector<Escalation> escalations;
  SourceLocation where;
};

// A calendar date (proleptic Gregorian).
struct ScenarioDate {
  int year = 2024, month = 7, day = 19;
  SourceLocation where;
  // 0 Monday ... 6 Sunday.
  int Weekday() const;
  int64_t DaysSinceEpoch() const;  // days since 1970-01-01
  // Scenario seconds (since this day's 00:00 UTC) of a moment.
  Seconds SecondsOf(const UtcInstant& t) const {
    return static_cast<Seconds>(t.unix_s - DaysSinceEpoch() * 86400);
  }
  std::string ToString() const;  // "2024-07-19"
};

// `on_failure: {runbook: FILE, after: DISTRIBUTION}`: when the runbook before ends without
// recovering a host, people decide after `after` to try `runbook`'s steps that apply to it. Only
// its steps are used: the host keeps the start, priorities and parallelism of its first runbook.
struct Escalation {
  RunbookConfig runbook;
  Distribution after;    // the decision delay
  SourceLocation where;  // the `on_failure:` that names it
};

// The vendor's automated cloud remediation (`vendor_remediation:`): from `available`, the content
// server answers a booting host that opted in with a quarantine instruction for the faulty channel
// file in the same manifest as the content; a sensor that hears it before its first IPC
// notification moves the file aside and boots healthy (docs/GUEST-PROTOCOL.md).
struct VendorRemediationConfig {
  bool enabled = false;
  Seconds available = 0;  // scenario time; never before the revert (the loader checks)
  // `opted_in: 0.2`: the share of hosts whose organisation asked for it, drawn per host by seed;
  // `opted_in: [group, ...]`: exactly the hosts of those groups (then `opted_in` is unused).
  double opted_in = 1.0;
  std::vector<std::string> opted_in_groups;
  SourceLocation opted_in_where;
  SourceLocation where;
};

struct StopConfig {
  Seconds max_scenario = 24 * 3600;  // scenario time after start
  Seconds max_wall = 900;            // wall seconds for the whole run
  SourceLocation where;
};

struct ScenarioConfig {
  std::string name;
  std::string file;  // absolute path of the scenario YAML
  std::string description;
  SetupConfig setup;
  ImageConfig image;
  FaultConfig fault;
  RolloutConfig rollout;
  RunbookConfig runbook;
  BackendKind backend = BackendKind::kQemu;
  // Simulator only (lab/sim). `mix`: a world of organisations (playbooks/mixes/*.yaml) instead of
  // one setup; then `setup` may be left out. `calibration`: the calibration file the simulator
  // reads (default: playbooks/calibration/<image>.yaml). Both absolute once loaded; empty = unset.
  std::string mix_file;
  SourceLocation mix_where;
  std::string calibration_file;
  SourceLocation calibration_where;
  int repetitions = 1;
  // Overrides the image's race_window_ms for this scenario (a harder or easier boot race), as
  // written; `race_window_where` is where. Read the window a run uses through RaceWindowMs().
  std::optional<int> race_window_ms;
  SourceLocation race_window_where;
  uint64_t seed = 291;
  StopConfig stop;
  // `date:`, the calendar date of scenario day 0 (scenario time 0 is its 00:00 UTC): it decides
  // the weekday of every scenario time. Default 2024-07-19, a Friday (FACTS.md: released 04:09 UTC
  // on 19 July 2024).
  ScenarioDate date;
  VendorRemediationConfig vendor_remediation;
  SourceLocation where;
  // The parameters changed after loading (config_path.h SetByPath), as (path, value) in the order
  // set: runs record them with their inputs, so a sweep's cell is known from its runs.
  std::vector<std::pair<std::string, std::string>> overrides;

  // The boot race window this scenario runs: its override, else its image's. The one place that
  // resolves it: the guests' `winsim.ipc_ms`, the run's inputs and method, `chaoslab calibrate`
  // and the simulator's calibration check all read this, never the two fields.
  int RaceWindowMs() const { return race_window_ms.value_or(image.race_window_ms); }
};

}  // namespace chaoslab::config
