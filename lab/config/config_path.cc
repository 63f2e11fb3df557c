// SetByPath / GetByPath: one table of settable parameters (Params), each a place in the scenario
// (a locator), a reader from yaml_file.h and a printer; ValidateScenario, the loaders' checks
// again.
#include "lab/config/config_path.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <memory>

#include "lab/common/identifier.h"
#include "lab/config/config_loader.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

namespace {

using Keys = std::vector<std::string>;  // the names in a path's brackets, in order

// A path as written: "setup.sites[hq].technicians" → pattern "setup.sites[].technicians", keys
// {"hq"}.
struct ParsedPath {
  std::string pattern;
  Keys keys;
};

Result<ParsedPath> ParsePath(std::string_view path) {
  ParsedPath parsed;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == ']') break;  // unbalanced: the pattern below names nothing
    if (path[i] != '[') {
      parsed.pattern += path[i];
      continue;
    }
    const size_t close = path.find(']', i);
    if (close == std::string_view::npos || close == i + 1) {
      return Status::InvalidArgument(std::string(path) +
                                     ": expected a name or index between [ and ], as in "
                                     "setup.sites[hq].technicians");
    }
    parsed.keys.emplace_back(path.substr(i + 1, close - i - 1));
    parsed.pattern += "[]";
    i = close;
  }
  return parsed;
}

std::string Trim(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  return std::string(text.substr(b, e - b));
}

// The YAML node a command-line value stands for: the text as one scalar, or for a distribution
// its function form ("uniform(5m, 20m)") or YAML flow form ("{uniform: [5m, 20m]}") as a map.
YAML::Node ScalarNode(std::string_view value) { return YAML::Node(Trim(value)); }

YAML::Node DistributionNode(std::string_view value) {
  const std::string text = Trim(value);
  if (!text.empty() && text.front() == '{') return YAML::Load(text);  // Guarded by the caller
  const size_t open = text.find('(');
  if (open == std::string::npos || text.back() != ')') return YAML::Node(text);
  const std::string name = Trim(std::string_view(text).substr(0, open));
  std::vector<std::string> args;
  std::string_view rest = std::string_view(text).substr(open + 1, text.size() - open - 2);
  for (size_t comma; (comma = rest.find(',')) != std::string_view::npos;
       rest.remove_prefix(comma + 1)) {
    args.push_back(Trim(rest.substr(0, comma)));
  }
  args.push_back(Trim(rest));
  YAML::Node node(YAML::NodeType::Map);
  if (name == "lognormal" && args.size() == 2) {
    // "lognormal(median 10m, p90 30m)" as Distribution::ToString prints it, or "(10m, 30m)".
    for (const char* word : {"median ", "p90 "}) {
      for (std::string& a : args) {
        if (a.rfind(word, 0) == 0) a = Trim(a.substr(std::string_view(word).size()));
      }
    }
    node["lognormal"]["median"] = args[0];
    node["lognormal"]["p90"] = args[1];
    return node;
  }
  YAML::Node list(YAML::NodeType::Sequence);
  for (const std::string& a : args) list.push_back(a);
  node[name] = list;
  return node;
}

// One settable parameter, type-erased: Set reads `value` into its place, Get prints it.
struct Param {
  std::string pattern;  // as ParsePath makes it: "setup.sites[].technicians"
  PathInfo info;        // as users write it: "setup.sites[<site>].technicians"
  std::function<Status(ScenarioConfig*, const Keys&, const YamlFile&, std::string_view)> set;
  std::function<Result<std::string>(ScenarioConfig*, const Keys&)> get;
};

template <typename T>
using Locate = std::function<Result<T*>(ScenarioConfig*, const Keys&)>;
template <typename T>
using Read = std::function<Result<T>(const YamlFile&, const YAML::Node&)>;

