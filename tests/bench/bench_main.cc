// `make bench`: measures the lab itself and merges the figures into build/bench/results.json
// (one key per figure, plain numbers), so runs can be compared over time.
//
//   chaoslab-bench [--out FILE] [--only SECTION[,SECTION]]
//
// Sections: fleet — the Channel File 291 demo scenario on real guests: wall time from `chaoslab run`
// until every exposed host is in boot-loop, the orchestrator's CPU share next to the guests', and
// QMP event → journal latency (p50/p99).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lab/common/subprocess.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string BinDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

chaoslab::Result<json> FleetSection(const std::string& source_dir, const fs::path& work) {
  std::string stats = (work / "fleet-stats.json").string();
  setenv("CHAOSLAB_JOURNAL", (work / "bench-journal.db").c_str(), 1);
  auto r = chaoslab::RunProcess({BinDir() + "/chaoslab", "run",
                                 source_dir + "/playbooks/scenarios/channel-291.yaml", "--quiet",
                                 "--json", "--stats-json", stats},
                                std::chrono::seconds(1800));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return chaoslab::Status::Internal("chaoslab run failed:\n" + r->err);
  std::ifstream f(stats);
  json s = json::parse(f, nullptr, false);
  if (s.is_discarded()) return chaoslab::Status::Corruption("unreadable " + stats);
  json out;
  out["fleet_hosts"] = json::parse(r->out)["fleet"]["hosts"];
  out["fleet_run_wall_s"] = s["run_wall_s"];
  out["fleet_run_to_all_boot_loop_wall_s"] = s["run_to_all_boot_loop_wall_s"];
  out["fleet_orchestrator_cpu_s"] = s["orchestrator_cpu_s"];
  out["fleet_guests_cpu_s"] = s["guests_cpu_s"];
  out["fleet_orchestrator_cpu_share"] = s["orchestrator_cpu_share"];
  out["qmp_event_to_journal_p50_ms"] = s["qmp_event_to_journal_p50_ms"];
  out["qmp_event_to_journal_p99_ms"] = s["qmp_event_to_journal_p99_ms"];
  out["qmp_events_measured"] = s["qmp_events"];
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "build/bench/results.json";
  std::set<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else if (a == "--only" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      for (std::string s; std::getline(ss, s, ',');) only.insert(s);
    } else {
      std::cerr << "usage: chaoslab-bench [--out FILE] [--only fleet]\n";
      return 2;
    }
  }
  const char* src = std::getenv("CHAOSLAB_SOURCE_DIR");
  std::string source_dir = src ? src : ".";
  fs::path work = fs::path(out_path).parent_path();
  fs::create_directories(work);

  json results = json::object();
  if (std::ifstream prev(out_path); prev) {
    json p = json::parse(prev, nullptr, false);
    if (p.is_object()) results = p;  // later benchmarks extend the same file
  }
  bool failed = false;
  auto wanted = [&](const std::string& s) { return only.empty() || only.count(s); };
  if (wanted("fleet")) {
    std::cerr << "bench: fleet (Channel File 291 demo on real guests)...\n";
    auto fleet = FleetSection(source_dir, work);
    if (fleet.ok()) {
      results.update(*fleet);
    } else {
      std::cerr << "bench: fleet: " << fleet.status().message() << "\n";
      failed = true;
    }
  }
  std::ofstream(out_path) << results.dump(2) << "\n";
  std::cout << results.dump(2) << "\n";
  return failed ? 1 : 0;
}
