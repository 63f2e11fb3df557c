// Setups: sites with their shifts, groups, key escrow, snapshots and services; LoadSetup. Also the
// names of a setup's sites and groups that the runbook and rollout checks show in messages.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "lab/common/identifier.h"
#include "lab/config/assumptions.h"
#include "lab/config/config_loader.h"
#include "lab/config/dependency_graph.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

// --- Setups -------------------------------------------------------------------------------------

namespace internal {

Result<double> ReadBacklogRate(const YamlFile& file, const YAML::Node& node,
                               const std::string& what) {
  ASSIGN_OR_RETURN(double rate, ReadNumber(file, node, what));
  if (rate <= 0 || rate > 1000) {
    return file.Error(node,
                      what + ": expected hours of work per hour, more than 0 and at most 1000");
  }
  return rate;
}

std::vector<std::string> SiteNames(const std::vector<SiteConfig>& sites) {
  std::vector<std::string> names;
  for (const SiteConfig& s : sites) names.push_back(s.name);
  return names;
}

std::vector<std::string> GroupNames(const std::vector<GroupConfig>& groups) {
  std::vector<std::string> names;
  for (const GroupConfig& g : groups) names.push_back(g.name);
  return names;
}

std::string SetupLabel(const SetupConfig& setup) {
  return "setup '" + setup.name + "'" + (setup.file.empty() ? "" : " (" + setup.file + ")");
}

}  // namespace internal

namespace {

// "mon", "mon-fri" (a range may wrap: "fri-mon") or a list of those → day bits (config.h).
Result<uint8_t> ReadDays(const YamlFile& file, const YAML::Node& node) {
  const std::string expected =
      "days: expected a day (mon, tue, wed, thu, fri, sat, sun), a range such as mon-fri, or a "
      "list of those, got ";
  if (node.IsSequence() && node.size() > 0) {
    uint8_t days = 0;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) return file.Error(item, expected + Describe(item));
      ASSIGN_OR_RETURN(uint8_t more, ReadDays(file, item));
      days |= more;
    }
    return days;
  }
  if (!node.IsScalar()) return file.Error(node, expected + Describe(node));
  const std::string& text = node.Scalar();
  const size_t dash = text.find('-');
  const std::string first = text.substr(0, dash);
  const std::string last = dash == std::string::npos ? first : text.substr(dash + 1);
  const std::optional<int> from = ParseWeekday(first), to = ParseWeekday(last);
  if (!from || !to) {
    return file.Error(node, "unknown day '" + (from ? last : first) + "' in days '" + text +
                                "'; allowed: mon, tue, wed, thu, fri, sat, sun, or a range such "
                                "as mon-fri");
  }
  uint8_t days = 0;
  for (int d = *from;; d = (d + 1) % 7) {
    days |= static_cast<uint8_t>(1u << d);
    if (d == *to) break;
  }
  return days;
}

// "08:00-16:00" (an end before the start runs over midnight), or
// {hours: "08:00-16:00", days: mon-fri}.
Result<Shift> ReadShift(const YamlFile& file, const YAML::Node& node) {
  if (node.IsMap()) {
    ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a shift", {"hours", "days"}));
    ASSIGN_OR_RETURN(YAML::Node hours, fields.Require("hours"));
    ASSIGN_OR_RETURN(Shift shift, ReadShift(file, hours));
    shift.where = fields.where();
    if (fields.Has("days")) {
      ASSIGN_OR_RETURN(shift.days, ReadDays(file, fields.Get("days")));
    }
    return shift;
  }
  const std::string expected =
      "shift: expected \"HH:MM-HH:MM\" such as \"08:00-16:00\" (over midnight: \"22:00-06:00\") "
      "or {hours: \"08:00-16:00\", days: mon-fri}, got ";
  if (!node.IsScalar()) return file.Error(node, expected + Describe(node));
  const std::string& text = node.Scalar();
  const size_t dash = text.find('-');
  if (dash == std::string::npos || text.find('-', dash + 1) != std::string::npos) {
    return file.Error(node, expected + "'" + text + "'");
  }
  Shift shift;
  shift.where = file.At(node);
  Result<Seconds> start = ParseTimeOfDay(text.substr(0, dash));
  Result<Seconds> end = ParseTimeOfDay(text.substr(dash + 1));
  if (!start.ok()) return file.Error(node, "shift '" + text + "': " + start.status().message());
  if (!end.ok()) return file.Error(node, "shift '" + text + "': " + end.status().message());
  if (*start == *end) {
    return file.Error(node, "shift '" + text +
                                "' starts when it ends; leave out shifts for technicians who are "
                                "there around the clock");
  }
  shift.start = *start;
  shift.end = *end;
  return shift;
}

