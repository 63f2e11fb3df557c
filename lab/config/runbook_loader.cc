// Runbooks: steps with their conditions, needs and durations, priority rules (their cycle
// checks on dependency_graph.h); LoadRunbook. And a runbook on a setup or an image:
// CheckRunbookFitsSetup, CheckRunbookFitsImage, PriorityRanks.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/dependency_graph.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

namespace {

// --- Runbooks -----------------------------------------------------------------------------------

// A name or a list of names ("role: server" or "role: [server, kiosk]"), each with its node.
Result<std::vector<YAML::Node>> ReadOneOrMore(const YamlFile& file, const YAML::Node& node,
                                              const std::string& what) {
  std::vector<YAML::Node> out;
  if (node.IsScalar()) {
    out.push_back(node);
  } else if (node.IsSequence() && node.size() > 0) {
    for (const YAML::Node& item : node) out.push_back(item);
  } else {
    return file.Error(
        node, what + ": expected a name or a non-empty list of names, got " + Describe(node));
  }
  for (const YAML::Node& item : out) RETURN_IF_ERROR(ReadIdentifier(file, item, what).status());
  return out;
}

// The host facts a step can depend on, in the order messages list them.
const std::vector<std::string_view>& ConditionKeys() {
  static const auto* keys = new std::vector<std::string_view>{
      "bitlocker", "role", "console", "cloud", "virtual", "group", "site"};
  return *keys;
}

Result<Conditions> ReadConditions(const YamlFile& file, const YAML::Node& node) {
  Conditions when;
  when.where = file.At(node);
  // A dedicated message for unknown keys: they are facts the lab does not know about hosts.
  if (node.IsMap()) {
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;  // Fields reports it
      const std::string& key = entry.first.Scalar();
      bool known = false;
      for (std::string_view k : ConditionKeys()) known = known || k == key;
      if (!known) {
        std::vector<std::string> names(ConditionKeys().begin(), ConditionKeys().end());
        return file.Error(entry.first, "when: unknown host fact '" + key +
                                           "'; a step can depend on: " + Join(names));
      }
    }
  }
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "when (host facts)", ConditionKeys()));
  if (fields.Has("bitlocker")) {
    ASSIGN_OR_RETURN(when.bitlocker, ReadBool(file, fields.Get("bitlocker"), "when bitlocker"));
  }
  if (fields.Has("console")) {
    ASSIGN_OR_RETURN(when.oob_console, ReadConsole(file, fields.Get("console")));
  }
  if (fields.Has("cloud")) {
    ASSIGN_OR_RETURN(when.cloud, ReadBool(file, fields.Get("cloud"), "when cloud"));
  }
  if (fields.Has("virtual")) {
    ASSIGN_OR_RETURN(when.on_hypervisor, ReadBool(file, fields.Get("virtual"), "when virtual"));
  }
  if (fields.Has("role")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> roles,
                     ReadOneOrMore(file, fields.Get("role"), "when role"));
    for (const YAML::Node& r : roles) {
      ASSIGN_OR_RETURN(Role role, ReadEnum(file, r, "role", ParseRole, AllRoles(), RoleName));
      when.roles.push_back(role);
    }
  }
  if (fields.Has("group")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> groups,
                     ReadOneOrMore(file, fields.Get("group"), "when group"));
    for (const YAML::Node& g : groups) when.groups.push_back(g.Scalar());
  }
  if (fields.Has("site")) {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> sites,
                     ReadOneOrMore(file, fields.Get("site"), "when site"));
    for (const YAML::Node& s : sites) when.sites.push_back(s.Scalar());
  }
  return when;
}

Result<std::vector<Resource>> ReadNeeds(const YamlFile& file, const YAML::Node& node) {
  const std::string allowed = AllowedNames(AllResources(), ResourceName);
  if (!node.IsSequence() && !node.IsScalar()) {
    return file.Error(
        node, "needs: expected a list of resources (" + allowed + "), got " + Describe(node));
  }
  std::vector<YAML::Node> items;
  if (node.IsScalar()) {
    items.push_back(node);
  } else {
    for (const YAML::Node& item : node) items.push_back(item);
  }
  std::vector<Resource> needs;
  for (const YAML::Node& item : items) {
    ASSIGN_OR_RETURN(Resource r,
                     ReadEnum(file, item, "resource", ParseResource, AllResources(), ResourceName));
    if (std::find(needs.begin(), needs.end(), r) != needs.end()) {
      return file.Error(item, "needs: '" + std::string(ResourceName(r)) + "' is listed twice");
    }
    needs.push_back(r);
  }
  return needs;
}

