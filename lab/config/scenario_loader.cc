// Scenarios: the fault, the rollout (rings, health gate, pinned groups), the stop conditions and
// the setup, runbook and image a scenario names; LoadScenario, CheckRolloutFitsSetup, Recombine,
// FindPlaybook; ValidateFile and the one-line summaries `chaoslab validate` prints.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "lab/common/identifier.h"
#include "lab/config/config_loader.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

// --- Scenarios ----------------------------------------------------------------------------------

Status CheckStaffingFitsRollout(const RolloutConfig& rollout, const SetupConfig& setup) {
  for (const SiteConfig& site : setup.sites) {
    const auto& known_at = site.crisis.known_at;
    if (known_at && *known_at < rollout.start) {
      return Status::AtLocation(site.crisis.known_at_where,
                                "site '" + site.name + "': crisis staffing from " +
                                    FormatTimeOfDay(*known_at) +
                                    " is before the scenario starts (rollout start " +
                                    FormatTimeOfDay(rollout.start) + ")");
    }
  }
  return Status::Ok();
}

Status CheckRolloutFitsSetup(const RolloutConfig& rollout, const SetupConfig& setup) {
  RETURN_IF_ERROR(CheckStaffingFitsRollout(rollout, setup));
  for (const std::string& g : rollout.pinned) {
    bool known = false;
    for (const auto& group : setup.groups) known |= group.name == g;
    if (!known) {
      return Status::AtLocation(rollout.where, "pinned names unknown group '" + g + "'; " +
                                                   SetupLabel(setup) + " has " +
                                                   Join(GroupNames(setup.groups)));
    }
  }
  return Status::Ok();
}

namespace {

namespace fs = std::filesystem;

Result<RingConfig> ReadRing(const YamlFile& file, const YAML::Node& node, size_t index) {
  const std::string what = "rings[" + std::to_string(index) + "]";
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, what, {"name", "percent", "after"}));
  RingConfig ring;
  ring.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(ring.name, ReadIdentifier(file, name, what + " name"));
  ASSIGN_OR_RETURN(YAML::Node percent, fields.Require("percent"));
  ASSIGN_OR_RETURN(ring.percent, ReadPercent(file, percent, what + " percent"));
  if (fields.Has("after")) {
    ASSIGN_OR_RETURN(ring.after, ReadDuration(file, fields.Get("after"), what + " after", true));
  }
  return ring;
}

// `rings:` of a rollout with policy rings, into `rollout.rings`.
Status ReadRings(const YamlFile& file, YAML::Node rings, RolloutConfig& rollout) {
  if (rollout.policy != RolloutPolicy::kRings) {
    return file.Error(rings, "rings are only used with policy: rings");
  }
  RETURN_IF_ERROR(ExpectNonEmptyList(file, rings, "rings"));
  double sum = 0;
  std::set<std::string> names;
  for (size_t i = 0; i < rings.size(); ++i) {
    ASSIGN_OR_RETURN(RingConfig ring, ReadRing(file, rings[i], i));
    if (!names.insert(ring.name).second) {
      return file.Error(rings[i], "ring '" + ring.name + "' is listed twice");
    }
    if (!rollout.rings.empty() && ring.after < rollout.rings.back().after) {
      return file.Error(rings[i], "ring '" + ring.name + "' goes out before ring '" +
                                      rollout.rings.back().name +
                                      "'; expected rings in release order (after ascending)");
    }
    sum += ring.percent;
    rollout.rings.push_back(ring);
  }
  if (std::abs(sum - 100) > 1e-6) {
    return file.Error(rings, "ring percents add up to " + fmt::format("{:g}", sum) +
                                 " %; expected 100 % (every host in exactly one ring)");
  }
  return Status::Ok();
}