// The first scalar under `node` (a value or a distribution's numbers) that `bad` refuses, if any.
template <typename Bad>
std::optional<YAML::Node> FindScalar(const YAML::Node& node, Bad bad) {
  if (node.IsScalar()) return bad(node.Scalar()) ? std::optional<YAML::Node>(node) : std::nullopt;
  if (node.IsSequence()) {
    for (const YAML::Node& item : node)
      if (auto found = FindScalar(item, bad)) return found;
  }
  if (node.IsMap()) {
    for (const auto& entry : node)
      if (auto found = FindScalar(entry.second, bad)) return found;
  }
  return std::nullopt;
}

// A delay: a duration or a distribution of durations, none negative.
Result<Distribution> ReadDelay(const YamlFile& file, const YAML::Node& node,
                               const std::string& what) {
  const auto negative = [](const std::string& t) { return !t.empty() && t[0] == '-'; };
  if (auto n = FindScalar(node, negative)) {
    return file.Error(*n, what + ": a delay cannot be negative, got '" + n->Scalar() + "'");
  }
  return ReadDistribution(file, node, what);
}

// A number of people: 3, {uniform: [2, 10]}, {triangular: [1, 3, 8]} or
// {lognormal: {median: 4, p90: 12}}; whole numbers without a unit, none negative.
Result<Distribution> ReadPeople(const YamlFile& file, const YAML::Node& node,
                                const std::string& what) {
  const auto not_whole = [](const std::string& t) {
    return t.empty() || t.size() > 7 ||
           !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (auto n = FindScalar(node, not_whole)) {
    return file.Error(*n, what + ": expected a whole number of people (0 or more, no unit), got '" +
                              n->Scalar() + "'");
  }
  const CountingScope people;  // ranged parts are counts of people, not seconds
  return ReadDistribution(file, node, what);
}

// {after: DELAY, technicians: PEOPLE}.
Result<StaffArrival> ReadArrival(const YamlFile& file, const YAML::Node& node,
                                 const std::string& what) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what, {"after", "technicians"}));
  StaffArrival wave;
  wave.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node after, fields.Require("after"));
  ASSIGN_OR_RETURN(wave.after, ReadDelay(file, after, what + " after"));
  ASSIGN_OR_RETURN(YAML::Node people, fields.Require("technicians"));
  ASSIGN_OR_RETURN(wave.technicians, ReadPeople(file, people, what + " technicians"));
  return wave;
}