// File names the delete step may type at the guest's console: a glob within the sensor's content
// folder. Plain characters only, so nothing written here can become a path, an option or a second
// command on the console.
Status CheckPattern(const YamlFile& file, const YAML::Node& node, const std::string& pattern) {
  bool ok = !pattern.empty() && pattern.size() <= 128 && pattern[0] != '-' && pattern[0] != '.';
  for (char c : pattern) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '*' || c == '?');
  }
  if (ok) return Status::Ok();
  return file.Error(node, "delete pattern '" + pattern +
                              "': expected a file name in the sensor's content folder, made of "
                              "letters, digits, '-', '_', '.', '*' and '?' (not starting with '-' "
                              "or '.'), such as \"C-00000291*.sys\"");
}

// Keys every step body may have.
constexpr std::string_view kCommonStepKeys[] = {"when", "needs", "takes", "tool"};

// The keys a step body may have: its kind's, then the common ones.
std::vector<std::string_view> StepKeys(StepKind kind) {
  std::vector<std::string_view> keys;
  switch (kind) {
    case StepKind::kReboot:
      keys.push_back("times");
      break;
    case StepKind::kBoot:
      keys.push_back("into");
      break;
    case StepKind::kDelete:
      keys.push_back("pattern");
      break;
    case StepKind::kUnlockBitlocker:
    case StepKind::kRestart:
    case StepKind::kRescueDisk:
    case StepKind::kHypervisorRepair:
    case StepKind::kRevertSnapshot:
    case StepKind::kReimage:
      break;
  }
  for (std::string_view common : kCommonStepKeys) keys.push_back(common);
  return keys;
}

// Reads the kind-specific value (times, into or pattern) from `node`.
Status ReadStepValue(const YamlFile& file, const std::string& key, const YAML::Node& node,
                     StepConfig& step) {
  if (key == "times") {
    ASSIGN_OR_RETURN(step.times, ReadInt(file, node, "times", 1, 1000));
  } else if (key == "into") {
    ASSIGN_OR_RETURN(step.into, ReadEnum(file, node, "boot target", ParseBootTarget,
                                         AllBootTargets(), BootTargetName));
  } else if (key == "pattern") {
    ASSIGN_OR_RETURN(step.pattern, ReadString(file, node, "pattern"));
    RETURN_IF_ERROR(CheckPattern(file, node, step.pattern));
  }
  return Status::Ok();
}

void AddNeed(StepConfig& step, Resource r) {
  if (std::find(step.needs.begin(), step.needs.end(), r) == step.needs.end()) {
    step.needs.push_back(r);
  }
}

// hypervisor-repair is the organisation's script on its own hypervisors: it applies to virtual
// hosts only (an implicit `when: {virtual: true}`), needs a hypervisor repair slot and, for
// encrypted disks, the escrowed key (which the script fetches itself), and no person at all.
// The `hypervisor` need belongs to this step alone.
Status CheckHypervisorStep(const YamlFile& file, const YAML::Node& node, const YAML::Node& body,
                           StepConfig& step) {
  const YAML::Node needs = body.IsMap() ? body["needs"] : YAML::Node();
  const YAML::Node at = needs ? needs : node;
  if (step.kind != StepKind::kHypervisorRepair) {
    if (std::find(step.needs.begin(), step.needs.end(), Resource::kHypervisor) != step.needs.end())
      return file.Error(at, "needs: 'hypervisor' is the need of hypervisor-repair steps only");
    return Status::Ok();
  }
  for (Resource r : step.needs) {
    if (r == Resource::kHypervisor || r == Resource::kKeyEscrow) continue;
    return file.Error(at, "hypervisor-repair: the repair script works without " +
                              std::string(ResourceName(r)) +
                              "; it needs only hypervisor and key-escrow (added when not written)");
  }
  if (step.when.on_hypervisor && !*step.when.on_hypervisor) {
    return file.Error(body["when"] ? body["when"] : node,
                      "hypervisor-repair applies to virtual hosts only; when: {virtual: false} "
                      "leaves it no host");
  }
  step.when.on_hypervisor = true;
  AddNeed(step, Resource::kHypervisor);
  AddNeed(step, Resource::kKeyEscrow);
  return Status::Ok();
}