Result<RolloutConfig> ReadRollout(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "rollout",
                                               {"policy", "start", "release", "revert", "rings",
                                                "health_gate", "pinned"}));
  RolloutConfig rollout;
  rollout.where = fields.where();
  if (fields.Has("policy")) {
    ASSIGN_OR_RETURN(rollout.policy,
                     ReadEnum(file, fields.Get("policy"), "rollout policy", ParseRolloutPolicy,
                              AllRolloutPolicies(), RolloutPolicyName));
  }
  if (fields.Has("start")) {
    ASSIGN_OR_RETURN(rollout.start, ReadTimeOfDay(file, fields.Get("start"), "start"));
  }
  if (fields.Has("release")) {
    ASSIGN_OR_RETURN(rollout.release, ReadTimeOfDay(file, fields.Get("release"), "release"));
  }
  if (fields.Has("revert")) {
    ASSIGN_OR_RETURN(rollout.revert, ReadTimeOfDay(file, fields.Get("revert"), "revert"));
  }
  auto shown = [&](const std::string& key, Seconds t) {
    return key + " (" + FormatTimeOfDay(t) + (fields.Has(key) ? "" : ", the default") + ")";
  };
  auto at = [&](const std::string& key) {
    return fields.Has(key) ? file.At(fields.Get(key)) : fields.where();
  };
  if (rollout.release < rollout.start) {
    return file.Error(at("release"), shown("release", rollout.release) + " is before " +
                                         shown("start", rollout.start) +
                                         "; expected start <= release <= revert");
  }
  if (rollout.revert < rollout.release) {
    return file.Error(at("revert"), shown("revert", rollout.revert) + " is before " +
                                        shown("release", rollout.release) +
                                        "; expected start <= release <= revert");
  }
  if (fields.Has("rings")) {
    RETURN_IF_ERROR(ReadRings(file, fields.Get("rings"), rollout));
  } else if (rollout.policy == RolloutPolicy::kRings) {
    return file.Error(fields.where(), "policy: rings needs a `rings` list (name, percent, after)");
  }
  if (fields.Has("health_gate")) {
    YAML::Node gate_node = fields.Get("health_gate");
    if (rollout.policy != RolloutPolicy::kRings) {
      return file.Error(gate_node, "a health gate only applies to policy: rings");
    }
    ASSIGN_OR_RETURN(Fields gate, Fields::Open(file, gate_node, "health_gate", {"max_crash_rate"}));
    rollout.gate.enabled = true;
    rollout.gate.where = gate.where();
    ASSIGN_OR_RETURN(YAML::Node rate, gate.Require("max_crash_rate"));
    ASSIGN_OR_RETURN(double percent, ReadPercent(file, rate, "health_gate max_crash_rate"));
    rollout.gate.max_crash_rate = percent / 100;
  }
  if (fields.Has("pinned")) {
    YAML::Node pinned = fields.Get("pinned");
    if (!pinned.IsSequence()) {
      return file.Error(pinned, "pinned: expected a list of group names, got " + Describe(pinned));
    }
    for (const auto& g : pinned) {
      ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, g, "pinned group"));
      rollout.pinned.push_back(name);
    }
  }
  return rollout;
}

Result<StopConfig> ReadStop(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "stop", {"max_scenario", "max_wall"}));
  StopConfig stop;
  stop.where = fields.where();
  if (fields.Has("max_scenario")) {
    ASSIGN_OR_RETURN(stop.max_scenario,
                     ReadDuration(file, fields.Get("max_scenario"), "max_scenario", false));
  }
  if (fields.Has("max_wall")) {
    ASSIGN_OR_RETURN(stop.max_wall, ReadDuration(file, fields.Get("max_wall"), "max_wall", false));
  }
  return stop;
}

// `fault:`, the content the rollout releases.
Result<FaultConfig> ReadFault(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fault, Fields::Open(file, node, "fault", {"kind", "channel"}));
  FaultConfig out;
  out.where = fault.where();
  ASSIGN_OR_RETURN(YAML::Node kind, fault.Require("kind"));
  ASSIGN_OR_RETURN(
      out.kind, ReadEnum(file, kind, "fault kind", ParseFaultKind, AllFaultKinds(), FaultKindName));
  if (fault.Has("channel")) {
    ASSIGN_OR_RETURN(int64_t channel,
                     ReadInt(file, fault.Get("channel"), "fault channel", 0, 99999999));
    // The sensor interprets channel 291 (named-pipe detections, the IPC template type).
    if (channel != 291) {
      return file.Error(fault.Get("channel"), "unknown channel " + std::to_string(channel) +
                                                  "; expected 291 (the channel the sensor "
                                                  "interprets)");
    }
    out.channel = static_cast<int>(channel);
  }
  return out;
}