// `crisis:` of a site: what changes once it knows of the incident.
Result<CrisisStaffing> ReadCrisis(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(
      Fields fields,
      Fields::Open(file, node, "crisis", {"from", "extended_hours", "call_in", "outside_help"}));
  CrisisStaffing crisis;
  crisis.where = fields.where();
  crisis.known_at_where = fields.where();
  if (fields.Has("from")) {
    const YAML::Node from = fields.Get("from");
    crisis.known_at_where = file.At(from);
    if (!(from.IsScalar() && from.Scalar() == "first-crash")) {
      if (from.IsScalar() && !from.Scalar().empty() && from.Scalar()[0] == '-') {
        return file.Error(from,
                          "crisis from: a time cannot be negative, got '" + from.Scalar() + "'");
      }
      ASSIGN_OR_RETURN(crisis.known_at,
                       ReadTimeOfDay(file, from, "crisis from (first-crash or a time of day)"));
    }
  }
  if (fields.Has("extended_hours")) {
    ASSIGN_OR_RETURN(Fields ext, Fields::Open(file, fields.Get("extended_hours"),
                                              "crisis extended_hours", {"after"}));
    ASSIGN_OR_RETURN(YAML::Node after, ext.Require("after"));
    ASSIGN_OR_RETURN(crisis.extended_hours, ReadDelay(file, after, "crisis extended_hours after"));
  }
  if (fields.Has("call_in")) {
    ASSIGN_OR_RETURN(crisis.call_in, ReadArrival(file, fields.Get("call_in"), "crisis call_in"));
  }
  if (fields.Has("outside_help")) {
    ASSIGN_OR_RETURN(crisis.outside_help,
                     ReadArrival(file, fields.Get("outside_help"), "crisis outside_help"));
  }
  if (!crisis.any()) {
    return file.Error(node,
                      "crisis: expected at least one of extended_hours, call_in, outside_help");
  }
  return crisis;
}

// `remote_consoles: {per_technician: K, sessions: N}` of a site.
Status ReadRemoteConsoles(const YamlFile& file, const YAML::Node& node, SiteConfig* site) {
  ASSIGN_OR_RETURN(Fields rc,
                   Fields::Open(file, node, "remote_consoles", {"per_technician", "sessions"}));
  if (rc.Has("per_technician")) {
    ASSIGN_OR_RETURN(site->consoles_per_technician,
                     ReadInt(file, rc.Get("per_technician"), "per_technician", 1, 100));
  }
  if (rc.Has("sessions")) {
    ASSIGN_OR_RETURN(site->console_sessions,
                     ReadInt(file, rc.Get("sessions"), "sessions", 1, 1000000));
  }
  return Status::Ok();
}

Result<SiteConfig> ReadSite(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "a site",
                                {"name", "technicians", "shifts", "travel", "usb_sticks",
                                 "timezone", "crisis", "remote_consoles"}));
  SiteConfig site;
  site.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(site.name, ReadIdentifier(file, name, "site name"));
  if (fields.Has("technicians")) {
    ASSIGN_OR_RETURN(site.technicians,
                     ReadInt(file, fields.Get("technicians"), "technicians", 0, 1000000));
  }
  if (fields.Has("shifts")) {
    const YAML::Node shifts = fields.Get("shifts");
    if (shifts.IsSequence() && shifts.size() == 0) {
      return file.Error(shifts,
                        "shifts: expected at least one shift such as \"08:00-16:00\"; "
                        "leave out shifts for technicians who are there around the clock");
    }
    RETURN_IF_ERROR(ExpectNonEmptyList(file, shifts, "shifts"));
    for (const YAML::Node& s : shifts) {
      ASSIGN_OR_RETURN(Shift shift, ReadShift(file, s));
      site.shifts.push_back(shift);
    }
  }
  if (fields.Has("travel")) {
    ASSIGN_OR_RETURN(site.travel, ReadDistribution(file, fields.Get("travel"), "travel"));
  }
  if (fields.Has("remote_consoles")) {
    RETURN_IF_ERROR(ReadRemoteConsoles(file, fields.Get("remote_consoles"), &site));
  }
  if (fields.Has("usb_sticks")) {
    ASSIGN_OR_RETURN(site.usb_sticks,
                     ReadInt(file, fields.Get("usb_sticks"), "usb_sticks", 0, 1000000));
  }
  if (fields.Has("timezone")) {
    ASSIGN_OR_RETURN(site.utc_offset, ReadUtcOffset(file, fields.Get("timezone")));
  }
  if (fields.Has("crisis")) {
    ASSIGN_OR_RETURN(site.crisis, ReadCrisis(file, fields.Get("crisis")));
  }
  return site;
}