// `shown` with each "<...>" placeholder made "[]": the pattern ParsePath makes of a real path.
std::string PatternOf(const std::string& shown) {
  std::string out;
  for (size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] == '<') {
      i = shown.find('>', i);
      continue;
    }
    out += shown[i];
  }
  return out;
}

template <typename T>
Param MakeParam(const std::string& shown, const std::string& takes, Locate<T> locate, Read<T> read,
                std::function<std::string(const T&)> show, bool distribution = false,
                std::function<void(ScenarioConfig*, const Keys&)> after = nullptr) {
  Param p;
  p.pattern = PatternOf(shown);
  p.info = {shown, takes};
  p.set = [=](ScenarioConfig* sc, const Keys& keys, const YamlFile& file,
              std::string_view value) -> Status {
    ASSIGN_OR_RETURN(T * place, locate(sc, keys));
    const YAML::Node node = distribution ? DistributionNode(value) : ScalarNode(value);
    ASSIGN_OR_RETURN(*place, read(file, node));
    if (after) after(sc, keys);
    return Status::Ok();
  };
  p.get = [=](ScenarioConfig* sc, const Keys& keys) -> Result<std::string> {
    ASSIGN_OR_RETURN(T * place, locate(sc, keys));
    return show(*place);
  };
  return p;
}

// --- Where a parameter lives ---------------------------------------------------------------------

Status NoMixSetup(const ScenarioConfig& sc) {
  if (sc.mix_file.empty()) return Status::Ok();
  return Status::InvalidArgument("the scenario is a mix of organisations (" + sc.mix_file +
                                 "): each archetype names its own setup");
}

Result<SetupConfig*> Setup(ScenarioConfig* sc, const Keys&) {
  RETURN_IF_ERROR(NoMixSetup(*sc));
  return &sc->setup;
}

Result<SiteConfig*> Site(ScenarioConfig* sc, const Keys& keys) {
  RETURN_IF_ERROR(NoMixSetup(*sc));
  for (SiteConfig& site : sc->setup.sites) {
    if (site.name == keys.at(0)) return &site;
  }
  return Status::InvalidArgument("no site '" + keys.at(0) + "' in " + SetupLabel(sc->setup) +
                                 "; its sites: " + Join(SiteNames(sc->setup.sites)));
}

Result<GroupConfig*> Group(ScenarioConfig* sc, const Keys& keys) {
  RETURN_IF_ERROR(NoMixSetup(*sc));
  for (GroupConfig& group : sc->setup.groups) {
    if (group.name == keys.at(0)) return &group;
  }
  return Status::InvalidArgument("no group '" + keys.at(0) + "' in " + SetupLabel(sc->setup) +
                                 "; its groups: " + Join(GroupNames(sc->setup.groups)));
}

Result<ServiceBacklog*> Backlog(ScenarioConfig* sc, const Keys& keys) {
  RETURN_IF_ERROR(NoMixSetup(*sc));
  std::vector<std::string> names;
  for (ServiceConfig& service : sc->setup.services) {
    names.push_back(service.name);
    if (service.name != keys.at(0)) continue;
    if (!service.backlog) {
      return Status::InvalidArgument("service '" + service.name + "' of " + SetupLabel(sc->setup) +
                                     " has no backlog to change");
    }
    return &*service.backlog;
  }
  return Status::InvalidArgument("no service '" + keys.at(0) + "' in " + SetupLabel(sc->setup) +
                                 "; its services: " + Join(names));
}

Result<StepConfig*> Step(ScenarioConfig* sc, const Keys& keys) {
  const std::string& text = keys.at(0);
  size_t index = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  const size_t steps = sc->runbook.steps.size();
  if (ec != std::errc() || end != text.data() + text.size() || index >= steps) {
    return Status::InvalidArgument("no step " + text + " in runbook '" + sc->runbook.name +
                                   "'; its steps are 0 to " + std::to_string(steps - 1) +
                                   " (0-based, in the order written)");
  }
  return &sc->runbook.steps[index];
}

