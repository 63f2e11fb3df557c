// Internal to lab/config: what the loader of one playbook kind uses of another's (the scenario
// loader reads the setup, runbook and image files a scenario names; the runbook and rollout checks
// name a setup's groups and sites). Not an API: code outside lab/config includes config_loader.h.
#pragma once

#include <string>
#include <vector>

#include "lab/config/config.h"
#include "lab/config/yaml_file.h"

namespace chaoslab::config::internal {

// Each reads one playbook file, `path` (`as_written` is how it was written, for messages); if
// `named_at` is not null, it is where another file named this one. LoadRunbook, LoadSetup and
// LoadImage are these run under Guarded.
Result<RunbookConfig> ReadRunbookFile(const std::string& as_written, const std::string& path,
                                      const SourceLocation* named_at);  // runbook_loader.cc
Result<SetupConfig> ReadSetupFile(const std::string& as_written, const std::string& path,
                                  const SourceLocation* named_at);  // setup_loader.cc
// Reads `<images_root>/<name>/image.yaml`.
Result<ImageConfig> ReadImageFile(const std::string& images_root, const std::string& name,
                                  const SourceLocation* named_at);  // image_loader.cc

// incident_tools.cc: `date: 2024-07-19`; a runbook's `tools:`; each step's `tool:` checked
// against them (the step gets the tool's date); a scenario's `vendor_remediation:` (its
// `available` a time of day on day 0 or a UTC moment, never before the revert).
Result<ScenarioDate> ReadDate(const YamlFile& file, const YAML::Node& node);
Result<std::vector<ToolConfig>> ReadTools(const YamlFile& file, const YAML::Node& node);
Status ResolveStepTools(const YamlFile& file, RunbookConfig* runbook);
Result<VendorRemediationConfig> ReadVendorRemediation(const YamlFile& file, const YAML::Node& node,
                                                      const ScenarioDate& date,
                                                      const RolloutConfig& rollout);

// For messages (setup_loader.cc): the names of sites and groups, and "setup 'x' (/path/x.yaml)".
std::vector<std::string> SiteNames(const std::vector<SiteConfig>& sites);
std::vector<std::string> GroupNames(const std::vector<GroupConfig>& groups);
std::string SetupLabel(const SetupConfig& setup);

// A backlog's rate (`grows`, `works_off`): hours of work per hour, more than 0 and at most 1000
// (setup_loader.cc; also what config_path.h sets).
Result<double> ReadBacklogRate(const YamlFile& file, const YAML::Node& node,
                               const std::string& what);

}  // namespace chaoslab::config::internal