Result<GroupConfig> ReadGroup(const YamlFile& file, const YAML::Node& node,
                              const std::vector<SiteConfig>& sites) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "a group",
                                {"name", "role", "count", "site", "sensor", "network",
                                 "online_in_window", "bitlocker", "console", "cloud", "virtual"}));
  GroupConfig group;
  group.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(group.name, ReadIdentifier(file, name, "group name"));
  ASSIGN_OR_RETURN(YAML::Node role, fields.Require("role"));
  ASSIGN_OR_RETURN(group.role, ReadEnum(file, role, "role", ParseRole, AllRoles(), RoleName));
  ASSIGN_OR_RETURN(YAML::Node count, fields.Require("count"));
  ASSIGN_OR_RETURN(group.count, ReadInt(file, count, "count", 1, 100000000));
  // Its hosts are named after it: the last one's name must follow the rule too.
  if (Status ok = CheckIdentifier("host name", HostName(group.name, group.count)); !ok.ok()) {
    return file.Error(name, "group '" + group.name + "' of " + std::to_string(group.count) +
                                " host(s): " + ok.message());
  }

  group.site = sites.front().name;
  if (fields.Has("site")) {
    YAML::Node site = fields.Get("site");
    ASSIGN_OR_RETURN(group.site, ReadIdentifier(file, site, "site"));
    bool known = false;
    for (const SiteConfig& s : sites) known = known || s.name == group.site;
    if (!known) {
      return file.Error(site, "group '" + group.name + "' names unknown site '" + group.site +
                                  "'; sites of this setup: " + Join(SiteNames(sites)));
    }
  }
  if (fields.Has("sensor")) {
    // The raw scalar text, so an unquoted 7.10 stays "7.10" (YAML would make the float 7.1 of it).
    YAML::Node sensor = fields.Get("sensor");
    ASSIGN_OR_RETURN(group.sensor_version, ReadName(file, sensor, "sensor"));
    bool known = false;
    for (const std::string& v : SensorVersions()) known = known || v == group.sensor_version;
    if (!known) {
      return file.Error(sensor, "unknown sensor version '" + group.sensor_version +
                                    "'; allowed: " + Join(SensorVersions()) +
                                    " (write versions as text, e.g. sensor: \"7.10\")");
    }
  }
  if (fields.Has("network")) {
    ASSIGN_OR_RETURN(group.network, ReadEnum(file, fields.Get("network"), "network", ParseNetwork,
                                             AllNetworks(), NetworkName));
  }
  group.online_in_window = group.network != Network::kOffline;
  if (fields.Has("online_in_window")) {
    YAML::Node online = fields.Get("online_in_window");
    ASSIGN_OR_RETURN(group.online_in_window, ReadBool(file, online, "online_in_window"));
    if (group.online_in_window && group.network == Network::kOffline) {
      return file.Error(online, "group '" + group.name +
                                    "' has network: offline, so it cannot be online_in_window");
    }
  }
  if (fields.Has("bitlocker")) {
    ASSIGN_OR_RETURN(group.bitlocker, ReadBool(file, fields.Get("bitlocker"), "bitlocker"));
  }
  if (fields.Has("console")) {
    ASSIGN_OR_RETURN(group.oob_console, ReadConsole(file, fields.Get("console")));
  }
  group.cloud = group.role == Role::kCloudVm;
  if (fields.Has("cloud")) {
    ASSIGN_OR_RETURN(group.cloud, ReadBool(file, fields.Get("cloud"), "cloud"));
  }
  if (fields.Has("virtual")) {
    YAML::Node on_hypervisor = fields.Get("virtual");
    ASSIGN_OR_RETURN(group.on_hypervisor, ReadBool(file, on_hypervisor, "virtual"));
    if (group.on_hypervisor && group.cloud) {
      return file.Error(on_hypervisor, "group '" + group.name +
                                           "' is a cloud VM (cloud: true), on its provider's "
                                           "hypervisor; virtual: true is for VMs on the "
                                           "organisation's own hypervisors");
    }
  }
  return group;
}