template <typename T, typename Owner>
Locate<T> Member(Result<Owner*> (*owner)(ScenarioConfig*, const Keys&), T Owner::*field) {
  return [=](ScenarioConfig* sc, const Keys& keys) -> Result<T*> {
    ASSIGN_OR_RETURN(Owner * o, owner(sc, keys));
    return &(o->*field);
  };
}

template <typename T>
Locate<T> Top(T ScenarioConfig::*field) {
  return [=](ScenarioConfig* sc, const Keys&) -> Result<T*> { return &(sc->*field); };
}

// --- How a value is read and printed
// --------------------------------------------------------------

Read<int> Int(const std::string& what, int64_t min, int64_t max) {
  return [=](const YamlFile& f, const YAML::Node& n) -> Result<int> {
    ASSIGN_OR_RETURN(int64_t v, ReadInt(f, n, what, min, max));
    return static_cast<int>(v);
  };
}
std::string ShowInt(const int& v) { return std::to_string(v); }

Read<bool> Bool(const std::string& what) {
  return [=](const YamlFile& f, const YAML::Node& n) { return ReadBool(f, n, what); };
}
std::string ShowBool(const bool& v) { return v ? "true" : "false"; }

// The shortest text that reads back as `v` ("0.5", "4").
std::string ShowNumber(const double& v) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, v);
  return ec == std::errc() ? std::string(text, end) : std::to_string(v);
}

Read<Distribution> Dist(const std::string& what) {
  return [=](const YamlFile& f, const YAML::Node& n) { return ReadDistribution(f, n, what); };
}
std::string ShowDist(const Distribution& d) { return d.ToString(); }

Read<Seconds> TimeOfDay(const std::string& what) {
  return [=](const YamlFile& f, const YAML::Node& n) { return ReadTimeOfDay(f, n, what); };
}
std::string ShowTimeOfDay(const Seconds& t) { return FormatTimeOfDay(t); }

// `console: oob|none` as the YAML spells it, or true/false.
Result<bool> ReadOobConsole(const YamlFile& f, const YAML::Node& n) {
  if (n.IsScalar() && (n.Scalar() == "oob" || n.Scalar() == "none")) return ReadConsole(f, n);
  if (n.IsScalar() && ReadBool(f, n, "oob_console").ok()) return ReadBool(f, n, "oob_console");
  return f.Error(n, "oob_console: expected true, false, oob or none, got " + Describe(n));
}

Result<std::string> ReadSensor(const YamlFile& f, const YAML::Node& n) {
  ASSIGN_OR_RETURN(std::string v, ReadName(f, n, "sensor"));
  for (const std::string& known : SensorVersions()) {
    if (v == known) return v;
  }
  return f.Error(n, "unknown sensor version '" + v + "'; allowed: " + Join(SensorVersions()));
}

// hosted_on: "external" (stored as "") or a group of the setup.
Param HostedOn() {
  Param p;
  p.info = {"setup.key_escrow.hosted_on", "external or a group"};
  p.pattern = p.info.pattern;
  p.set = [](ScenarioConfig* sc, const Keys&, const YamlFile& f, std::string_view value) {
    RETURN_IF_ERROR(NoMixSetup(*sc));
    ASSIGN_OR_RETURN(std::string name, ReadIdentifier(f, ScalarNode(value), "hosted_on"));
    if (name == "external") name.clear();
    bool known = name.empty();
    for (const GroupConfig& g : sc->setup.groups) known = known || g.name == name;
    if (!known) {
      return f.Error(ScalarNode(value), "no group '" + name +
                                            "'; expected external or a group of this setup: " +
                                            Join(GroupNames(sc->setup.groups)));
    }
    sc->setup.key_escrow.hosted_on = name;
    return Status::Ok();
  };
  p.get = [](ScenarioConfig* sc, const Keys&) -> Result<std::string> {
    RETURN_IF_ERROR(NoMixSetup(*sc));
    const std::string& h = sc->setup.key_escrow.hosted_on;
    return h.empty() ? std::string("external") : h;
  };
  return p;
}

