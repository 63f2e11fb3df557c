// `make bench`: measures the lab itself and merges the figures into build/bench/results.json
// (one key per figure, plain numbers), so runs can be compared over time.
//
//   chaoslab-bench [--out FILE] [--only SECTION[,SECTION]] [--boots N] [--cycles N]
//                  [--kernels custom,debian]
//
// Sections (default: all, in this order):
//   fleet   — the Channel File 291 demo scenario on real guests: wall time from `chaoslab run`
//             until every exposed host is in boot-loop, the orchestrator's CPU share next to the
//             guests', and QMP event → journal latency (p50/p99).
//   boot    — boot to sensor, crash cycle and 16-guest crash loops for the stock and the
//             purpose-built kernel, kernel build time (boot_bench.h); also writes
//             <out folder>/boot-table.md and prints it. Env CHAOSLAB_BENCH_KERNEL_SCRATCH=1 adds a
//             kernel build from scratch (~8 min).
//   journal — Journal::AppendEvent latency over 5,000 events (p50/p99).
//   race    — the reboot race idle and beside two CPU-burning processes: wins per boot per network
//             profile with 95 % intervals and their difference (race_bench.h; ~20 min).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lab/common/subprocess.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/boot_bench.h"
#include "tests/bench/journal_bench.h"
#include "tests/bench/race_bench.h"
#include "tests/bench/sim_bench.h"

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
  auto r = chaoslab::RunProcess(
      {BinDir() + "/chaoslab", "run", source_dir + "/playbooks/scenarios/channel-291.yaml",
       "--quiet", "--json", "--stats-json", stats},
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

void OnSignal(int) { chaoslab::bench::RequestStop(); }

constexpr const char* kUsage =
    "usage: chaoslab-bench [--out FILE] [--only fleet,boot,journal,sim,race] [--boots N] "
    "[--cycles N] "
    "[--kernels custom,debian]\n";

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string s; std::getline(ss, s, ',');) {
    if (!s.empty()) parts.push_back(s);
  }
  return parts;
}

bool ParseCount(const std::string& text, int* value) {
  try {
    size_t end = 0;
    int v = std::stoi(text, &end);
    if (end != text.size() || v < 1 || v > 1000) return false;
    *value = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::set<std::string> kSections = {"fleet", "boot", "journal", "sim", "race"};
  std::string out_path = "build/bench/results.json";
  std::set<std::string> only;
  chaoslab::bench::BootBenchOptions boot;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--out" && has_value) {
      out_path = argv[++i];
    } else if (a == "--only" && has_value) {
      for (const std::string& s : SplitComma(argv[++i])) {
        if (!kSections.count(s)) {
          std::cerr << "chaoslab-bench: --only: unknown section '" << s
                    << "' (sections: fleet, boot, journal, sim, race)\n";
          return 2;
        }
        only.insert(s);
      }
    } else if ((a == "--boots" || a == "--cycles") && has_value) {
      int* target = a == "--boots" ? &boot.boots : &boot.crash_cycles;
      if (!ParseCount(argv[++i], target)) {
        std::cerr << "chaoslab-bench: " << a << ": '" << argv[i] << "' is not a count 1..1000\n";
        return 2;
      }
    } else if (a == "--kernels" && has_value) {
      boot.kernels = SplitComma(argv[++i]);
      for (const std::string& k : boot.kernels) {
        if (k != "custom" && k != "debian") {
          std::cerr << "chaoslab-bench: --kernels: unknown kernel '" << k
                    << "' (custom or debian)\n";
          return 2;
        }
      }
      if (boot.kernels.empty()) {
        std::cerr << "chaoslab-bench: --kernels: name at least one kernel\n";
        return 2;
      }
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }
  const char* src = std::getenv("CHAOSLAB_SOURCE_DIR");
  std::string source_dir = src ? src : ".";
  fs::path work = fs::path(out_path).parent_path();
  if (work.empty()) work = ".";
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) {
    std::cerr << "chaoslab-bench: cannot create " << work << ": " << ec.message() << "\n";
    return 1;
  }
  // Ctrl-C / kill: stop waiting for guests, clean up QEMUs and temporary files, then exit.
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

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
  if (wanted("boot") && !chaoslab::bench::StopRequested()) {
    std::cerr << "bench: boot (stock vs purpose-built kernel, real guests, one at a time)...\n";
    boot.source_dir = source_dir;
    boot.bin_dir = BinDir();
    boot.work_dir = work.string();
    const char* scratch = std::getenv("CHAOSLAB_BENCH_KERNEL_SCRATCH");
    boot.kernel_scratch = scratch && std::string(scratch) == "1";
    json figures = json::object();
    chaoslab::Status s = chaoslab::bench::BootSection(boot, std::cerr, &figures);
    results.update(figures);  // whatever was measured, also when a later step failed
    if (!s.ok()) {
      std::cerr << "bench: boot: " << s.ToString() << "\n";
      failed = true;
    }
    std::string table = chaoslab::bench::BootTable(results);
    if (results.contains("boot_loadavg_1m")) {
      std::ostringstream note;
      note << "\nQEMU " << (results.value("boot_accel_kvm", 0) == 1 ? "KVM" : "TCG")
           << ", -m 256 -smp 1, offline guests; load average at the start: "
           << results["boot_loadavg_1m"].get<double>() << ".\n";
      table += note.str();
    }
    std::ofstream(work / "boot-table.md") << table;
    std::cout << table << "\n";
  }
  if (wanted("journal") && !chaoslab::bench::StopRequested()) {
    std::cerr << "bench: journal (5,000 appends)...\n";
    auto journal = chaoslab::bench::JournalSection(work.string(), 5000);
    if (journal.ok()) {
      results.update(*journal);
    } else {
      std::cerr << "bench: journal: " << journal.status().ToString() << "\n";
      failed = true;
    }
  }
  if (wanted("sim") && !chaoslab::bench::StopRequested()) {
    std::cerr << "bench: sim (global-2024, 8.5 million hosts, and the scaling table)...\n";
    auto sim = chaoslab::bench::SimSection(source_dir, BinDir(), work.string());
    if (sim.ok()) {
      results.update(*sim);
    } else {
      std::cerr << "bench: sim: " << sim.status().ToString() << "\n";
      failed = true;
    }
  }
  if (wanted("race") && !chaoslab::bench::StopRequested()) {
    std::cerr << "bench: race (the reboot race idle and under load, real guests)...\n";
    chaoslab::bench::RaceBenchOptions race;
    race.source_dir = source_dir;
    race.bin_dir = BinDir();
    race.work_dir = work.string();
    json figures = json::object();
    chaoslab::Status s = chaoslab::bench::RaceSection(race, std::cerr, &figures);
    results.update(figures);
    if (!s.ok()) {
      std::cerr << "bench: race: " << s.ToString() << "\n";
      failed = true;
    }
  }
  std::ofstream(out_path) << results.dump(2) << "\n";
  std::cout << results.dump(2) << "\n";
  return failed ? 1 : 0;
}
