#include "tests/bench/sim_bench.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "lab/sim/sim.h"

extern char** environ;

namespace chaoslab::bench {
namespace {

namespace fs = std::filesystem;

struct ChildFigures {
  double wall_s = 0, user_s = 0, peak_rss_mib = 0;
  nlohmann::json stats;
};

// Runs `chaoslab run SCENARIO --quiet --stats-json` with its own journal (`tag` names its files);
// wall, user time and peak RSS of that child alone (wait4). With `results_out`, also `--json`
// into that file.
Result<ChildFigures> RunChild(const std::string& chaoslab, const std::string& scenario,
                              const std::string& work, const std::string& tag = "sim",
                              const std::string& results_out = "") {
  const std::string stats = work + "/" + tag + "-stats.json";
  const std::string journal_path = work + "/" + tag + "-journal.db";
  fs::remove(journal_path);
  const std::string journal = "CHAOSLAB_JOURNAL=" + journal_path;
  std::vector<std::string> args = {chaoslab, "run", scenario, "--quiet", "--stats-json", stats};
  if (!results_out.empty()) args.push_back("--json");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("CHAOSLAB_JOURNAL=", 0) != 0) env_store.push_back(*e);
  env_store.push_back(journal);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, results_out.empty() ? "/dev/null" : results_out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  int rc = posix_spawn(&pid, chaoslab.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status::FromErrno("spawning " + chaoslab, rc);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) < 0) return Status::FromErrno("waiting for chaoslab", errno);
  ChildFigures f;
  f.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  f.peak_rss_mib = usage.ru_maxrss / 1024.0;  // kilobytes on Linux
  f.user_s = static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status::Internal(fmt::format("chaoslab run {} exited with status {}", scenario, status));
  std::ifstream in(stats);
  f.stats = nlohmann::json::parse(in, nullptr, false);
  // wait4's figure includes this process's own peak before the child's exec (Linux keeps the
  // high-water mark across execve): the child's own VmHWM when it reports one.
  if (f.stats.is_object() && f.stats.contains("peak_rss_mib"))
    f.peak_rss_mib = f.stats["peak_rss_mib"].get<double>();
  return f;
}

// global-2024 with the mix's `hosts:` set to `hosts` (paths made absolute), in `work`.
Result<std::string> ScaledScenario(const std::string& source_dir, const std::string& work,
                                   long long hosts) {
  const std::string pb = source_dir + "/playbooks";
  std::ifstream mix_in(pb + "/mixes/world-2024.yaml"), sc_in(pb + "/scenarios/global-2024.yaml");
  if (!mix_in || !sc_in) return Status::NotFound("global-2024 playbooks not found under " + pb);
  std::stringstream mix, sc;
  mix << mix_in.rdbuf();
  sc << sc_in.rdbuf();
  std::string m =
      std::regex_replace(mix.str(), std::regex(R"(\.\./(setups|runbooks)/)"), pb + "/$1/");
  m = std::regex_replace(m, std::regex(R"(\nhosts: \d+)"), "\nhosts: " + std::to_string(hosts));
  const std::string mix_path = work + fmt::format("/world-{}.yaml", hosts);
  std::ofstream(mix_path) << m;
  std::string s = std::regex_replace(sc.str(), std::regex(R"(mix: \S+)"), "mix: " + mix_path);
  s = std::regex_replace(s, std::regex(R"(\nbackend: sim)"),
                         "\ncalibration: " + pb + "/calibration/winsim.yaml\nbackend: sim");
  const std::string sc_path = work + fmt::format("/global-{}.yaml", hosts);
  std::ofstream(sc_path) << s;
  return sc_path;
}