Result<KeyEscrowConfig> ReadKeyEscrow(const YamlFile& file, const YAML::Node& node,
                                      const std::vector<GroupConfig>& groups) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "key_escrow", {"hosted_on", "lookup"}));
  KeyEscrowConfig escrow;
  escrow.where = fields.where();
  if (fields.Has("hosted_on")) {
    const YAML::Node hosted_on = fields.Get("hosted_on");
    ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, hosted_on, "hosted_on"));
    if (name != "external") {
      bool known = false;
      for (const GroupConfig& g : groups) known = known || g.name == name;
      if (!known) {
        return file.Error(hosted_on, "key_escrow hosted_on names unknown group '" + name +
                                         "'; expected external or a group of this setup: " +
                                         Join(GroupNames(groups)));
      }
      escrow.hosted_on = name;
    }
  }
  if (fields.Has("lookup")) {
    ASSIGN_OR_RETURN(escrow.lookup, ReadDistribution(file, fields.Get("lookup"), "lookup"));
  }
  return escrow;
}

// `backlog: {grows: 1.5, works_off: 0.5, cap: 48h, inputs: [check-in]}`: rates in hours of the
// service's normal work per hour, the cap a duration of that work.
Result<ServiceBacklog> ReadBacklog(const YamlFile& file, const YAML::Node& node,
                                   const std::string& service) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "the backlog of service '" + service + "'",
                                {"grows", "works_off", "cap", "inputs"}));
  ServiceBacklog backlog;
  backlog.where = fields.where();
  auto rate = [&](const char* key, double* out) -> Status {
    ASSIGN_OR_RETURN(YAML::Node n, fields.Require(key));
    ASSIGN_OR_RETURN(*out, ReadBacklogRate(file, n, key));
    return Status::Ok();
  };
  RETURN_IF_ERROR(rate("grows", &backlog.grows));
  RETURN_IF_ERROR(rate("works_off", &backlog.works_off));
  if (fields.Has("cap")) {
    ASSIGN_OR_RETURN(backlog.cap, ReadDuration(file, fields.Get("cap"), "cap", false));
  }
  if (fields.Has("inputs")) {
    const YAML::Node inputs = fields.Get("inputs");
    if (!inputs.IsSequence()) {
      return file.Error(inputs,
                        "inputs: expected a list of service names, got " + Describe(inputs));
    }
    for (const YAML::Node& input : inputs) {
      ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, input, "input"));
      backlog.inputs.push_back(name);
      backlog.inputs_where.push_back(file.At(input));
    }
  }
  return backlog;
}

Result<ServiceConfig> ReadService(const YamlFile& file, const YAML::Node& node,
                                  const std::vector<GroupConfig>& groups) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "a service", {"name", "needs", "backlog"}));
  ServiceConfig service;
  service.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(service.name, ReadIdentifier(file, name, "service name"));
  ASSIGN_OR_RETURN(YAML::Node needs, fields.Require("needs"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, needs, "needs"));
  for (const YAML::Node& n : needs) {
    ASSIGN_OR_RETURN(
        Fields need_fields,
        Fields::Open(file, n, "a need of service '" + service.name + "'", {"group", "at_least"}));
    ServiceNeed need;
    need.where = need_fields.where();
    ASSIGN_OR_RETURN(YAML::Node group_node, need_fields.Require("group"));
    ASSIGN_OR_RETURN(need.group, ReadIdentifier(file, group_node, "group"));
    const GroupConfig* group = nullptr;
    for (const GroupConfig& g : groups) {
      if (g.name == need.group) group = &g;
    }
    if (group == nullptr) {
      return file.Error(group_node, "service '" + service.name + "' needs unknown group '" +
                                        need.group +
                                        "'; groups of this setup: " + Join(GroupNames(groups)));
    }
    for (const ServiceNeed& earlier : service.needs) {
      if (earlier.group == need.group) {
        return file.Error(group_node, "service '" + service.name + "' needs group '" + need.group +
                                          "' twice (first at " + earlier.where.ToString() + ")");
      }
    }
    if (need_fields.Has("at_least")) {
      const YAML::Node at_least = need_fields.Get("at_least");
      ASSIGN_OR_RETURN(need.at_least, ReadInt(file, at_least, "at_least", 1, 100000000));
      if (need.at_least > group->count) {
        return file.Error(at_least, "service '" + service.name + "' needs at least " +
                                        std::to_string(need.at_least) + " hosts of group '" +
                                        need.group + "', which has " +
                                        std::to_string(group->count) + " (at " +
                                        group->where.ToString() + ")");
      }
    }
    service.needs.push_back(need);
  }
  if (fields.Has("backlog")) {
    ASSIGN_OR_RETURN(service.backlog, ReadBacklog(file, fields.Get("backlog"), service.name));
  }
  return service;
}

