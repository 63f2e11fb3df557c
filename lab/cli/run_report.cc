#include "lab/cli/run_report.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "lab/cli/run_command.h"

namespace chaoslab::run_internal {
namespace {

double PercentileOf(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

Status WriteStats(const std::string& path, const EngineStats& stats, const RunResult& run) {
  double self = CpuSeconds(RUSAGE_SELF), guests = CpuSeconds(RUSAGE_CHILDREN);
  nlohmann::json j;
  j["run_wall_s"] = run.wall_s;
  j["run_to_all_boot_loop_wall_s"] = stats.all_boot_loop_wall_s;
  j["orchestrator_cpu_s"] = self;
  j["guests_cpu_s"] = guests;
  j["orchestrator_cpu_share"] = self + guests > 0 ? self / (self + guests) : 0;
  j["qmp_event_to_journal_p50_ms"] = PercentileOf(stats.event_to_journal_ms, 0.50);
  j["qmp_event_to_journal_p99_ms"] = PercentileOf(stats.event_to_journal_ms, 0.99);
  j["qmp_events"] = stats.event_to_journal_ms.size();
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  return f ? Status::Ok() : Status::IoError("cannot write " + path);
}

std::string MethodText(const config::ScenarioConfig& sc, int max_booting,
                       const std::string& guest_clock, const std::string& priority) {
  std::string links;
  std::set<config::Network> seen;
  for (const auto& g : sc.setup.groups) {
    if (g.network == config::Network::kOffline || !seen.insert(g.network).second) continue;
    auto it = sc.image.networks.find(g.network);
    if (it == sc.image.networks.end()) {
      links +=
          fmt::format("{}{} not shaped", links.empty() ? "" : "; ", config::NetworkName(g.network));
      continue;
    }
    const config::NetworkProfile& p = it->second;
    links += fmt::format("{}{} {}±{} ms round trip, {} % loss, {}, usable after {} ms",
                         links.empty() ? "" : "; ", config::NetworkName(g.network), p.rtt_ms,
                         p.jitter_ms, p.loss_percent,
                         p.bandwidth_mbit > 0 ? fmt::format("{} Mbit/s", p.bandwidth_mbit)
                                              : std::string("no bandwidth limit"),
                         p.usable_after_min_ms == p.usable_after_max_ms
                             ? std::to_string(p.usable_after_min_ms)
                             : fmt::format("{}-{}", p.usable_after_min_ms, p.usable_after_max_ms));
  }
  double load[1] = {-1};
  (void)getloadavg(load, 1);
  return fmt::format(
      "Every boot is a real {} guest under QEMU ({} guest clock): its sensor interprets the cached "
      "channel file {} ms (race_window_ms) after it starts, while it fetches newer content from "
      "the lab's content server{}. {} guests booted at once; load average {:.1f} on {} cores at "
      "the start; the lab's side of the network path at {} priority.",
      sc.image.name, guest_clock, sc.RaceWindowMs(),
      links.empty() ? "" : " over its network profile (" + links + "; image.yaml, assumptions)",
      max_booting > 0 ? fmt::format("At most {}", max_booting) : std::string("All"), load[0],
      std::thread::hardware_concurrency(), priority);
}

nlohmann::json RunInputs(const config::ScenarioConfig& sc, const GuestImage& image,
                         const BackendChoice& backend, int max_booting) {
  nlohmann::json inputs = ScenarioInputs(sc, backend.kind);
  inputs["image"] = {{"name", sc.image.name},
                     {"kind", std::string(config::ImageKindName(sc.image.kind))},
                     {"dir", image.dir}};
  inputs["fault"] = std::string(config::FaultKindName(sc.fault.kind));
  inputs["race_window_ms"] = sc.RaceWindowMs();
  inputs["max_booting"] = max_booting;
  inputs["max_wall_s"] = sc.stop.max_wall;
  inputs["max_scenario_s"] = sc.stop.max_scenario;
  if (backend.inventory) inputs["inventory_file"] = backend.inventory->path;
  return inputs;
}

int JournalFailed(const RunResult& run, std::ostream& err) {
  err << "chaoslab: run " << run.run_id
      << ": the journal is incomplete (results above are): " << run.journal_error << "\n";
  return 1;
}

}  // namespace chaoslab::run_internal