Result<StepConfig> ReadStep(const YamlFile& file, const YAML::Node& node, size_t index) {
  const std::string what = "step " + std::to_string(index + 1);
  const std::string kinds = AllowedNames(AllStepKinds(), StepKindName);
  StepConfig step;
  step.where = file.At(node);
  YAML::Node key;
  YAML::Node body;  // null: the step's defaults
  if (node.IsScalar()) {
    key = node;  // "- restart"
  } else if (node.IsMap() && node.size() == 1) {
    key = node.begin()->first;
    body = node.begin()->second;
  } else {
    return file.Error(node,
                      what + ": expected a step kind (" + kinds +
                          ") or a map with exactly one key, the step kind, e.g. '- restart' or "
                          "'- reboot: {times: 3}'; got " +
                          (node.IsMap() ? "a map with " + std::to_string(node.size()) + " keys"
                                        : Describe(node)));
  }
  ASSIGN_OR_RETURN(step.kind,
                   ReadEnum(file, key, "step kind", ParseStepKind, AllStepKinds(), StepKindName));
  const std::string step_what = "the " + std::string(StepKindName(step.kind)) + " step";
  const std::vector<std::string_view> keys = StepKeys(step.kind);
  if (body.IsNull()) {
    // "- reboot:" or "- restart": every default.
  } else if (body.IsScalar()) {
    // Short forms: "- reboot: 15", "- boot: safe-mode", "- delete: C-00000291*.sys".
    if (keys.size() == std::size(kCommonStepKeys)) {
      return file.Error(body, step_what + ": expected nothing or a map with keys " +
                                  Join(std::vector<std::string>(keys.begin(), keys.end())) +
                                  ", got " + Describe(body));
    }
    RETURN_IF_ERROR(ReadStepValue(file, std::string(keys.front()), body, step));
  } else {
    ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, body, step_what, keys));
    for (std::string_view k : keys) {
      const std::string name(k);
      if (!fields.Has(name)) continue;
      const YAML::Node value = fields.Get(name);
      if (name == "when") {
        ASSIGN_OR_RETURN(step.when, ReadConditions(file, value));
      } else if (name == "needs") {
        ASSIGN_OR_RETURN(step.needs, ReadNeeds(file, value));
      } else if (name == "takes") {
        ASSIGN_OR_RETURN(step.takes, ReadDistribution(file, value, "takes"));
      } else if (name == "tool") {
        ASSIGN_OR_RETURN(step.tool, ReadIdentifier(file, value, "tool"));
      } else {
        RETURN_IF_ERROR(ReadStepValue(file, name, value, step));
      }
    }
  }
  if (step.when.where.file.empty()) step.when.where = step.where;
  // Needs a step has whatever the runbook says: the stick to boot from, the server to boot from,
  // the escrow that holds the recovery password.
  if (step.kind == StepKind::kBoot && step.into == BootTarget::kUsb) {
    AddNeed(step, Resource::kUsbStick);
  }
  if (step.kind == StepKind::kBoot && step.into == BootTarget::kPxe) {
    AddNeed(step, Resource::kPxeServer);
  }
  if (step.kind == StepKind::kUnlockBitlocker) AddNeed(step, Resource::kKeyEscrow);
  RETURN_IF_ERROR(CheckHypervisorStep(file, node, body, step));
  return step;
}

// How a cycle of priority rules is told.
CycleWording PriorityCycle(const std::string& noun) {
  return {"priorities form a cycle", noun, "before", "rule",
          "expected an order in which something comes first"};
}

constexpr char kOthers[] = "others";
constexpr char kKeyEscrowSelector[] = "key-escrow";

Result<PriorityRule> ReadPriorityRule(const YamlFile& file, const YAML::Node& node) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "a priority rule", {"first", "then"}));
  PriorityRule rule;
  rule.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node first, fields.Require("first"));
  ASSIGN_OR_RETURN(rule.first, ReadIdentifier(file, first, "first"));
  if (rule.first == kOthers) {
    return file.Error(first,
                      "first: 'others' may only appear in then; expected a role, a group "
                      "or key-escrow");
  }
  ASSIGN_OR_RETURN(YAML::Node then, fields.Require("then"));
  ASSIGN_OR_RETURN(std::vector<YAML::Node> then_nodes, ReadOneOrMore(file, then, "then"));
  for (const YAML::Node& t : then_nodes) {
    if (t.Scalar() == rule.first) {
      return file.Error(t, "then: '" + t.Scalar() + "' cannot come after itself");
    }
    rule.then.push_back(t.Scalar());
  }
  return rule;
}

