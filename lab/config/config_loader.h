// YAML playbooks → config structs (config.h). Strict: unknown keys, wrong types, bad values, missing
// files and cycles are errors naming file:line:column and what was expected. yaml-cpp exceptions never
// escape. Relative paths inside a file are resolved against that file's folder.
#pragma once

#include <string>

#include "lab/config/config.h"

namespace chaoslab::config {

// Loads a scenario and everything it names (setup, runbook, image recipe under `images_root`).
Result<ScenarioConfig> LoadScenario(const std::string& path, const std::string& images_root);
Result<SetupConfig> LoadSetup(const std::string& path);
Result<RunbookConfig> LoadRunbook(const std::string& path);
// Reads `<images_root>/<name>/image.yaml`.
Result<ImageConfig> LoadImage(const std::string& images_root, const std::string& name);

// "04:09" or "04:09:30" → seconds since midnight; "45s", "5m", "2h", "90" → seconds.
Result<Seconds> ParseTimeOfDay(const std::string& text);
Result<Seconds> ParseDuration(const std::string& text);

}  // namespace chaoslab::config
