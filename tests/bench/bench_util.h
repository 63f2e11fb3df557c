// Small helpers of chaoslab-bench: statistics, reading guest time from console lines, the boot
// table, and a temporary folder that removes itself. All functions are pure or touch only the
// files they are given; thread-compatible.
#pragma once

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