// `inputs:` of every backlog name other services of the setup, none twice, without a cycle (a
// service cannot wait for itself to catch up).
Status CheckBacklogInputs(const std::vector<ServiceConfig>& services) {
  std::vector<std::string> names;
  for (const ServiceConfig& s : services) names.push_back(s.name);
  DependencyGraph graph(names);
  for (size_t s = 0; s < services.size(); ++s) {
    if (!services[s].backlog) continue;
    const ServiceBacklog& backlog = *services[s].backlog;
    for (size_t i = 0; i < backlog.inputs.size(); ++i) {
      const std::string& input = backlog.inputs[i];
      const SourceLocation& where = backlog.inputs_where[i];
      auto it = std::find(names.begin(), names.end(), input);
      if (it == names.end()) {
        return Status::AtLocation(where, "backlog of service '" + services[s].name +
                                             "' names unknown input '" + input +
                                             "'; services of this setup: " + Join(names));
      }
      if (input == services[s].name) {
        return Status::AtLocation(where, "service '" + input + "' cannot be its own input");
      }
      for (size_t j = 0; j < i; ++j) {
        if (backlog.inputs[j] == input) {
          return Status::AtLocation(where, "backlog of service '" + services[s].name +
                                               "' names input '" + input + "' twice (first at " +
                                               backlog.inputs_where[j].ToString() + ")");
        }
      }
      graph.Add(s, static_cast<size_t>(it - names.begin()), where);
    }
  }
  return graph.CheckAcyclic({"service inputs form a cycle", "", "takes input from", "input",
                             "expected services whose backlogs do not wait for each other"});
}

// A non-empty list `what` ("sites") of `noun`s ("site") that `read` reads one by one, each name
// once: two sites, groups or services of one name would be one too many to refer to.
template <typename T, typename ReadOne>
Result<std::vector<T>> ReadNamedList(const YamlFile& file, const YAML::Node& list,
                                     const std::string& what, const std::string& noun,
                                     ReadOne read) {
  RETURN_IF_ERROR(ExpectNonEmptyList(file, list, what));
  std::vector<T> items;
  for (const YAML::Node& node : list) {
    ASSIGN_OR_RETURN(T item, read(node));
    for (const T& earlier : items) {
      if (earlier.name == item.name) {
        return file.Error(node, "duplicate " + noun + " name '" + item.name +
                                    "' (first defined at " + earlier.where.ToString() + ")");
      }
    }
    items.push_back(std::move(item));
  }
  return items;
}

// `snapshots:`. Writing the key at all turns snapshots on; "snapshots: {}" keeps the nightly 00:00.
Result<SnapshotConfig> ReadSnapshots(const YamlFile& file, const YAML::Node& node) {
  SnapshotConfig snapshots;
  snapshots.enabled = true;
  snapshots.where = file.At(node);
  if (!node.IsNull()) {
    ASSIGN_OR_RETURN(Fields snap, Fields::Open(file, node, "snapshots", {"taken_at"}));
    if (snap.Has("taken_at")) {
      ASSIGN_OR_RETURN(snapshots.taken_at, ReadTimeOfDay(file, snap.Get("taken_at"), "taken_at"));
    }
  }
  return snapshots;
}

