// `chaoslab run`: everything between a scenario file and a results table — load and check the
// playbooks, find the built guest image, start the content server, prepare the disks, start the
// fleet, run the engine, report, and clean up whatever happens.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "lab/cli/lab_paths.h"
#include "lab/common/status.h"
#include "lab/config/config.h"

namespace chaoslab {

struct RunRequest {
  std::string scenario_path;
  bool json = false;
  bool quiet = false;
  std::optional<uint64_t> seed;
  std::optional<double> max_wall_s;
  std::string stats_json;  // when set: the lab's own figures (latency, CPU) for `make bench`
};

// Exit codes: 0 finished, 1 the run failed, 2 bad input (nothing started), 130 interrupted.
int RunCommand(const LabPaths& paths, const RunRequest& request, const std::atomic<bool>* cancel,
               std::ostream& out, std::ostream& err);

// The folder of the built guest image `name` (kernel + initramfs), or FailedPrecondition saying how
// to build it.
struct GuestImage {
  std::string dir, kernel, initrd;
};
Result<GuestImage> FindBuiltImage(const LabPaths& paths, const config::ImageConfig& image);
// Builds (or finds cached) the guest image; progress goes to `err`.
Result<GuestImage> BuildImage(const LabPaths& paths, const std::string& name, std::ostream& err);

}  // namespace chaoslab