// The files a scenario with `mix:` names (`scenario` holds what its other keys said).
Result<ScenarioConfig> ReadMixScenario(const YamlFile& file, const Fields& fields,
                                       const std::string& images_root, ScenarioConfig scenario) {
  // A world of organisations for the simulator (lab/sim reads the mix file); each archetype
  // names its own setup and runbook, so the scenario needs neither.
  ASSIGN_OR_RETURN(std::string mix, ReadName(file, fields.Get("mix"), "mix"));
  scenario.mix_file = AbsolutePath(file.Resolve(mix));
  scenario.mix_where = file.At(fields.Get("mix"));
  if (!fs::exists(scenario.mix_file)) {
    return file.Error(fields.Get("mix"), "mix file '" + mix + "' (resolved to " +
                                             scenario.mix_file + ") does not exist");
  }
  if (fields.Has("setup")) {
    return file.Error(fields.Get("setup"),
                      "a scenario with a mix names no setup (each archetype "
                      "of the mix names its own)");
  }
  if (scenario.backend != BackendKind::kSim) {
    return file.Error(fields.Get("mix"), "a mix runs only on the simulator; add `backend: sim`");
  }
  scenario.setup.name = "mix";
  scenario.setup.image = "winsim";
  scenario.setup.where = scenario.mix_where;
  scenario.setup.image_where = scenario.mix_where;
  if (fields.Has("runbook")) {
    ASSIGN_OR_RETURN(std::string runbook_path, ReadName(file, fields.Get("runbook"), "runbook"));
    const SourceLocation runbook_at = file.At(fields.Get("runbook"));
    ASSIGN_OR_RETURN(scenario.runbook,
                     ReadRunbookFile(runbook_path, file.Resolve(runbook_path), &runbook_at));
    RETURN_IF_ERROR(CheckToolsAfterRelease(scenario.runbook, scenario));
  }
  ASSIGN_OR_RETURN(scenario.image,
                   ReadImageFile(images_root, scenario.setup.image, &scenario.setup.image_where));
  return scenario;
}