// Cycles among the selectors as written (before any setup gives them groups).
Status CheckSelectorCycles(const std::vector<PriorityRule>& rules) {
  std::vector<std::string> names;
  auto index = [&](const std::string& name) {
    auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) return static_cast<size_t>(it - names.begin());
    names.push_back(name);
    return names.size() - 1;
  };
  std::vector<std::tuple<size_t, size_t, SourceLocation>> edges;
  for (const PriorityRule& rule : rules) {
    const size_t first = index(rule.first);  // nodes numbered in the order they are written
    for (const std::string& t : rule.then) {
      if (t == kOthers) continue;
      const size_t then = index(t);
      edges.emplace_back(first, then, rule.where);
    }
  }
  DependencyGraph graph(names);
  for (const auto& [from, to, where] : edges) graph.Add(from, to, where);
  return graph.CheckAcyclic(PriorityCycle(""));
}

Result<RunbookConfig> ReadRunbookChain(const std::string& as_written, const std::string& path,
                                       const SourceLocation* named_at,
                                       std::vector<std::string>* chain);

// `on_failure: {runbook: FILE, after: DISTRIBUTION}`: the runbook it names (and the ones that one
// escalates to) become `runbook.escalations`. `chain`: the files from the first runbook to this
// one, for cycles and depth.
Status ReadOnFailure(const YamlFile& file, const YAML::Node& node, RunbookConfig* runbook,
                     std::vector<std::string>* chain) {
  ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, node, "on_failure", {"runbook", "after"}));
  Escalation next;
  next.where = file.At(node);
  ASSIGN_OR_RETURN(YAML::Node runbook_node, fields.Require("runbook"));
  ASSIGN_OR_RETURN(std::string written, ReadName(file, runbook_node, "on_failure runbook"));
  ASSIGN_OR_RETURN(YAML::Node after, fields.Require("after"));
  ASSIGN_OR_RETURN(next.after, ReadDistribution(file, after, "on_failure after"));
  const std::string target = AbsolutePath(file.Resolve(written));
  if (std::find(chain->begin(), chain->end(), target) != chain->end()) {
    std::string text;
    for (const std::string& f : *chain) text += f + " -> ";
    return file.Error(runbook_node, "on_failure: runbooks escalate in a cycle: " + text + target +
                                        "; expected a chain that ends");
  }
  if (static_cast<int>(chain->size()) > kMaxEscalations) {
    return file.Error(runbook_node, "on_failure: more than " + std::to_string(kMaxEscalations) +
                                        " runbooks after the first in one escalation chain (from " +
                                        chain->front() + "); expected a shorter chain");
  }
  const SourceLocation named_at = file.At(runbook_node);
  ASSIGN_OR_RETURN(next.runbook,
                   ReadRunbookChain(written, file.Resolve(written), &named_at, chain));
  std::vector<Escalation> later = std::move(next.runbook.escalations);
  next.runbook.escalations.clear();
  runbook->escalations.push_back(std::move(next));
  for (Escalation& e : later) runbook->escalations.push_back(std::move(e));
  return Status::Ok();
}