// A run's results without what differs between two runs of the same inputs.
nlohmann::json StableResults(const std::string& path) {
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  const std::function<void(nlohmann::json&)> strip = [&](nlohmann::json& v) {
    if (v.is_object()) {
      for (const char* k : {"wall_s", "sim_wall_s", "started_at", "run_id"}) v.erase(k);
      for (auto& [k, child] : v.items()) strip(child);
    } else if (v.is_array()) {
      for (auto& child : v) strip(child);
    }
  };
  strip(j);
  return j;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// global-2024 by `baseline` (another build of chaoslab, e.g. the previous commit's) and by this
// build, alternately `rounds` times so both meet the same load; medians, and whether both print
// the same results.
Result<nlohmann::json> SideBySide(const std::string& baseline, const std::string& chaoslab,
                                  const std::string& scenario, const std::string& work,
                                  int rounds) {
  std::vector<double> wall[2], user[2], rss[2];
  bool same = true;
  for (int r = 0; r < rounds; ++r) {
    for (int b = 0; b < 2; ++b) {
      const std::string tag = b == 0 ? "baseline" : "this";
      const std::string out = work + "/" + tag + "-results.json";
      ASSIGN_OR_RETURN(ChildFigures f,
                       RunChild(b == 0 ? baseline : chaoslab, scenario, work, tag, out));
      wall[b].push_back(f.wall_s);
      user[b].push_back(f.user_s);
      rss[b].push_back(f.peak_rss_mib);
    }
    same = same && StableResults(work + "/baseline-results.json") ==
                       StableResults(work + "/this-results.json");
  }
  nlohmann::json j = {{"baseline", baseline}, {"rounds", rounds}, {"same_results", same}};
  for (int b = 0; b < 2; ++b) {
    const char* who = b == 0 ? "baseline" : "this";
    j[who] = {{"wall_s", wall[b]},
              {"median_wall_s", Median(wall[b])},
              {"median_user_s", Median(user[b])},
              {"median_peak_rss_mib", Median(rss[b])}};
  }
  return j;
}

}  // namespace

Result<nlohmann::json> SimSection(const std::string& source_dir, const std::string& bin_dir,
                                  const std::string& work_dir) {
  nlohmann::json out = nlohmann::json::object();
  const std::string work = work_dir + "/sim";
  fs::create_directories(work);
  const std::string chaoslab = bin_dir + "/chaoslab";
  nlohmann::json scaling = nlohmann::json::array();
  for (long long hosts : {10'000LL, 100'000LL, 1'000'000LL, 8'500'000LL}) {
    ASSIGN_OR_RETURN(std::string scenario, ScaledScenario(source_dir, work, hosts));
    ASSIGN_OR_RETURN(ChildFigures f, RunChild(chaoslab, scenario, work));
    nlohmann::json row = {{"hosts_asked", hosts},
                          {"hosts", f.stats.value("sim_hosts", 0LL)},
                          {"wall_s", f.wall_s},
                          {"sim_wall_s", f.stats.value("sim_wall_s", 0.0)},
                          {"events", f.stats.value("sim_events", 0LL)},
                          {"peak_rss_mib", f.peak_rss_mib}};
    scaling.push_back(row);
    if (hosts == 8'500'000LL) {
      out["sim_global_2024_wall_s"] = f.wall_s;
      out["sim_global_2024_sim_wall_s"] = f.stats.value("sim_wall_s", 0.0);
      out["sim_global_2024_peak_rss_mib"] = f.peak_rss_mib;
      out["sim_global_2024_events"] = f.stats.value("sim_events", 0LL);
      out["sim_global_2024_hosts"] = f.stats.value("sim_hosts", 0LL);
    }
  }
  out["sim_scaling"] = scaling;
  if (const char* baseline = std::getenv("CHAOSLAB_BENCH_BASELINE"); baseline && *baseline) {
    ASSIGN_OR_RETURN(std::string scenario, ScaledScenario(source_dir, work, 8'500'000LL));
    ASSIGN_OR_RETURN(out["sim_global_2024_side_by_side"],
                     SideBySide(baseline, chaoslab, scenario, work, 3));
  }
  // One core, the simulator's event queue: 20 M events over ~100,000 live entries (a large
  // organisation's agenda); and the same mix on the 4-ary heap it replaced, under the same load.
  // After the children: this process's peak would otherwise count in a child's wait4 figure.
  out["engine_events_per_s"] = sim::SyntheticEventRate(20'000'000, 100'000);
  out["engine_events_per_s_heap"] = sim::SyntheticEventRate(20'000'000, 100'000, true);
  double load[1] = {0};
  if (getloadavg(load, 1) == 1) out["sim_loadavg_1m"] = load[0];
  fs::remove_all(work);
  return out;
}

}  // namespace chaoslab::bench