Result<ScenarioConfig> ReadScenarioFile(const std::string& as_written, const std::string& path,
                                        const std::string& images_root) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("scenario", as_written, path, nullptr));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "a scenario",
                                {"name", "description", "setup", "fault", "rollout", "runbook",
                                 "backend", "repetitions", "seed", "stop", "race_window_ms", "mix",
                                 "calibration", "date", "vendor_remediation"}));
  ScenarioConfig scenario;
  scenario.file = AbsolutePath(path);
  scenario.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(scenario.name, ReadIdentifier(file, name, "scenario name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(scenario.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("fault")) {
    ASSIGN_OR_RETURN(scenario.fault, ReadFault(file, fields.Get("fault")));
  }
  if (fields.Has("rollout")) {
    ASSIGN_OR_RETURN(scenario.rollout, ReadRollout(file, fields.Get("rollout")));
  } else {
    scenario.rollout.where = fields.where();
  }
  if (fields.Has("backend")) {
    ASSIGN_OR_RETURN(scenario.backend,
                     ReadEnum(file, fields.Get("backend"), "backend", ParseBackendKind,
                              AllBackendKinds(), BackendKindName));
  }
  if (fields.Has("repetitions")) {
    ASSIGN_OR_RETURN(scenario.repetitions,
                     ReadInt(file, fields.Get("repetitions"), "repetitions", 1, 100000));
  }
  if (fields.Has("race_window_ms")) {
    ASSIGN_OR_RETURN(scenario.race_window_ms,
                     ReadInt(file, fields.Get("race_window_ms"), "race_window_ms", 1, 60000));
    scenario.race_window_where = file.At(fields.Get("race_window_ms"));
  }
  if (fields.Has("seed")) {
    ASSIGN_OR_RETURN(scenario.seed, ReadUnsigned(file, fields.Get("seed"), "seed"));
  }
  scenario.date.where = fields.where();
  if (fields.Has("date")) {
    ASSIGN_OR_RETURN(scenario.date, ReadDate(file, fields.Get("date")));
  }
  if (fields.Has("vendor_remediation")) {
    ASSIGN_OR_RETURN(scenario.vendor_remediation,
                     ReadVendorRemediation(file, fields.Get("vendor_remediation"), scenario.date,
                                           scenario.rollout));
  }
  if (fields.Has("stop")) {
    ASSIGN_OR_RETURN(scenario.stop, ReadStop(file, fields.Get("stop")));
  } else {
    scenario.stop.where = fields.where();
  }

  // The files it names, each resolved against this file's folder.
  if (fields.Has("calibration")) {
    ASSIGN_OR_RETURN(std::string cal, ReadName(file, fields.Get("calibration"), "calibration"));
    scenario.calibration_file = AbsolutePath(file.Resolve(cal));
    scenario.calibration_where = file.At(fields.Get("calibration"));
  }
  if (fields.Has("mix")) {
    if (!scenario.vendor_remediation.opted_in_groups.empty()) {
      return file.Error(scenario.vendor_remediation.opted_in_where,
                        "vendor_remediation opted_in: a mix's organisations have groups of their "
                        "own; give a share (0..1) instead of group names");
    }
    return ReadMixScenario(file, fields, images_root, std::move(scenario));
  }
  ASSIGN_OR_RETURN(YAML::Node setup_node, fields.Require("setup"));
  ASSIGN_OR_RETURN(std::string setup_path, ReadName(file, setup_node, "setup"));
  const SourceLocation setup_at = file.At(setup_node);
  ASSIGN_OR_RETURN(scenario.setup, ReadSetupFile(setup_path, file.Resolve(setup_path), &setup_at));

  ASSIGN_OR_RETURN(YAML::Node runbook_node, fields.Require("runbook"));
  ASSIGN_OR_RETURN(std::string runbook_path, ReadName(file, runbook_node, "runbook"));
  const SourceLocation runbook_at = file.At(runbook_node);
  ASSIGN_OR_RETURN(scenario.runbook,
                   ReadRunbookFile(runbook_path, file.Resolve(runbook_path), &runbook_at));

  ASSIGN_OR_RETURN(scenario.image,
                   ReadImageFile(images_root, scenario.setup.image, &scenario.setup.image_where));
  RETURN_IF_ERROR(CheckRunbookFitsImage(scenario.runbook, scenario.setup, scenario.image));
  RETURN_IF_ERROR(CheckRunbookFitsSetup(scenario.runbook, scenario.setup));
  RETURN_IF_ERROR(CheckRolloutFitsSetup(scenario.rollout, scenario.setup));
  RETURN_IF_ERROR(CheckToolsAfterRelease(scenario.runbook, scenario));
  RETURN_IF_ERROR(CheckRemediationFitsSetup(scenario.vendor_remediation, scenario.setup));
  return scenario;
}

std::string SetupSummary(const SetupConfig& setup) {
  return std::to_string(TotalHosts(setup)) + " hosts in " + std::to_string(setup.groups.size()) +
         " groups at " + std::to_string(setup.sites.size()) + " site(s), image '" + setup.image +
         "'";
}