Result<RunbookConfig> ReadRunbookChain(const std::string& as_written, const std::string& path,
                                       const SourceLocation* named_at,
                                       std::vector<std::string>* chain) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseFile("runbook", as_written, path, named_at));
  YamlFile file(path);
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, root, "a runbook",
                                {"name", "description", "starts", "steps", "priorities",
                                 "parallelism", "on_failure", "tools"}));
  RunbookConfig runbook;
  runbook.file = AbsolutePath(path);
  runbook.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node name, fields.Require("name"));
  ASSIGN_OR_RETURN(runbook.name, ReadIdentifier(file, name, "runbook name"));
  if (fields.Has("description")) {
    ASSIGN_OR_RETURN(runbook.description,
                     ReadString(file, fields.Get("description"), "description"));
  }
  if (fields.Has("starts")) {
    ASSIGN_OR_RETURN(runbook.starts,
                     ReadEnum(file, fields.Get("starts"), "starts", ParseRunbookStart,
                              AllRunbookStarts(), RunbookStartName));
  }
  if (fields.Has("tools")) {
    ASSIGN_OR_RETURN(runbook.tools, ReadTools(file, fields.Get("tools")));
  }
  ASSIGN_OR_RETURN(YAML::Node steps, fields.Require("steps"));
  RETURN_IF_ERROR(ExpectNonEmptyList(file, steps, "steps"));
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSIGN_OR_RETURN(StepConfig step, ReadStep(file, steps[i], i));
    runbook.steps.push_back(step);
  }
  RETURN_IF_ERROR(ResolveStepTools(file, &runbook));
  if (fields.Has("priorities")) {
    const YAML::Node priorities = fields.Get("priorities");
    RETURN_IF_ERROR(ExpectNonEmptyList(file, priorities, "priorities"));
    for (const YAML::Node& node : priorities) {
      ASSIGN_OR_RETURN(PriorityRule rule, ReadPriorityRule(file, node));
      runbook.priorities.push_back(rule);
    }
    RETURN_IF_ERROR(CheckSelectorCycles(runbook.priorities));
  }
  if (fields.Has("parallelism")) {
    ASSIGN_OR_RETURN(runbook.parallelism,
                     ReadInt(file, fields.Get("parallelism"), "parallelism", 0, 100000000));
  }
  if (fields.Has("on_failure")) {
    chain->push_back(runbook.file);
    RETURN_IF_ERROR(ReadOnFailure(file, fields.Get("on_failure"), &runbook, chain));
    chain->pop_back();
  }
  return runbook;
}

}  // namespace

namespace internal {

Result<RunbookConfig> ReadRunbookFile(const std::string& as_written, const std::string& path,
                                      const SourceLocation* named_at) {
  std::vector<std::string> chain;
  return ReadRunbookChain(as_written, path, named_at, &chain);
}

}  // namespace internal

