#include "tests/bench/race_bench.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <vector>

#include "lab/common/subprocess.h"
#include "tests/bench/bench_util.h"

namespace chaoslab::bench {
namespace {

using nlohmann::json;

// CPU-burning child processes, stopped (by their pids) when this goes away.
class Burners {
 public:
  explicit Burners(int count) {
    for (int i = 0; i < count; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        volatile unsigned long spin = 0;
        for (;;) spin = spin + 1;
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~Burners() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  size_t size() const { return pids_.size(); }
  Burners(const Burners&) = delete;
  Burners& operator=(const Burners&) = delete;

 private:
  std::vector<pid_t> pids_;
};

double LoadAverage() {
  double load[1] = {-1};
  (void)getloadavg(load, 1);
  return load[0];
}

// The race scenario once per network profile (tests/bench/race/race-bench-<net>.yaml as its
// setup); the tallies merged.
Result<std::map<std::string, Proportion>> RaceRuns(const RaceBenchOptions& o,
                                                   const std::string& condition, json* out) {
  const std::string journal = o.work_dir + "/race-" + condition + ".db";
  setenv("CHAOSLAB_JOURNAL", journal.c_str(), 1);
  (*out)["race_" + condition + "_loadavg_1m"] = LoadAverage();
  const std::string dir = o.source_dir + "/tests/bench/race/";
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, Proportion> merged;
  for (const char* network : {"wired", "wifi", "vpn"}) {
    ASSIGN_OR_RETURN(ProcessOutput run,
                     RunProcess({o.bin_dir + "/chaoslab", "run", dir + "race-bench.yaml", "--setup",
                                 dir + "race-bench-" + network + ".yaml", "--quiet", "--json"},
                                std::chrono::seconds(3 * 3600)));
    if (run.exit_code != 0) {
      return Status::Internal("chaoslab run (" + condition + ", " + network + ") exited " +
                              std::to_string(run.exit_code) + ":\n" + run.err);
    }
    json result = json::parse(run.out, nullptr, false);
    if (result.is_discarded()) return Status::Corruption("chaoslab run printed no JSON");
    ASSIGN_OR_RETURN(auto tally, RaceTally(result));
    for (const auto& [net, p] : tally) {
      Proportion& m = merged[net];
      m = WilsonInterval(m.successes + p.successes, m.trials + p.trials);
    }
  }
  (*out)["race_" + condition + "_wall_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return merged;
}

std::string Percent(const Proportion& p) {
  return fmt::format("{:5.1f} % [{:.1f}-{:.1f}] n={}", 100 * p.value, 100 * p.low, 100 * p.high,
                     p.trials);
}

}  // namespace

Status RaceSection(const RaceBenchOptions& o, std::ostream& log, json* out) {
  log << "bench: race: idle (load average " << LoadAverage() << ")...\n";
  ASSIGN_OR_RETURN(auto idle, RaceRuns(o, "idle", out));
  std::map<std::string, Proportion> loaded;
  {
    Burners burners(o.burners);
    (*out)["race_burners"] = burners.size();
    log << "bench: race: beside " << burners.size() << " CPU-burning processes...\n";
    ASSIGN_OR_RETURN(loaded, RaceRuns(o, "loaded", out));
  }
  log << fmt::format("\n  {:<7} {:<32} {:<32} {}\n", "network", "wins per boot, idle",
                     "wins per boot, loaded", "loaded - idle (pp)");
  for (const auto& [network, a] : idle) {
    const Proportion& b = loaded[network];
    const Difference d = ProportionDifference(b, a);
    log << fmt::format("  {:<7} {:<32} {:<32} {:+.1f} [{:+.1f} to {:+.1f}]\n", network, Percent(a),
                       Percent(b), 100 * d.value, 100 * d.low, 100 * d.high);
    for (const auto& [condition, p] : {std::pair{"idle", a}, std::pair{"loaded", b}}) {
      const std::string key = "race_" + network + "_" + condition;
      (*out)[key + "_win_per_boot"] = p.value;
      (*out)[key + "_low"] = p.low;
      (*out)[key + "_high"] = p.high;
      (*out)[key + "_attempts"] = p.trials;
    }
    (*out)["race_" + network + "_diff_pp"] = 100 * d.value;
    (*out)["race_" + network + "_diff_pp_low"] = 100 * d.low;
    (*out)["race_" + network + "_diff_pp_high"] = 100 * d.high;
  }
  log << "  (95 % Wilson intervals; difference with Newcombe's interval)\n\n";
  return Status::Ok();
}

}  // namespace chaoslab::bench