// What a setup has beyond its hosts, for `validate`.
std::string SetupDetails(const SetupConfig& setup) {
  int64_t technicians = 0, sticks = 0, bitlocker = 0, cloud = 0, oob = 0, on_hypervisor = 0;
  for (const SiteConfig& site : setup.sites) {
    technicians += site.technicians;
    sticks += site.usb_sticks;
  }
  for (const GroupConfig& g : setup.groups) {
    if (g.bitlocker) bitlocker += g.count;
    if (g.cloud) cloud += g.count;
    if (g.oob_console) oob += g.count;
    if (g.on_hypervisor) on_hypervisor += g.count;
  }
  std::string line =
      "; " + std::to_string(technicians) + " technician(s), " + std::to_string(sticks) +
      " USB stick(s); " + std::to_string(bitlocker) + " BitLocker, " + std::to_string(cloud) +
      " cloud, " + std::to_string(oob) + " out-of-band console host(s)" +
      (on_hypervisor ? ", " + std::to_string(on_hypervisor) + " virtual" : "") + "; key escrow ";
  if (setup.key_escrow.hosted_on.empty()) {
    line += "external";
  } else {
    line += "on group '" + setup.key_escrow.hosted_on + "'";
  }
  line += " (lookup " + setup.key_escrow.lookup.ToString() + "); PXE " +
          (setup.pxe ? "yes" : "no") + "; snapshots " +
          (setup.snapshots.enabled ? "at " + FormatTimeOfDay(setup.snapshots.taken_at) : "none");
  if (setup.hypervisor.enabled) {
    line += "; hypervisor: " + std::to_string(setup.hypervisor.repairs_at_once) +
            " repair(s) at once, script ready after " + setup.hypervisor.script_ready.ToString();
  }
  std::vector<std::string> services;
  for (const ServiceConfig& s : setup.services) services.push_back(s.name);
  line += "; services: " + (services.empty() ? std::string("none") : Join(services));
  return line;
}

// "boot safe-mode [technician] takes uniform(2m, 5m) when bitlocker" for `validate`.
std::string StepSummary(const StepConfig& step) {
  std::string text(StepKindName(step.kind));
  switch (step.kind) {
    case StepKind::kReboot:
      text += " x" + std::to_string(step.times);
      break;
    case StepKind::kBoot:
      text += " " + std::string(BootTargetName(step.into));
      break;
    case StepKind::kDelete:
      text += " " + step.pattern;
      break;
    default:
      break;
  }
  if (!step.needs.empty()) text += " [" + AllowedNames(step.needs, ResourceName) + "]";
  if (step.takes.Mean() > 0) text += " takes " + step.takes.ToString();
  std::vector<std::string> when;
  if (step.when.bitlocker) when.push_back(*step.when.bitlocker ? "bitlocker" : "no bitlocker");
  if (step.when.oob_console) when.push_back(*step.when.oob_console ? "console oob" : "no console");
  if (step.when.cloud) when.push_back(*step.when.cloud ? "cloud" : "not cloud");
  if (step.when.on_hypervisor) when.push_back(*step.when.on_hypervisor ? "virtual" : "not virtual");
  if (!step.when.roles.empty()) when.push_back("role " + AllowedNames(step.when.roles, RoleName));
  if (!step.when.groups.empty()) when.push_back("group " + Join(step.when.groups));
  if (!step.when.sites.empty()) when.push_back("site " + Join(step.when.sites));
  if (!when.empty()) text += " when " + Join(when);
  return text;
}

std::string RunbookSummary(const RunbookConfig& r) {
  std::vector<std::string> steps;
  for (const StepConfig& step : r.steps) steps.push_back(StepSummary(step));
  std::string line = "starts " + std::string(RunbookStartName(r.starts)) + ", " +
                     std::to_string(r.steps.size()) + " step(s): ";
  for (size_t i = 0; i < steps.size(); ++i) line += (i > 0 ? "; " : "") + steps[i];
  std::vector<std::string> rules;
  for (const PriorityRule& rule : r.priorities) {
    rules.push_back(rule.first + " before " + Join(rule.then));
  }
  line += "; priorities: " + (rules.empty() ? std::string("none") : Join(rules));
  line += "; parallelism: " +
          (r.parallelism == 0 ? std::string("unlimited") : std::to_string(r.parallelism));
  for (const Escalation& e : r.escalations)
    line += "; on failure, after " + e.after.ToString() + ": " + e.runbook.name;
  return line;
}

}  // namespace

Result<ScenarioConfig> LoadScenario(const std::string& path, const std::string& images_root) {
  return Guarded<ScenarioConfig>(path, [&] { return ReadScenarioFile(path, path, images_root); });
}