namespace {

// --- A runbook on a setup -----------------------------------------------------------------------

const GroupConfig* FindGroup(const SetupConfig& setup, const std::string& name) {
  for (const GroupConfig& g : setup.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

const SiteConfig* FindSite(const SetupConfig& setup, const std::string& name) {
  for (const SiteConfig& s : setup.sites) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// "step 2 (boot usb)" for messages.
std::string StepLabel(const StepConfig& step, size_t index) {
  std::string label =
      "step " + std::to_string(index + 1) + " (" + std::string(StepKindName(step.kind));
  if (step.kind == StepKind::kBoot) label += " " + std::string(BootTargetName(step.into));
  return label + ")";
}

// Whether the hosts of `group` can ever have `need` met in `setup`.
bool CanMeet(Resource need, const GroupConfig& group, const SetupConfig& setup) {
  const SiteConfig* site = FindSite(setup, group.site);
  const int technicians = site == nullptr ? 0 : site->technicians;
  switch (need) {
    case Resource::kTechnician:
      return technicians > 0;
    case Resource::kRemoteConsole:
      return group.oob_console && technicians > 0;
    case Resource::kUsbStick:
      return site != nullptr && site->usb_sticks > 0;
    case Resource::kKeyEscrow:
      // Always there in the end: an external escrow stays up, a hosted one answers once one of its
      // hosts is fixed (how long that takes is what runs measure). Hosts without BitLocker do not
      // wait for it at all.
      return true;
    case Resource::kPxeServer:
      return setup.pxe;
    case Resource::kHypervisor:
      return group.on_hypervisor && setup.hypervisor.enabled;
  }
  return false;
}

// Why no host of `groups` can have `need` met (for the error message).
std::string WhyNot(Resource need, const std::vector<const GroupConfig*>& groups) {
  std::vector<std::string> sites;
  std::vector<std::string> names;
  bool any_oob = false;
  for (const GroupConfig* g : groups) {
    if (std::find(sites.begin(), sites.end(), g->site) == sites.end()) sites.push_back(g->site);
    names.push_back(g->name);
    any_oob = any_oob || g->oob_console;
  }
  switch (need) {
    case Resource::kTechnician:
      return "no technicians at the sites of its hosts (" + Join(sites) + ")";
    case Resource::kRemoteConsole:
      if (!any_oob) return "none of its groups (" + Join(names) + ") has console: oob";
      return "the sites of its groups with console: oob have no technicians to work the console";
    case Resource::kUsbStick:
      return "no usb_sticks at the sites of its hosts (" + Join(sites) + ")";
    case Resource::kPxeServer:
      return "the setup has no network boot (pxe: true is not set)";
    case Resource::kHypervisor:
      return "the setup has no hypervisor: {repairs_at_once: N, script_ready: ...}";
    case Resource::kKeyEscrow:
      break;
  }
  return "it cannot be met";
}

// The groups a priority selector stands for, or an error naming what selectors can be.
Result<std::vector<size_t>> SelectorGroups(const std::string& selector, const PriorityRule& rule,
                                           const SetupConfig& setup) {
  std::vector<size_t> out;
  const std::optional<Role> role = ParseRole(selector);
  bool known = role.has_value() || selector == kKeyEscrowSelector;
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    const GroupConfig& g = setup.groups[i];
    const bool match = g.name == selector || (role && g.role == *role) ||
                       (selector == kKeyEscrowSelector && g.name == setup.key_escrow.hosted_on);
    known = known || g.name == selector;
    if (match) out.push_back(i);
  }
  if (!known) {
    return Status::AtLocation(
        rule.where, "priority rule names unknown selector '" + selector + "'; expected a role (" +
                        AllowedNames(AllRoles(), RoleName) + "), a group of " + SetupLabel(setup) +
                        " (" + Join(GroupNames(setup.groups)) + "), key-escrow, or others in then");
  }
  return out;
}

Result<DependencyGraph> GroupPriorityGraph(const RunbookConfig& runbook, const SetupConfig& setup) {
  DependencyGraph graph(GroupNames(setup.groups));
  for (const PriorityRule& rule : runbook.priorities) {
    ASSIGN_OR_RETURN(std::vector<size_t> first, SelectorGroups(rule.first, rule, setup));
    for (const std::string& t : rule.then) {
      std::vector<size_t> then;
      if (t == kOthers) {
        for (size_t i = 0; i < setup.groups.size(); ++i) {
          if (std::find(first.begin(), first.end(), i) == first.end()) then.push_back(i);
        }
      } else {
        ASSIGN_OR_RETURN(then, SelectorGroups(t, rule, setup));
      }
      for (size_t f : first) {
        for (size_t x : then) {
          if (f == x) {
            return Status::AtLocation(
                rule.where, "priorities form a cycle: group '" + setup.groups[f].name +
                                "' matches both first (" + rule.first + ") and then (" + t +
                                ") of this rule in " + SetupLabel(setup));
          }
          graph.Add(f, x, rule.where);
        }
      }
    }
  }
  RETURN_IF_ERROR(graph.CheckAcyclic(PriorityCycle("group ")));
  return graph;
}

}  // namespace

Result<RunbookConfig> LoadRunbook(const std::string& path) {
  return Guarded<RunbookConfig>(path, [&] { return ReadRunbookFile(path, path, nullptr); });
}

namespace {

// A fallback's error, as the first runbook's: the same message and where the fallback was named.
Status InFallback(const Status& s, const Escalation& e) {
  if (s.ok()) return s;
  return Status::InvalidArgument(s.message() + " (runbook '" + e.runbook.name +
                                 "' is an on_failure fallback, named at " + e.where.ToString() +
                                 ")");
}

Status CheckOneRunbookFitsSetup(const RunbookConfig& runbook, const SetupConfig& setup);
Status CheckOneRunbookFitsImage(const RunbookConfig& runbook, const SetupConfig& setup,
                                const ImageConfig& image);

}  // namespace

Status CheckRunbookFitsSetup(const RunbookConfig& runbook, const SetupConfig& setup) {
  RETURN_IF_ERROR(CheckOneRunbookFitsSetup(runbook, setup));
  for (const Escalation& e : runbook.escalations)
    RETURN_IF_ERROR(InFallback(CheckOneRunbookFitsSetup(e.runbook, setup), e));
  return Status::Ok();
}

Status CheckRunbookFitsImage(const RunbookConfig& runbook, const SetupConfig& setup,
                             const ImageConfig& image) {
  RETURN_IF_ERROR(CheckOneRunbookFitsImage(runbook, setup, image));
  for (const Escalation& e : runbook.escalations)
    RETURN_IF_ERROR(InFallback(CheckOneRunbookFitsImage(e.runbook, setup, image), e));
  return Status::Ok();
}

namespace {

Status CheckOneRunbookFitsSetup(const RunbookConfig& runbook, const SetupConfig& setup) {
  bool any_applies = false;
  for (size_t i = 0; i < runbook.steps.size(); ++i) {
    const StepConfig& step = runbook.steps[i];
    const std::string label = StepLabel(step, i);
    for (const std::string& g : step.when.groups) {
      if (FindGroup(setup, g) == nullptr) {
        return Status::AtLocation(step.when.where, label + ": when names unknown group '" + g +
                                                       "'; groups of " + SetupLabel(setup) + ": " +
                                                       Join(GroupNames(setup.groups)));
      }
    }
    for (const std::string& s : step.when.sites) {
      if (FindSite(setup, s) == nullptr) {
        return Status::AtLocation(step.when.where, label + ": when names unknown site '" + s +
                                                       "'; sites of " + SetupLabel(setup) + ": " +
                                                       Join(SiteNames(setup.sites)));
      }
    }
    std::vector<const GroupConfig*> applies;
    for (const GroupConfig& g : setup.groups) {
      if (ConditionsMatch(step.when, g)) applies.push_back(&g);
    }
    if (applies.empty()) continue;  // skipped for every host of this setup
    any_applies = true;
    if (step.kind == StepKind::kRevertSnapshot && !setup.snapshots.enabled) {
      return Status::AtLocation(step.where,
                                label + " needs snapshots, but " + SetupLabel(setup) +
                                    " takes none; expected snapshots: {taken_at: \"00:00\"} in "
                                    "the setup");
    }
    for (Resource need : step.needs) {
      bool met = false;
      for (const GroupConfig* g : applies) met = met || CanMeet(need, *g, setup);
      if (!met) {
        return Status::AtLocation(step.where, label + " needs " + std::string(ResourceName(need)) +
                                                  ", which no host it applies to can get in " +
                                                  SetupLabel(setup) + ": " + WhyNot(need, applies));
      }
    }
    bool all_met = false;
    for (const GroupConfig* g : applies) {
      bool ok = true;
      for (Resource need : step.needs) ok = ok && CanMeet(need, *g, setup);
      all_met = all_met || ok;
    }
    if (!all_met) {
      return Status::AtLocation(
          step.where, label + " needs " + AllowedNames(step.needs, ResourceName) +
                          " together, which no host it applies to can get in " + SetupLabel(setup) +
                          " (each is at a different site or group)");
    }
  }
  if (!any_applies) {
    return Status::AtLocation(
        runbook.where, "runbook '" + runbook.name + "' does nothing on " + SetupLabel(setup) +
                           ": the when conditions of its steps match none of its groups (" +
                           Join(GroupNames(setup.groups)) + ")");
  }
  return PriorityRanks(runbook, setup).status();
}

Status CheckOneRunbookFitsImage(const RunbookConfig& runbook, const SetupConfig& setup,
                                const ImageConfig& image) {
  for (size_t i = 0; i < runbook.steps.size(); ++i) {
    const StepConfig& step = runbook.steps[i];
    const std::optional<RecoveryPath> path = StepRecoveryPath(step.kind, step.into);
    if (!path || ImageSupports(image, *path)) continue;
    bool applies = false;
    for (const GroupConfig& g : setup.groups) applies = applies || ConditionsMatch(step.when, g);
    if (!applies) continue;  // skipped for every host of this setup: never asked of the image
    return Status::AtLocation(
        step.where,
        StepLabel(step, i) + " of runbook '" + runbook.name + "' needs recovery path " +
            std::string(RecoveryPathName(*path)) + ", which image '" + image.name + "' (kind " +
            std::string(ImageKindName(image.kind)) + ", " + image.file +
            ") does not support; it supports: " + AllowedNames(image.recovery, RecoveryPathName) +
            " (its recovery: list); pick a runbook without this step or another image");
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, int>> PriorityRanks(const RunbookConfig& runbook,
                                                 const SetupConfig& setup) {
  ASSIGN_OR_RETURN(DependencyGraph graph, GroupPriorityGraph(runbook, setup));
  const std::vector<int> ranks = graph.Ranks();
  std::map<std::string, int> out;
  for (size_t i = 0; i < setup.groups.size(); ++i) out[setup.groups[i].name] = ranks[i];
  return out;
}

}  // namespace chaoslab::config
