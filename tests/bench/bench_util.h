// Small helpers of chaoslab-bench: statistics, reading guest time from console lines, the boot
// table, and a temporary folder that removes itself. All functions are pure or touch only the
// files they are given; thread-compatible.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::bench {

// The median (mean of the two middle values for an even count). InvalidArgument when empty.
Result<double> Median(std::vector<double> values);

// Nearest-rank percentile, `p` in (0, 100]. InvalidArgument when empty or `p` is out of range.
Result<double> Percentile(std::vector<double> values, double p);

// The seconds of the `uptime=<s>` word of a guest console line (docs/GUEST-PROTOCOL.md), or
// nullopt when the line has none or its value is not a number.
std::optional<double> UptimeField(std::string_view line);

// The markdown table comparing the stock and the purpose-built kernel with issue 3's targets,
// from the merged results (keys as `chaoslab-bench` writes them; missing figures print as "—").
std::string BootTable(const nlohmann::json& results);

// A proportion with its Wilson score interval (95 %).
struct Proportion {
  long long successes = 0;
  long long trials = 0;
  double value = 0, low = 0, high = 0;  // fractions; all 0 when there are no trials
};
Proportion WilsonInterval(long long successes, long long trials);

// The difference a - b of two independent proportions with Newcombe's hybrid score interval
// (95 %, from the two Wilson intervals).
struct Difference {
  double value = 0, low = 0, high = 0;
};
Difference ProportionDifference(const Proportion& a, const Proportion& b);

// Boot attempts and wins per network profile from `chaoslab run --json` output: a host's
// `reboots` are its attempts after the revert; it won once if it was `recovered_by` "reboot".
// Hosts that never rebooted count nothing. InvalidArgument when `run` has no "hosts" array.
Result<std::map<std::string, Proportion>> RaceTally(const nlohmann::json& run);

// A folder made with mkdtemp under `parent` (created if needed) and removed, with everything in
// it, when this object goes away. Not copyable.
class ScratchDir {
 public:
  static Result<ScratchDir> Make(const std::string& parent, const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace chaoslab::bench