Result<ScenarioConfig> Recombine(ScenarioConfig base, const SetupConfig* setup,
                                 const RunbookConfig* runbook) {
  if (setup != nullptr) base.setup = *setup;
  if (runbook != nullptr) base.runbook = *runbook;
  if (base.setup.image != base.image.name) {
    // The images live next to the one the scenario loaded.
    if (base.image.recipe_dir.empty()) {
      return Status::AtLocation(base.setup.image_where,
                                "image '" + base.setup.image + "' of " + SetupLabel(base.setup) +
                                    " is not the scenario's image '" + base.image.name +
                                    "', and the scenario does not say where images live");
    }
    const std::string images_root = fs::path(base.image.recipe_dir).parent_path().string();
    ASSIGN_OR_RETURN(base.image, Guarded<ImageConfig>(images_root, [&] {
                       return ReadImageFile(images_root, base.setup.image, &base.setup.image_where);
                     }));
  }
  RETURN_IF_ERROR(CheckRunbookFitsImage(base.runbook, base.setup, base.image));
  RETURN_IF_ERROR(CheckRunbookFitsSetup(base.runbook, base.setup));
  RETURN_IF_ERROR(CheckRolloutFitsSetup(base.rollout, base.setup));
  RETURN_IF_ERROR(CheckToolsAfterRelease(base.runbook, base));
  RETURN_IF_ERROR(CheckRemediationFitsSetup(base.vendor_remediation, base.setup));
  return base;
}

Result<std::string> FindPlaybook(const ScenarioConfig& scenario, const std::string& kind,
                                 const std::string& name_or_path) {
  if (kind != "runbooks" && kind != "setups") {
    return Status::InvalidArgument("playbook kind '" + kind + "': expected runbooks or setups");
  }
  const std::string singular = kind.substr(0, kind.size() - 1);
  if (name_or_path.empty()) {
    return Status::InvalidArgument("expected a " + singular + " name or path, got ''");
  }
  const fs::path written(name_or_path);
  const bool is_path = name_or_path.find('/') != std::string::npos ||
                       written.extension() == ".yaml" || written.extension() == ".yml";
  std::error_code ec;
  if (is_path) {
    const std::string path = AbsolutePath(name_or_path);
    if (!fs::is_regular_file(path, ec)) {
      return Status::NotFound(singular + " file '" + name_or_path + "' (resolved to " + path +
                              ") does not exist");
    }
    return path;
  }
  if (Status ok = CheckIdentifier(singular + " name", name_or_path); !ok.ok()) {
    return Status::InvalidArgument(ok.message() + "; or give a path to a YAML file");
  }
  const fs::path folder =
      (fs::path(AbsolutePath(scenario.file)).parent_path().parent_path() / kind).lexically_normal();
  const fs::path path = folder / (name_or_path + ".yaml");
  if (fs::is_regular_file(path, ec)) return path.string();
  std::vector<std::string> available;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml") available.push_back(it->path().stem().string());
  }
  std::sort(available.begin(), available.end());
  return Status::NotFound("no " + singular + " named '" + name_or_path + "': looked for " +
                          path.string() +
                          (available.empty() ? "" : "; " + kind + " there: " + Join(available)));
}

namespace {

enum class PlaybookKind { kUnknown, kScenario, kSetup, kRunbook, kImage };

// What kind of playbook `root` is by its top-level keys: the first key only one kind has.
PlaybookKind KindByKeys(const YAML::Node& root) {
  if (!root.IsMap()) return PlaybookKind::kUnknown;
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) continue;
    const std::string& key = entry.first.Scalar();
    if (key == "setup" || key == "runbook" || key == "fault" || key == "rollout" || key == "stop" ||
        key == "backend") {
      return PlaybookKind::kScenario;
    }
    if (key == "groups" || key == "sites" || key == "key_escrow" || key == "services" ||
        key == "snapshots" || key == "pxe") {
      return PlaybookKind::kSetup;
    }
    if (key == "steps" || key == "starts" || key == "priorities" || key == "parallelism") {
      return PlaybookKind::kRunbook;
    }
  }
  return PlaybookKind::kUnknown;
}

