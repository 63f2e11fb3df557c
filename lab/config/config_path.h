// One parameter of a loaded scenario, named by a path: what `chaoslab sweep --set PATH=v1,v2`
// varies
// ("what if we had two more technicians?") and what a ranged assumption draws. The values are read
// by the same parsers the YAML loaders use (yaml_file.h: durations "2h", distributions "uniform(5m,
// 20m)" or "{uniform: [5m, 20m]}", enum spellings), and after a change the scenario is checked as
// the loaders check it, so a changed scenario is never one a playbook could not have said.
//
// Path syntax: dot-separated keys as in the YAML, with a site or group picked by name in brackets
// and a runbook step by its 0-based index:
//
//   seed                                 non-negative integer
//   race_window_ms                       integer, 1 to 60000
//   stop.max_scenario                    duration > 0 ("36h")
//   rollout.policy                       all-at-once | rings (rings: the scenario must have rings;
//                                        all-at-once drops its rings and health gate)
//   rollout.start | .release | .revert   time of day ("05:27"); start <= release <= revert
//   runbook.parallelism                  integer >= 0 (0: as many as resources allow)
//   runbook.steps[<i>].takes             distribution (the step's human part)
//   runbook.steps[<i>].times             integer >= 1 (a reboot step's attempts)
//   setup.pxe                            true | false
//   setup.key_escrow.hosted_on           external | <group>
//   setup.key_escrow.lookup              distribution
//   setup.sites[<site>].technicians      integer >= 0
//   setup.sites[<site>].usb_sticks       integer >= 0
//   setup.sites[<site>].travel           distribution
//   setup.groups[<group>].count          integer >= 1
//   setup.groups[<group>].bitlocker      true | false
//   setup.groups[<group>].oob_console    true | false (YAML `console: oob|none`; both spellings)
//   setup.groups[<group>].network        wired | wifi | vpn | offline (online_in_window follows,
//                                        as when the YAML does not write it)
//   setup.groups[<group>].sensor         7.10 | 7.11 | 7.11-fixed
//   setup.services[<service>].backlog.grows | .works_off
//                                        hours of work per hour, (0, 1000] (a service with a
//                                        backlog)
//   setup.services[<service>].backlog.cap
//                                        duration > 0, or none (no limit)
//
// Distributions: "5m" (constant), "uniform(5m, 20m)", "triangular(3m, 5m, 20m)",
// "lognormal(10m, 30m)" (median, p90; also "lognormal(median 10m, p90 30m)", what GetByPath
// prints), or the YAML flow forms "{uniform: [5m, 20m]}".
//
// Thread-safe (no shared state); never throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lab/config/config.h"

namespace chaoslab::config {

// Sets the parameter `path` of `scenario` to `value` and checks the whole scenario again
// (ValidateScenario). Errors (InvalidArgument) start with the path: a path that names no parameter
// (the message lists the settable ones), a site, group or step that the scenario does not have (it
// lists the ones it has), a value of the wrong type or range (what was expected), or a scenario the
// change made inconsistent (e.g. a runbook step needing USB sticks no site has any more). On error
// `scenario` may be changed: set on a copy when the old one must survive. On success the path and
// the value as GetByPath prints it are appended to `scenario->overrides`.
Status SetByPath(ScenarioConfig* scenario, std::string_view path, std::string_view value);

// The parameter's value in the spelling SetByPath reads ("4", "true", "uniform(1m, 3m)", "05:27",
// "external"). Errors as SetByPath's for paths.
Result<std::string> GetByPath(const ScenarioConfig& scenario, std::string_view path);

// The settable paths in the syntax above, with `<site>`, `<group>` and `<i>` as placeholders, and
// what each takes ("integer >= 0"): for help texts and messages.
struct PathInfo {
  std::string pattern;
  std::string takes;
};
const std::vector<PathInfo>& SettablePaths();

// The loaders' checks of what a path can change, on a scenario already loaded: service needs
// within their groups' counts, host names within the identifier rule, offline groups not online,
// the rollout's times in order and its policy's rings, then CheckRunbookFitsImage,
// CheckRunbookFitsSetup and CheckRolloutFitsSetup.
Status ValidateScenario(const ScenarioConfig& scenario);

}  // namespace chaoslab::config