// `hypervisor: {repairs_at_once: N, script_ready: DISTRIBUTION}`.
Result<HypervisorConfig> ReadHypervisor(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "hypervisor", {"repairs_at_once", "script_ready"}));
  HypervisorConfig hv;
  hv.enabled = true;
  hv.where = fields.where();
  if (fields.Has("repairs_at_once")) {
    ASSIGN_OR_RETURN(hv.repairs_at_once, ReadInt(file, fields.Get("repairs_at_once"),
                                                 "hypervisor repairs_at_once", 1, 1000000));
  }
  if (fields.Has("script_ready")) {
    ASSIGN_OR_RETURN(hv.script_ready,
                     ReadDistribution(file, fields.Get("script_ready"), "script_ready"));
  }
  return hv;
}

}  // namespace

namespace internal {

Result<SetupConfig> ReadSetupFile(const std::string& as_written, const std::string& path,
                                  const SourceLocation* named_at) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("setup", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "a setup",
                                {"name", "description", "image", "sites", "groups", "key_escrow",
                                 "pxe", "snapshots", "hypervisor", "services"}));
  SetupConfig setup;
  setup.file = AbsolutePath(path);
  setup.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(setup.name, ReadIdentifier(file, name, "setup name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(setup.description, ReadString(file, fields.Get("description"), "description"));
  }
  ASSIGN_OR_RETURN(YAML::Node image, fields.Require("image"));
  ASSIGN_OR_RETURN(setup.image, ReadIdentifier(file, image, "image"));
  setup.image_where = file.At(image);
  ASSIGN_OR_RETURN(YAML::Node sites, fields.Require("sites"));
  ASSIGN_OR_RETURN(setup.sites, ReadNamedList<SiteConfig>(
                                    file, sites, "sites", "site",
                                    [&](const YAML::Node& n) { return ReadSite(file, n); }));
  ASSIGN_OR_RETURN(YAML::Node groups, fields.Require("groups"));
  ASSIGN_OR_RETURN(setup.groups, ReadNamedList<GroupConfig>(
                                     file, groups, "groups", "group", [&](const YAML::Node& n) {
                                       return ReadGroup(file, n, setup.sites);
                                     }));
  setup.key_escrow.where = fields.where();
  if (fields.Has("key_escrow")) {
    ASSIGN_OR_RETURN(setup.key_escrow, ReadKeyEscrow(file, fields.Get("key_escrow"), setup.groups));
  }
  if (fields.Has("pxe")) {
    ASSIGN_OR_RETURN(setup.pxe, ReadBool(file, fields.Get("pxe"), "pxe"));
  }
  setup.snapshots.where = fields.where();
  if (fields.Has("snapshots")) {
    ASSIGN_OR_RETURN(setup.snapshots, ReadSnapshots(file, fields.Get("snapshots")));
  }
  setup.hypervisor.where = fields.where();
  if (fields.Has("hypervisor")) {
    ASSIGN_OR_RETURN(setup.hypervisor, ReadHypervisor(file, fields.Get("hypervisor")));
  }
  if (fields.Has("services")) {
    ASSIGN_OR_RETURN(setup.services,
                     ReadNamedList<ServiceConfig>(
                         file, fields.Get("services"), "services", "service",
                         [&](const YAML::Node& n) { return ReadService(file, n, setup.groups); }));
    RETURN_IF_ERROR(CheckBacklogInputs(setup.services));
  }
  return setup;
}

}  // namespace internal

Result<SetupConfig> LoadSetup(const std::string& path) {
  return Guarded<SetupConfig>(path, [&] { return ReadSetupFile(path, path, nullptr); });
}

}  // namespace chaoslab::config