// race_window_ms: the scenario's override; read back as the window the scenario runs.
Param RaceWindow() {
  Param p;
  p.info = {"race_window_ms", "integer, 1 to 60000"};
  p.pattern = p.info.pattern;
  p.set = [](ScenarioConfig* sc, const Keys&, const YamlFile& f, std::string_view value) {
    ASSIGN_OR_RETURN(sc->race_window_ms, Int("race_window_ms", 1, 60000)(f, ScalarNode(value)));
    return Status::Ok();
  };
  p.get = [](ScenarioConfig* sc, const Keys&) -> Result<std::string> {
    return std::to_string(sc->RaceWindowMs());
  };
  return p;
}

// The scenario's own parameters, its rollout's and its runbook's.
std::vector<Param> ScenarioParams() {
  using SC = ScenarioConfig;
  std::vector<Param> params;
  params.push_back(MakeParam<uint64_t>(
      "seed", "non-negative integer", Top(&SC::seed),
      [](const YamlFile& f, const YAML::Node& n) { return ReadUnsigned(f, n, "seed"); },
      [](const uint64_t& v) { return std::to_string(v); }));
  params.push_back(RaceWindow());
  params.push_back(MakeParam<Seconds>(
      "stop.max_scenario", "duration > 0",
      [](SC* sc, const Keys&) -> Result<Seconds*> { return &sc->stop.max_scenario; },
      [](const YamlFile& f, const YAML::Node& n) {
        return ReadDuration(f, n, "max_scenario", false);
      },
      [](const Seconds& s) { return FormatDuration(s); }));
  params.push_back(MakeParam<RolloutPolicy>(
      "rollout.policy", "all-at-once or rings",
      [](SC* sc, const Keys&) -> Result<RolloutPolicy*> { return &sc->rollout.policy; },
      [](const YamlFile& f, const YAML::Node& n) {
        return ReadEnum(f, n, "rollout policy", ParseRolloutPolicy, AllRolloutPolicies(),
                        RolloutPolicyName);
      },
      [](const RolloutPolicy& p) { return std::string(RolloutPolicyName(p)); }, false,
      [](SC* sc, const Keys&) {
        if (sc->rollout.policy != RolloutPolicy::kAllAtOnce) return;
        sc->rollout.rings.clear();  // all at once: no rings, so nothing for a gate to halt
        sc->rollout.gate.enabled = false;
      }));
  for (const char* key : {"start", "release", "revert"}) {
    Seconds RolloutConfig::*field = std::string_view(key) == "start"     ? &RolloutConfig::start
                                    : std::string_view(key) == "release" ? &RolloutConfig::release
                                                                         : &RolloutConfig::revert;
    params.push_back(MakeParam<Seconds>(
        std::string("rollout.") + key, "time of day (HH:MM)",
        [field](SC* sc, const Keys&) -> Result<Seconds*> { return &(sc->rollout.*field); },
        TimeOfDay(key), ShowTimeOfDay));
  }
  params.push_back(MakeParam<int>(
      "runbook.parallelism", "integer >= 0 (0: unlimited)",
      [](SC* sc, const Keys&) -> Result<int*> { return &sc->runbook.parallelism; },
      Int("parallelism", 0, 100000000), ShowInt));
  params.push_back(MakeParam<Distribution>("runbook.steps[<i>].takes", "distribution",
                                           Member(&Step, &StepConfig::takes), Dist("takes"),
                                           ShowDist, true));
  params.push_back(MakeParam<int>(
      "runbook.steps[<i>].times", "integer >= 1 (reboot steps)",
      [](SC* sc, const Keys& keys) -> Result<int*> {
        ASSIGN_OR_RETURN(StepConfig * step, Step(sc, keys));
        if (step->kind != StepKind::kReboot) {
          return Status::InvalidArgument("step " + keys[0] + " is a " +
                                         std::string(StepKindName(step->kind)) +
                                         " step; times applies to reboot steps");
        }
        return &step->times;
      },
      Int("times", 1, 1000), ShowInt));
  return params;
}

