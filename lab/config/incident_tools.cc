// What appeared during the incident: dates and moments, a runbook's `tools:` (a step cannot use a
// tool before it was published) and the vendor's cloud remediation of a scenario.
#include <algorithm>
#include <string>
#include <vector>

#include "lab/config/config_loader.h"
#include "lab/config/loader_internal.h"
#include "lab/config/yaml_file.h"
#include "lab/config/yaml_keys.h"

namespace chaoslab::config {

using namespace internal;  // NOLINT: what the loaders share (yaml_file.h, loader_internal.h)

namespace {

// "2024-07-19" → the date; the message says what is wrong.
Result<ScenarioDate> ParseDate(const std::string& text) {
  const bool shape = text.size() == 10 && text[4] == '-' && text[7] == '-' &&
                     std::all_of(text.begin(), text.end(),
                                 [](char c) { return c == '-' || (c >= '0' && c <= '9'); });
  if (!shape) {
    return Status::InvalidArgument("expected a date YYYY-MM-DD such as 2024-07-19, got '" + text +
                                   "'");
  }
  ScenarioDate date;
  date.year = std::stoi(text.substr(0, 4));
  date.month = std::stoi(text.substr(5, 2));
  date.day = std::stoi(text.substr(8, 2));
  const bool leap = (date.year % 4 == 0 && date.year % 100 != 0) || date.year % 400 == 0;
  constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int days_in_month =
      date.month >= 1 && date.month <= 12 ? kDays[date.month - 1] + (date.month == 2 && leap) : 0;
  if (date.year < 1970 || date.day < 1 || date.day > days_in_month) {
    return Status::InvalidArgument("'" + text + "' is not a calendar date from 1970 on");
  }
  return date;
}

constexpr const char* kInstantForm =
    "a UTC moment \"YYYY-MM-DDTHH:MMZ\" such as \"2024-07-20T12:00Z\"";

// "2024-07-20T12:00Z" (seconds optional: "T12:00:30Z").
Result<UtcInstant> ReadUtcInstant(const YamlFile& file, const YAML::Node& node,
                                  const std::string& what) {
  if (!node.IsScalar()) {
    return file.Error(node, what + ": expected " + kInstantForm + ", got " + Describe(node));
  }
  const std::string& text = node.Scalar();
  const size_t t = text.find('T');
  if (t != 10 || !text.ends_with('Z')) {
    return file.Error(node, what + ": expected " + kInstantForm + ", got '" + text + "'");
  }
  Result<ScenarioDate> date = ParseDate(text.substr(0, t));
  if (!date.ok()) return file.Error(node, what + ": " + date.status().message());
  Result<Seconds> tod = ParseTimeOfDay(text.substr(t + 1, text.size() - t - 2));
  if (!tod.ok()) return file.Error(node, what + ": " + tod.status().message());
  UtcInstant instant;
  instant.unix_s = date->DaysSinceEpoch() * 86400 + static_cast<int64_t>(*tod);
  instant.where = file.At(node);
  return instant;
}

Status CheckOneRunbookTools(const RunbookConfig& runbook, const ScenarioConfig& scenario) {
  for (const ToolConfig& tool : runbook.tools) {
    const Seconds at = scenario.date.SecondsOf(tool.available);
    if (at >= scenario.rollout.release) continue;
    return Status::AtLocation(tool.available.where,
                              "tool '" + tool.name + "' of runbook '" + runbook.name +
                                  "' is available " + tool.available.ToString() +
                                  ", before the scenario's release (" + scenario.date.ToString() +
                                  " " + FormatTimeOfDay(scenario.rollout.release) + " UTC, " +
                                  scenario.rollout.where.ToString() +
                                  "): a tool made for the incident cannot exist before it");
  }
  return Status::Ok();
}

}  // namespace

namespace internal {

Result<ScenarioDate> ReadDate(const YamlFile& file, const YAML::Node& node) {
  if (!node.IsScalar()) {
    return file.Error(node,
                      "date: expected a date YYYY-MM-DD such as 2024-07-19, got " + Describe(node));
  }
  Result<ScenarioDate> date = ParseDate(node.Scalar());
  if (!date.ok()) return file.Error(node, "date: " + date.status().message());
  date->where = file.At(node);
  return date;
}

// tools: {usb-recovery: {available: "2024-07-20T12:00Z"}}
Result<std::vector<ToolConfig>> ReadTools(const YamlFile& file, const YAML::Node& node) {
  if (!node.IsMap() || node.size() == 0) {
    return file.Error(node, "tools: expected a map of tool names to {available: " +
                                std::string(kInstantForm) + "}, got " + Describe(node));
  }
  RETURN_IF_ERROR(CheckYamlKeys(file.path(), node, "tools", {}));  // plain names, none twice
  std::vector<ToolConfig> tools;
  for (const auto& entry : node) {
    ToolConfig tool;
    tool.where = file.At(entry.first);
    ASSIGN_OR_RETURN(tool.name, ReadIdentifier(file, entry.first, "tool name"));
    const std::string what = "tool " + tool.name;
    ASSIGN_OR_RETURN(Fields fields, Fields::Open(file, entry.second, what, {"available"}));
    ASSIGN_OR_RETURN(YAML::Node available, fields.Require("available"));
    ASSIGN_OR_RETURN(tool.available, ReadUtcInstant(file, available, what + " available"));
    tools.push_back(std::move(tool));
  }
  return tools;
}

Status ResolveStepTools(const YamlFile& file, RunbookConfig* runbook) {
  for (StepConfig& step : runbook->steps) {
    if (step.tool.empty()) continue;
    auto it = std::find_if(runbook->tools.begin(), runbook->tools.end(),
                           [&](const ToolConfig& t) { return t.name == step.tool; });
    if (it == runbook->tools.end()) {
      std::vector<std::string> known;
      for (const ToolConfig& t : runbook->tools) known.push_back(t.name);
      return file.Error(step.where, "the " + std::string(StepKindName(step.kind)) +
                                        " step uses tool '" + step.tool +
                                        "', which the runbook's tools: does not list (" +
                                        (known.empty() ? "it has none" : Join(known)) + ")");
    }
    step.tool_available = it->available;
  }
  return Status::Ok();
}

// vendor_remediation: {available: "2024-07-22T12:00Z" | "05:27", opted_in: 0.2}
Result<VendorRemediationConfig> ReadVendorRemediation(const YamlFile& file, const YAML::Node& node,
                                                      const ScenarioDate& date,
                                                      const RolloutConfig& rollout) {
  ASSIGN_OR_RETURN(Fields fields,
                   Fields::Open(file, node, "vendor_remediation", {"available", "opted_in"}));
  VendorRemediationConfig r;
  r.enabled = true;
  r.where = fields.where();
  ASSIGN_OR_RETURN(YAML::Node available, fields.Require("available"));
  if (available.IsScalar() && available.Scalar().find('T') == std::string::npos) {
    ASSIGN_OR_RETURN(r.available, ReadTimeOfDay(file, available, "vendor_remediation available"));
  } else {
    ASSIGN_OR_RETURN(UtcInstant at,
                     ReadUtcInstant(file, available, "vendor_remediation available"));
    r.available = date.SecondsOf(at);
  }
  // The quarantine names the file the revert withdrew: before the revert the cloud still served
  // it, and the sensor would fetch it again.
  if (r.available < rollout.revert) {
    return file.Error(available, "vendor_remediation available: " + FormatTimeOfDay(r.available) +
                                     " (scenario day 0 = " + date.ToString() +
                                     ") is before the revert (" + FormatTimeOfDay(rollout.revert) +
                                     "): the cloud quarantines only a file it withdrew");
  }
  if (fields.Has("opted_in") && fields.Get("opted_in").IsSequence()) {
    const YAML::Node groups = fields.Get("opted_in");
    RETURN_IF_ERROR(ExpectNonEmptyList(file, groups, "vendor_remediation opted_in"));
    for (const YAML::Node& g : groups) {
      ASSIGN_OR_RETURN(std::string name, ReadIdentifier(file, g, "opted_in group"));
      r.opted_in_groups.push_back(std::move(name));
    }
    r.opted_in_where = file.At(groups);
  } else if (fields.Has("opted_in")) {
    const YAML::Node share = fields.Get("opted_in");
    ASSIGN_OR_RETURN(r.opted_in, ReadNumber(file, share, "vendor_remediation opted_in"));
    if (r.opted_in < 0 || r.opted_in > 1) {
      return file.Error(
          share, "vendor_remediation opted_in: expected a share in [0, 1], got " + share.Scalar());
    }
  }
  return r;
}

}  // namespace internal

Status CheckRemediationFitsSetup(const VendorRemediationConfig& remediation,
                                 const SetupConfig& setup) {
  for (const std::string& g : remediation.opted_in_groups) {
    const bool known = std::any_of(setup.groups.begin(), setup.groups.end(),
                                   [&](const GroupConfig& group) { return group.name == g; });
    if (!known) {
      return Status::AtLocation(remediation.opted_in_where,
                                "vendor_remediation opted_in names unknown group '" + g +
                                    "'; groups of " + SetupLabel(setup) + ": " +
                                    Join(GroupNames(setup.groups)));
    }
  }
  return Status::Ok();
}

Status CheckToolsAfterRelease(const RunbookConfig& runbook, const ScenarioConfig& scenario) {
  RETURN_IF_ERROR(CheckOneRunbookTools(runbook, scenario));
  for (const Escalation& e : runbook.escalations)
    RETURN_IF_ERROR(CheckOneRunbookTools(e.runbook, scenario));
  return Status::Ok();
}

}  // namespace chaoslab::config
