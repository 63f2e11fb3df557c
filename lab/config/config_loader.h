// YAML playbooks → config structs (config.h). Strict: unknown keys, wrong types, bad values,
// missing files and cycles are errors naming file:line:column and what was expected. yaml-cpp
// exceptions never escape. Relative paths inside a file are resolved against that file's folder.
#pragma once

#include <map>
#include <string>

#include "lab/config/config.h"

namespace chaoslab::config {

// Every function here is thread-safe (no shared state) and never throws.
//
// Loads a scenario and everything it names (setup, runbook, image recipe under `images_root`).
Result<ScenarioConfig> LoadScenario(const std::string& path, const std::string& images_root);
Result<SetupConfig> LoadSetup(const std::string& path);
Result<RunbookConfig> LoadRunbook(const std::string& path);
// Reads `<images_root>/<name>/image.yaml`.
Result<ImageConfig> LoadImage(const std::string& images_root, const std::string& name);

// Whether `runbook` can run on `setup`, as LoadScenario checks it: every step that applies to some
// host can have its needs met (e.g. usb-stick needs a site with sticks, pxe-server needs `pxe:
// true`, key-escrow needs a BitLocker host to matter, remote-console a host with `console: oob`);
// `when` names existing groups and sites; priority selectors name roles, groups or "key-escrow" and
// form no cycle. Errors carry the location of the step or rule.
Status CheckRunbookFitsSetup(const RunbookConfig& runbook, const SetupConfig& setup);

// Whether `image` supports every step of `runbook` that applies to some host of `setup` (its
// `recovery:` list; StepRecoveryPath). The error is at the step (runbook file:line:column) and
// names the step, the image and what the image supports. LoadScenario and Recombine check it.
Status CheckRunbookFitsImage(const RunbookConfig& runbook, const SetupConfig& setup,
                             const ImageConfig& image);

// Whether the rollout's `pinned` groups exist in `setup`, and CheckStaffingFitsRollout
// (LoadScenario and Recombine check it).
Status CheckRolloutFitsSetup(const RolloutConfig& rollout, const SetupConfig& setup);
// Whether every site's crisis staffing with a fixed `from` time starts no earlier than the
// rollout (the scenario's start); the simulator checks each archetype of a mix with it.
Status CheckStaffingFitsRollout(const RolloutConfig& rollout, const SetupConfig& setup);

// Whether every tool `runbook` (and each runbook it escalates to) uses was published no earlier
// than the scenario's release: a tool made for the incident cannot exist before it. The error is
// at the tool's `available:` (file:line:column). LoadScenario, Recombine and the mix check it.
Status CheckToolsAfterRelease(const RunbookConfig& runbook, const ScenarioConfig& scenario);

// Whether every group a scenario's vendor_remediation opts in is a group of `setup`.
Status CheckRemediationFitsSetup(const VendorRemediationConfig& remediation,
                                 const SetupConfig& setup);

// Priority rank of every group of `setup` under `runbook`: 0 = fixed first; otherwise one more than
// the highest rank of the groups a rule puts before it (the longest chain of "first" groups ahead).
// A selector "others" in `then` means every group `first` does not match. Groups no rule names
// rank 0. Fails like CheckRunbookFitsSetup on unknown selectors and cycles.
Result<std::map<std::string, int>> PriorityRanks(const RunbookConfig& runbook,
                                                 const SetupConfig& setup);

// `base` with its setup and/or runbook replaced (for `compare`), checked as LoadScenario checks.
Result<ScenarioConfig> Recombine(ScenarioConfig base, const SetupConfig* setup,
                                 const RunbookConfig* runbook);

// A playbook named on the command line: a path to a YAML file, or a bare name looked up as
// `<scenario folder>/../<kind>/<name>.yaml` (kind "runbooks" or "setups"). NotFound says where it
// looked.
Result<std::string> FindPlaybook(const ScenarioConfig& scenario, const std::string& kind,
                                 const std::string& name_or_path);

// "04:09" or "04:09:30" → seconds since midnight; "45s", "5m", "1.5h", "2d", "90", "2.5" → seconds.
// Errors say what was expected; they carry no location (the loader adds it).
Result<Seconds> ParseTimeOfDay(const std::string& text);
Result<Seconds> ParseDuration(const std::string& text);
// Seconds since midnight → "04:09" (or "04:09:30" when there are seconds).
std::string FormatTimeOfDay(Seconds t);
// Seconds → the shortest of "20m", "1.5h"... that ParseDuration reads back: whole hours as "2h",
// whole minutes as "5m", else seconds ("90s", "0.5s").
std::string FormatDuration(Seconds s);

// What `chaoslab validate FILE` runs: finds out whether `path` is a scenario, setup, runbook or
// image recipe (a file named image.yaml is an image recipe; otherwise by its top-level keys, then
// by its folder: scenarios/, setups/, runbooks/) and loads it with everything it names. On success,
// if `summary` is not null, it receives one line such as "scenario 'channel-291': 6 hosts in 4
// groups...".
Status ValidateFile(const std::string& path, const std::string& images_root,
                    std::string* summary = nullptr);

}  // namespace chaoslab::config