// setup.*: the setup's PXE, key escrow, sites and groups.
std::vector<Param> SetupParams() {
  using SC = ScenarioConfig;
  std::vector<Param> params;
  params.push_back(MakeParam<bool>("setup.pxe", "true or false", Member(&Setup, &SetupConfig::pxe),
                                   Bool("pxe"), ShowBool));
  params.push_back(HostedOn());
  params.push_back(MakeParam<Distribution>(
      "setup.key_escrow.lookup", "distribution",
      [](SC* sc, const Keys& k) -> Result<Distribution*> {
        ASSIGN_OR_RETURN(SetupConfig * s, Setup(sc, k));
        return &s->key_escrow.lookup;
      },
      Dist("lookup"), ShowDist, true));
  params.push_back(MakeParam<int>(
      "setup.hypervisor.repairs_at_once", "integer >= 1",
      [](SC* sc, const Keys& k) -> Result<int*> {
        ASSIGN_OR_RETURN(SetupConfig * s, Setup(sc, k));
        return &s->hypervisor.repairs_at_once;
      },
      Int("repairs_at_once", 1, 1000000), ShowInt));
  params.push_back(MakeParam<Distribution>(
      "setup.hypervisor.script_ready", "distribution",
      [](SC* sc, const Keys& k) -> Result<Distribution*> {
        ASSIGN_OR_RETURN(SetupConfig * s, Setup(sc, k));
        return &s->hypervisor.script_ready;
      },
      Dist("script_ready"), ShowDist, true));
  params.push_back(MakeParam<int>("setup.sites[<site>].technicians", "integer >= 0",
                                  Member(&Site, &SiteConfig::technicians),
                                  Int("technicians", 0, 1000000), ShowInt));
  params.push_back(MakeParam<int>("setup.sites[<site>].usb_sticks", "integer >= 0",
                                  Member(&Site, &SiteConfig::usb_sticks),
                                  Int("usb_sticks", 0, 1000000), ShowInt));
  params.push_back(MakeParam<int>(
      "setup.sites[<site>].remote_consoles.per_technician", "integer 1..100",
      Member(&Site, &SiteConfig::consoles_per_technician), Int("per_technician", 1, 100), ShowInt));
  // 0: no limit (what a site without the key has).
  params.push_back(MakeParam<int>(
      "setup.sites[<site>].remote_consoles.sessions", "integer >= 0 (0: no limit)",
      Member(&Site, &SiteConfig::console_sessions), Int("sessions", 0, 1000000), ShowInt));
  params.push_back(MakeParam<Distribution>("setup.sites[<site>].travel", "distribution",
                                           Member(&Site, &SiteConfig::travel), Dist("travel"),
                                           ShowDist, true));
  params.push_back(MakeParam<int>("setup.groups[<group>].count", "integer >= 1",
                                  Member(&Group, &GroupConfig::count), Int("count", 1, 100000000),
                                  ShowInt));
  params.push_back(MakeParam<bool>("setup.groups[<group>].bitlocker", "true or false",
                                   Member(&Group, &GroupConfig::bitlocker), Bool("bitlocker"),
                                   ShowBool));
  params.push_back(MakeParam<bool>("setup.groups[<group>].oob_console", "true/false or oob/none",
                                   Member(&Group, &GroupConfig::oob_console), ReadOobConsole,
                                   ShowBool));
  params.push_back(MakeParam<Network>(
      "setup.groups[<group>].network", "wired, wifi, vpn or offline",
      Member(&Group, &GroupConfig::network),
      [](const YamlFile& f, const YAML::Node& n) {
        return ReadEnum(f, n, "network", ParseNetwork, AllNetworks(), NetworkName);
      },
      [](const Network& v) { return std::string(NetworkName(v)); }, false,
      [](SC* sc, const Keys& keys) {
        GroupConfig* g = *Group(sc, keys);
        g->online_in_window = g->network != Network::kOffline;
      }));
  params.push_back(MakeParam<std::string>("setup.groups[<group>].sensor", Join(SensorVersions()),
                                          Member(&Group, &GroupConfig::sensor_version), ReadSensor,
                                          [](const std::string& v) { return v; }));
  for (double ServiceBacklog::*field : {&ServiceBacklog::grows, &ServiceBacklog::works_off}) {
    const std::string key = field == &ServiceBacklog::grows ? "grows" : "works_off";
    params.push_back(MakeParam<double>(
        "setup.services[<service>].backlog." + key, "hours of work per hour, (0, 1000]",
        Member(&Backlog, field),
        [key](const YamlFile& f, const YAML::Node& n) { return ReadBacklogRate(f, n, key); },
        ShowNumber));
  }
  params.push_back(MakeParam<Seconds>(
      "setup.services[<service>].backlog.cap", "duration > 0, or none",
      Member(&Backlog, &ServiceBacklog::cap),
      [](const YamlFile& f, const YAML::Node& n) -> Result<Seconds> {
        if (n.IsScalar() && n.Scalar() == "none") return 0.0;  // no limit
        return ReadDuration(f, n, "cap", false);
      },
      [](const Seconds& s) { return s > 0 ? FormatDuration(s) : std::string("none"); }));
  return params;
}

