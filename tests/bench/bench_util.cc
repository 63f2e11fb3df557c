#include "tests/bench/bench_util.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace chaoslab::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<double> Number(const json& results, const std::string& key) {
  auto it = results.find(key);
  if (it == results.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string Seconds(std::optional<double> s) {
  if (!s) return "—";
  std::ostringstream out;
  out << std::fixed << std::setprecision(*s >= 100 ? 0 : 2) << *s << " s";
  return out.str();
}

// One row: the figure for both kernels, the target, and whether the purpose-built kernel meets it.
std::string Row(const json& results, const std::string& what, const std::string& key, double target,
                const std::string& target_text) {
  std::optional<double> stock = Number(results, key + "_debian");
  std::optional<double> custom = Number(results, key + "_custom");
  std::string met = !custom ? "—" : (*custom <= target ? "yes" : "no");
  return "| " + what + " | " + Seconds(stock) + " | " + Seconds(custom) + " | " + target_text +
         " | " + met + " |\n";
}

}  // namespace

Result<double> Median(std::vector<double> values) {
  if (values.empty()) return Status::InvalidArgument("median of no values");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Result<double> Percentile(std::vector<double> values, double p) {
  if (values.empty()) return Status::InvalidArgument("percentile of no values");
  if (!(p > 0 && p <= 100)) {
    return Status::InvalidArgument("percentile " + std::to_string(p) + " is not in (0, 100]");
  }
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
  return values[std::max<size_t>(rank, 1) - 1];
}

std::optional<double> UptimeField(std::string_view line) {
  constexpr std::string_view kKey = "uptime=";
  size_t at = 0;
  while ((at = line.find(kKey, at)) != std::string_view::npos) {
    if (at == 0 || line[at - 1] == ' ') break;  // a whole word, not "xuptime="
    at += kKey.size();
  }
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view value = line.substr(at + kKey.size());
  value = value.substr(0, value.find(' '));
  if (value.empty() || value.find_first_not_of("0123456789.") != std::string_view::npos) {
    return std::nullopt;
  }
  double seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return seconds;
}

std::string BootTable(const json& results) {
  std::string t =
      "| figure (medians) | stock Debian kernel | purpose-built kernel | target (issue 3) | "
      "purpose-built meets it |\n"
      "|---|---|---|---|---|\n";
  t +=
      Row(results, "boot to sensor loaded, guest uptime", "boot_to_sensor_guest_s", 0.5, "≤ 0.5 s");
  t += Row(results, "boot to sensor loaded, wall from Start()", "boot_to_sensor_wall_s", 1.0,
           "≤ 1.0 s");
  t += Row(results, "crash cycle (panic to panic), wall", "crash_cycle_wall_s", 1.5, "≤ 1.5 s");
  t += Row(results, "16 guests × 3 crash cycles, wall", "fleet16_3cycles_wall_s", 40, "≤ 40 s");
  std::optional<double> scratch = Number(results, "kernel_build_scratch_s");
  std::optional<double> cached = Number(results, "kernel_build_cached_s");
  std::string scratch_text = "not measured (set CHAOSLAB_BENCH_KERNEL_SCRATCH=1)";
  if (scratch) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(1) << *scratch / 60 << " min (" << Seconds(scratch)
        << ")";
    scratch_text = out.str();
  }
  t += "| kernel build from scratch | — (Debian package) | " + scratch_text + " | ≤ 12 min | " +
       (!scratch ? "—" : (*scratch <= 12 * 60 ? "yes" : "no")) + " |\n";
  t += "| kernel build when cached | — (Debian package) | " + Seconds(cached) + " | 0 s | " +
       (!cached ? "—" : (*cached <= 0.5 ? "yes (≈0)" : "no")) + " |\n";
  return t;
}

Result<ScratchDir> ScratchDir::Make(const std::string& parent, const std::string& prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return Status::IoError("create " + parent + ": " + ec.message());
  std::string pattern = (fs::path(parent) / (prefix + "XXXXXX")).string();
  if (!mkdtemp(pattern.data())) return Status::FromErrno("mkdtemp " + pattern, errno);
  return ScratchDir(pattern);
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

Proportion WilsonInterval(long long successes, long long trials) {
  Proportion p;
  p.successes = successes;
  p.trials = trials;
  if (trials <= 0) return p;
  constexpr double z = 1.959963984540054;
  const double n = static_cast<double>(trials);
  const double phat = static_cast<double>(successes) / n;
  const double denom = 1 + z * z / n;
  const double center = (phat + z * z / (2 * n)) / denom;
  const double half = z * std::sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom;
  p.value = phat;
  p.low = std::max(0.0, center - half);
  p.high = std::min(1.0, center + half);
  return p;
}

Difference ProportionDifference(const Proportion& a, const Proportion& b) {
  Difference d;
  d.value = a.value - b.value;
  d.low = d.value - std::sqrt((a.value - a.low) * (a.value - a.low) +
                              (b.high - b.value) * (b.high - b.value));
  d.high = d.value + std::sqrt((a.high - a.value) * (a.high - a.value) +
                               (b.value - b.low) * (b.value - b.low));
  return d;
}

Result<std::map<std::string, Proportion>> RaceTally(const nlohmann::json& run) {
  if (!run.is_object() || !run.contains("hosts") || !run["hosts"].is_array()) {
    return Status::InvalidArgument("run JSON without a hosts array");
  }
  std::map<std::string, std::pair<long long, long long>> counts;  // wins, attempts
  for (const auto& h : run["hosts"]) {
    const long long reboots = h.value("reboots", 0LL);
    if (reboots <= 0 || !h.contains("network") || !h["network"].is_string()) continue;
    auto& c = counts[h["network"].get<std::string>()];
    c.second += reboots;
    if (h.contains("recovered_by") && h["recovered_by"] == "reboot") ++c.first;
  }
  std::map<std::string, Proportion> out;
  for (const auto& [network, c] : counts) out[network] = WilsonInterval(c.first, c.second);
  return out;
}

}  // namespace chaoslab::bench
