// The simulator against real guests (issues 7 and 16): the same small scenario — forty wired hosts
// hit by Channel File 291, rebooted up to five times after the revert — runs on QEMU guests through
// `chaoslab calibrate` (which writes a calibration from that very run) and then on the simulator
// with that calibration, scaled to 10,000 hosts. Host by host, two-sample tests must not tell the
// two apart; a simulator off by 0.25 in reboots-until-recovery must be told apart.
//
// What this can and cannot show (docs/SIMULATOR.md, "Agreement with the VM lab"): the per-boot win
// rate agrees by construction (the calibration comes from the same run; reported, not asserted as
// evidence). What the simulator adds on top is tested: that boots are independent draws (so
// reboots-until-recovery per host is geometric, truncated at the runbook's five), the crash counts
// that follow, and when hosts first crash (the engine's and the simulator's timing models). Each is
// a permutation Kolmogorov–Smirnov test (exact for tied, discrete data) at alpha = 0.01, so the
// three together raise a false alarm at most 3 % of the time (Bonferroni). Power: with 8 VM hosts
// the critical D was ~0.55, so the test almost never failed; with 40 it is ~0.2 (printed), and the
// negative control asserts that a model whose distribution function is 0.25 away is rejected.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "lab/report/two_sample.h"
#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

// 40 VM hosts: a 0.25 gap in a distribution function is then ~3 standard errors of the VMs' share
// (at most sqrt(0.25 / 40) = 0.079), beyond the KS test's critical D at alpha = 0.01.
constexpr int kVmHosts = 40;
constexpr int kSimScale = 250;  // simulated hosts per VM host
constexpr int kReboots = 5;     // the runbook's limit
constexpr double kAlpha = 0.01;

struct Sample {
  std::vector<double> boots_to_recover;  // reboots until healthy; kReboots + 1 = never
  std::vector<double> crashes, first_crash_s;
  long long boots = 0, wins = 0;  // reboots after the revert, and those that came up healthy
};

// One value per host (weighted rows repeated; the simulated run below has one row per host).
Sample HostsOf(const json& run) {
  Sample s;
  for (const auto& h : run["hosts"]) {
    const long long w = h.value("weight", 1LL);
    const int reboots = h.value("reboots", 0);
    const bool won = h.value("recovered", false) && h["recovered_by"].is_string() &&
                     h["recovered_by"].get<std::string>() == "reboot";
    for (long long i = 0; i < w; ++i) {
      s.boots_to_recover.push_back(won ? reboots : kReboots + 1);
      s.crashes.push_back(h.value("crashes", 0));
      if (h["first_crash_s"].is_number()) s.first_crash_s.push_back(h["first_crash_s"]);
    }
    s.boots += w * reboots;
    if (won) s.wins += w;
  }
  return s;
}

std::string Scenario(const std::string& name, const std::string& setup, const std::string& runbook,
                     const std::string& extra) {
  return "name: " + name + "\nsetup: " + setup + "\nrunbook: " + runbook +
         "\nfault: {kind: channel-291}\n"
         "rollout: {policy: all-at-once, start: \"04:00\", release: \"04:09\", revert: \"05:27\"}\n"
         "seed: 7\nstop: {max_scenario: 12h, max_wall: 6m}\n" +
         extra;
}