const std::vector<Param>& Params() {
  static const std::vector<Param> params = [] {
    std::vector<Param> all = ScenarioParams();
    for (Param& p : SetupParams()) all.push_back(std::move(p));
    return all;
  }();
  return params;
}

std::string SettableList() {
  std::vector<std::string> patterns;
  for (const Param& p : Params()) patterns.push_back(p.info.pattern);
  return Join(patterns);
}

Result<const Param*> FindParam(std::string_view path, Keys* keys) {
  ASSIGN_OR_RETURN(ParsedPath parsed, ParsePath(path));
  for (const Param& p : Params()) {
    if (p.pattern == parsed.pattern) {
      *keys = std::move(parsed.keys);
      return &p;
    }
  }
  return Status::InvalidArgument((path.empty() ? std::string("''") : std::string(path)) +
                                 ": names no parameter; settable: " + SettableList());
}

// Checks of setup.* that the setup loader makes while reading (setup_loader.cc).
Status ValidateSetup(const SetupConfig& setup) {
  for (const GroupConfig& g : setup.groups) {
    if (Status ok = CheckIdentifier("host name", HostName(g.name, g.count)); !ok.ok()) {
      return Status::InvalidArgument("group '" + g.name + "' of " + std::to_string(g.count) +
                                     " host(s): " + ok.message());
    }
    if (g.online_in_window && g.network == Network::kOffline) {
      return Status::InvalidArgument("group '" + g.name +
                                     "' has network: offline, so it cannot be online_in_window");
    }
  }
  auto group = [&](const std::string& name) -> const GroupConfig* {
    for (const GroupConfig& g : setup.groups) {
      if (g.name == name) return &g;
    }
    return nullptr;
  };
  if (!setup.key_escrow.hosted_on.empty() && group(setup.key_escrow.hosted_on) == nullptr) {
    return Status::InvalidArgument("key_escrow hosted_on names unknown group '" +
                                   setup.key_escrow.hosted_on + "'");
  }
  for (const ServiceConfig& s : setup.services) {
    for (const ServiceNeed& need : s.needs) {
      const GroupConfig* g = group(need.group);
      if (g != nullptr && need.at_least <= g->count) continue;
      return Status::InvalidArgument("service '" + s.name + "' needs at least " +
                                     std::to_string(need.at_least) + " hosts of group '" +
                                     need.group + "', which has " +
                                     (g ? std::to_string(g->count) : std::string("none")) +
                                     " (at " + need.where.ToString() + ")");
    }
  }
  return Status::Ok();
}