// The kind of the file `path`: an image recipe by its name, else by its keys, else by its folder
// (playbooks/scenarios...). A file that does not parse is an error here.
Result<PlaybookKind> DetectPlaybookKind(const std::string& path) {
  const fs::path p(path);
  if (p.filename() == "image.yaml") return PlaybookKind::kImage;
  ASSIGN_OR_RETURN(YAML::Node root, Guarded<YAML::Node>(path, [&] {
                     return ParseFile("playbook", path, path, nullptr);
                   }));
  if (PlaybookKind kind = KindByKeys(root); kind != PlaybookKind::kUnknown) return kind;
  const std::string folder = p.lexically_normal().parent_path().filename().string();
  if (folder == "scenarios") return PlaybookKind::kScenario;
  if (folder == "setups") return PlaybookKind::kSetup;
  if (folder == "runbooks") return PlaybookKind::kRunbook;
  return PlaybookKind::kUnknown;
}

std::string ScenarioSummary(const ScenarioConfig& s) {
  return "scenario '" + s.name + "': setup '" + s.setup.name + "' (" + SetupSummary(s.setup) +
         "), fault " + std::string(FaultKindName(s.fault.kind)) + " released " +
         FormatTimeOfDay(s.rollout.release) + ", reverted " + FormatTimeOfDay(s.rollout.revert) +
         ", runbook '" + s.runbook.name + "' (" + std::to_string(s.runbook.steps.size()) +
         " step(s)), backend " + std::string(BackendKindName(s.backend)) + ", " +
         std::to_string(s.repetitions) + " repetition(s), seed " + std::to_string(s.seed) +
         ", stop after " + FormatDuration(s.stop.max_scenario) + " scenario / " +
         FormatDuration(s.stop.max_wall) + " wall";
}

// Loads `path` as a playbook of `kind` (known); its one-line summary.
Result<std::string> LoadAndSummarize(PlaybookKind kind, const std::string& path,
                                     const std::string& images_root) {
  switch (kind) {
    case PlaybookKind::kScenario: {
      ASSIGN_OR_RETURN(ScenarioConfig s, LoadScenario(path, images_root));
      return ScenarioSummary(s);
    }
    case PlaybookKind::kSetup: {
      ASSIGN_OR_RETURN(SetupConfig s, LoadSetup(path));
      return "setup '" + s.name + "': " + SetupSummary(s) + SetupDetails(s);
    }
    case PlaybookKind::kRunbook: {
      ASSIGN_OR_RETURN(RunbookConfig r, LoadRunbook(path));
      return "runbook '" + r.name + "': " + RunbookSummary(r);
    }
    case PlaybookKind::kImage: {
      const fs::path dir = fs::path(AbsolutePath(path)).parent_path();
      const std::string root = dir.parent_path().string();
      ASSIGN_OR_RETURN(ImageConfig image, LoadImage(root, dir.filename().string()));
      return "image '" + image.name + "' (" + std::string(ImageKindName(image.kind)) +
             "): timing for " + std::to_string(image.timing.size()) + " roles, recovery " +
             AllowedNames(image.recovery, RecoveryPathName);
    }
    case PlaybookKind::kUnknown:
      break;
  }
  return Status::InvalidArgument(
      path +
      ": cannot tell what kind of playbook this is: expected a scenario (keys setup, "
      "runbook, ...), a setup (keys sites, groups), a runbook (key steps) or an image "
      "recipe (a file named image.yaml)");
}

}  // namespace

Status ValidateFile(const std::string& path, const std::string& images_root, std::string* summary) {
  ASSIGN_OR_RETURN(PlaybookKind kind, DetectPlaybookKind(path));
  ASSIGN_OR_RETURN(std::string line, LoadAndSummarize(kind, path, images_root));
  if (summary != nullptr) *summary = line;
  return Status::Ok();
}

}  // namespace chaoslab::config