TEST(SimAgreesWithVms, RebootRaceHostByHost) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  const auto dir = lab.dir();
  auto setup = [&](const std::string& name, int count) {
    const std::string path = (dir / (name + ".yaml")).string();
    std::ofstream(path) << "name: " << name
                        << "\nimage: winsim\nsites:\n  - name: hq\ngroups:\n"
                           "  - {name: wired, role: workstation, count: "
                        << count << ", sensor: \"7.11\", network: wired}\n";
    return path;
  };
  const std::string runbook = (dir / "reboot-5.yaml").string();
  std::ofstream(runbook) << "name: reboot-5\nstarts: after-revert\nsteps:\n  - reboot: {times: "
                         << kReboots << "}\n";
  const std::string vm_scenario = (dir / "vm.yaml").string();
  std::ofstream(vm_scenario) << Scenario("agreement-vm", setup("vm-lab", kVmHosts), runbook,
                                         "backend: qemu\n");

  // 1. Real guests: calibrate runs the scenario once and writes the calibration from it.
  const std::string cal = (dir / "cal.yaml").string();
  const auto vm_start = std::chrono::steady_clock::now();
  auto c =
      lab.Run({"calibrate", "--samples", "1", "--scenario", vm_scenario, "--out", cal, "--quiet"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->exit_code, 0) << c->err << c->out;
  const double vm_wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - vm_start).count();
  auto vr = lab.Run({"report", "last", "--json"});
  ASSERT_TRUE(vr.ok());
  ASSERT_EQ(vr->exit_code, 0) << vr->err;
  const Sample vm = HostsOf(json::parse(vr->out));
  ASSERT_EQ(vm.boots_to_recover.size(), static_cast<size_t>(kVmHosts));
  ASSERT_GT(vm.boots, 0) << "no reboots after the revert on the VMs";
  // The calibration holds exactly what the VM run showed.
  std::ifstream cal_in(cal);
  std::stringstream cal_text;
  cal_text << cal_in.rdbuf();
  EXPECT_NE(cal_text.str().find("boots: " + std::to_string(vm.boots) +
                                ", wins: " + std::to_string(vm.wins) + ","),
            std::string::npos)
      << cal_text.str();

  // 2. The simulator, calibrated from that run, on 250 times the hosts (one row per host).
  auto sim_run = [&](const std::string& calibration, const std::string& name) {
    const std::string path = (dir / (name + ".yaml")).string();
    std::ofstream(path) << Scenario(name, setup(name + "-lab", kVmHosts * kSimScale), runbook,
                                    "backend: sim\ncalibration: " + calibration + "\n");
    auto r = lab.Run({"run", path, "--json", "--quiet", "--host-rows", "100000"});
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 0) << r->err;
    return HostsOf(json::parse(r->out));
  };
  const Sample sim = sim_run(cal, "agreement-sim");
  ASSERT_EQ(sim.boots_to_recover.size(), static_cast<size_t>(kVmHosts * kSimScale));

  struct Check {
    const char* what;
    const std::vector<double>& vm_values;
    const std::vector<double>& sim_values;
  };
  const Check checks[] = {
      {"reboots until recovery (6 = never)", vm.boots_to_recover, sim.boots_to_recover},
      {"crashes per host", vm.crashes, sim.crashes},
      {"first crash (scenario s)", vm.first_crash_s, sim.first_crash_s},
  };
  const double p_vm = static_cast<double>(vm.wins) / static_cast<double>(vm.boots);
  const double p_sim = static_cast<double>(sim.wins) / static_cast<double>(sim.boots);
  std::cout << "VM run: " << kVmHosts << " guests, " << vm.boots << " boots after the revert, "
            << vm.wins << " won (p = " << p_vm << "), " << vm_wall << " s wall\n"
            << "simulator: " << sim.boots_to_recover.size() << " hosts, p = " << p_sim << "\n";
  for (const Check& ch : checks) {
    ASSERT_FALSE(ch.vm_values.empty()) << ch.what;
    double critical = 0;
    const TwoSampleTest t =
        KsPermutationTest(ch.vm_values, ch.sim_values, 20000, 291, kAlpha, &critical);
    std::cout << "  " << ch.what << ": D = " << t.statistic << ", p = " << t.p_value
              << " (rejects at D >= " << critical << ")\n";
    EXPECT_GT(t.p_value, kAlpha) << ch.what
                                 << ": the VMs and the simulator disagree (D = " << t.statistic
                                 << ")";
  }

  // 3. The negative control: a model off by 0.25 in reboots-until-recovery. Moving the per-boot
  // odds by 0.25 (down, or up when the VMs' are below 0.25) moves the simulated distribution
  // function at the first reboot by as much; the same KS test must reject it, and Fisher's exact
  // test on the per-boot outcomes too.
  const double p_off = p_vm >= 0.25 ? p_vm - 0.25 : p_vm + 0.25;
  const long long wins_off = std::llround(p_off * static_cast<double>(vm.boots));
  const std::string wrong_text = std::regex_replace(
      cal_text.str(), std::regex(R"(wired: \{hosts: (\d+), boots: (\d+), wins: \d+,[^\n]*)"),
      "wired: {hosts: $1, boots: $2, wins: " + std::to_string(wins_off) + "}");
  ASSERT_NE(wrong_text, cal_text.str()) << "no wired race line in the calibration";
  const std::string wrong_cal = (dir / "wrong.yaml").string();
  std::ofstream(wrong_cal) << wrong_text;
  const Sample wrong = sim_run(wrong_cal, "agreement-wrong");
  double wrong_critical = 0;
  const TwoSampleTest wrong_ks = KsPermutationTest(vm.boots_to_recover, wrong.boots_to_recover,
                                                   20000, 291, kAlpha, &wrong_critical);
  const TwoSampleTest f =
      FisherExact(vm.wins, vm.boots - vm.wins, wrong.wins, wrong.boots - wrong.wins);
  std::cout << "model off by 0.25 (p = " << p_off
            << "): reboots until recovery D = " << wrong_ks.statistic
            << ", KS p = " << wrong_ks.p_value << " (rejects at D >= " << wrong_critical
            << "), Fisher p = " << f.p_value << "\n";
  EXPECT_GE(wrong_ks.statistic, 0.15) << "the off model is not off: check the calibration edit";
  EXPECT_LT(wrong_ks.p_value, kAlpha) << "a model off by 0.25 in reboots-until-recovery was not "
                                         "rejected (D = "
                                      << wrong_ks.statistic << ")";
  EXPECT_LT(f.p_value, kAlpha);
  // The right model on the same per-boot test: equal rates by construction (same run).
  EXPECT_GT(FisherExact(vm.wins, vm.boots - vm.wins, sim.wins, sim.boots - sim.wins).p_value,
            kAlpha);
}

}  // namespace
}  // namespace chaoslab::testing