// Checks of rollout.* that the scenario loader makes while reading (scenario_loader.cc).
Status ValidateRollout(const RolloutConfig& r) {
  if (r.release < r.start || r.revert < r.release) {
    return Status::InvalidArgument(
        "rollout start " + FormatTimeOfDay(r.start) + ", release " + FormatTimeOfDay(r.release) +
        ", revert " + FormatTimeOfDay(r.revert) + ": expected start <= release <= revert");
  }
  if (r.policy == RolloutPolicy::kRings && r.rings.empty()) {
    return Status::InvalidArgument(
        "policy: rings needs the scenario's `rings` list (name, percent, after), and it has "
        "none (" +
        r.where.ToString() + ")");
  }
  if (r.policy != RolloutPolicy::kRings && (!r.rings.empty() || r.gate.enabled)) {
    return Status::InvalidArgument("rings and a health gate are only used with policy: rings");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<PathInfo>& SettablePaths() {
  static const std::vector<PathInfo> infos = [] {
    std::vector<PathInfo> out;
    for (const Param& p : Params()) out.push_back(p.info);
    return out;
  }();
  return infos;
}

Status ValidateScenario(const ScenarioConfig& sc) {
  RETURN_IF_ERROR(ValidateRollout(sc.rollout));
  if (sc.stop.max_scenario <= 0) return Status::InvalidArgument("stop max_scenario must be > 0");
  // A later release or revert must not leave a tool or the cloud's quarantine before them.
  if (sc.vendor_remediation.enabled && sc.vendor_remediation.available < sc.rollout.revert) {
    return Status::InvalidArgument("vendor_remediation available is before the revert");
  }
  if (!sc.mix_file.empty()) return Status::Ok();  // the mix's archetypes are checked by lab/sim
  RETURN_IF_ERROR(CheckToolsAfterRelease(sc.runbook, sc));
  RETURN_IF_ERROR(ValidateSetup(sc.setup));
  RETURN_IF_ERROR(CheckRunbookFitsImage(sc.runbook, sc.setup, sc.image));
  RETURN_IF_ERROR(CheckRunbookFitsSetup(sc.runbook, sc.setup));
  return CheckRolloutFitsSetup(sc.rollout, sc.setup);
}

Status SetByPath(ScenarioConfig* scenario, std::string_view path, std::string_view value) {
  Keys keys;
  Result<const Param*> param = FindParam(path, &keys);
  if (!param.ok()) return param.status();
  const std::string shown(path);
  YamlFile file(shown);  // a value's errors read "<path>: what was expected"
  Status set = Guarded<bool>(shown, [&]() -> Result<bool> {
                 RETURN_IF_ERROR((*param)->set(scenario, keys, file, value));
                 return true;
               }).status();
  if (!set.ok()) {
    // Locator errors carry no location yet; reader errors start with the path already.
    return set.message().rfind(shown + ":", 0) == 0 ? set : set.WithContext(shown);
  }
  RETURN_IF_ERROR(ValidateScenario(*scenario).WithContext(shown + "=" + Trim(value) +
                                                          " makes the scenario inconsistent"));
  ASSIGN_OR_RETURN(std::string now, (*param)->get(scenario, keys));
  scenario->overrides.emplace_back(shown, std::move(now));
  return Status::Ok();
}

Result<std::string> GetByPath(const ScenarioConfig& scenario, std::string_view path) {
  Keys keys;
  ASSIGN_OR_RETURN(const Param* param, FindParam(path, &keys));
  // The locators take a mutable scenario; reading through one changes nothing.
  Result<std::string> value = param->get(const_cast<ScenarioConfig*>(&scenario), keys);
  if (!value.ok()) return value.status().WithContext(std::string(path));
  return value;
}

}  // namespace chaoslab::config
