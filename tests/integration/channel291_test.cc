// The Channel File 291 scenario on a fleet of real QEMU guests, end to end through the CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tests/integration/lab_harness.h"

namespace chaoslab::testing {
namespace {

using nlohmann::json;

TEST(Channel291OnRealGuests, ExposedHostsBootLoopAndControlGroupsStayUp) {
  LabHarness lab;
  ASSERT_TRUE(lab.ImageBuilt()) << "guest image not built: run `make image`";
  auto r = lab.Run({"run", lab.scenario("channel-291"), "--json"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  json run = json::parse(r->out);
  ASSERT_EQ(run["status"], "finished") << r->err;

  std::map<std::string, json> groups;
  for (const auto& g : run["groups"]) groups[g["name"]] = g;
  ASSERT_EQ(groups.size(), 4u) << run.dump(2);
  for (const char* exposed_711 : {"ws-711", "srv-711"}) {
    const json& g = groups[exposed_711];
    EXPECT_EQ(g["exposed"], g["hosts"]) << exposed_711;
    EXPECT_DOUBLE_EQ(g["crash_rate"].get<double>(), 1.0) << exposed_711;
    EXPECT_DOUBLE_EQ(g["boot_loop_rate"].get<double>(), 1.0) << exposed_711;
  }
  // Control: sensor 7.10 has no IPC template type — it gets the file and shrugs.
  EXPECT_EQ(groups["ws-710"]["exposed"], groups["ws-710"]["hosts"]);
  EXPECT_DOUBLE_EQ(groups["ws-710"]["crash_rate"].get<double>(), 0.0);
  // Control: offline during the window — never sees the file.
  EXPECT_EQ(groups["ws-offline"]["exposed"], 0);
  EXPECT_DOUBLE_EQ(groups["ws-offline"]["crash_rate"].get<double>(), 0.0);

  for (const auto& h : run["hosts"]) {
    std::string group = h["group"];
    if (group == "ws-711" || group == "srv-711") {
      EXPECT_GE(h["crashes"].get<int>(), 2) << h.dump();  // counted from QMP GUEST_PANICKED
      EXPECT_TRUE(h["boot_loop"].get<bool>()) << h.dump();
      EXPECT_EQ(h["stop_code"], "PAGE_FAULT_IN_NONPAGED_AREA") << h.dump();
      EXPECT_GE(h["first_crash_s"].get<double>(), 0.0);
    } else {
      EXPECT_EQ(h["crashes"], 0) << h.dump();
      EXPECT_EQ(h["state"], "healthy") << h.dump();
    }
  }

  // The journal has it: `runs` lists it and `report` prints the same figures again.
  std::string run_id = run["run_id"];
  auto runs = lab.Run({"runs"});
  ASSERT_TRUE(runs.ok());
  EXPECT_NE(runs->out.find(run_id), std::string::npos) << runs->out;
  auto again = lab.Run({"report", run_id, "--json"});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->exit_code, 0) << again->err;
  json reloaded = json::parse(again->out);
  EXPECT_EQ(reloaded["fleet"], run["fleet"]);
  EXPECT_EQ(reloaded["groups"], run["groups"]);
  // What the run was made of, kept with it: the files, the image, the lab's settings.
  const json& inputs = run["inputs"];
  EXPECT_EQ(std::filesystem::path(inputs["scenario_file"].get<std::string>()),
            std::filesystem::absolute(lab.scenario("channel-291")).lexically_normal())
      << inputs.dump();
  EXPECT_NE(inputs["setup_file"].get<std::string>().find("playbooks/setups/"), std::string::npos)
      << inputs.dump();
  EXPECT_EQ(inputs["image"]["kind"], "winsim") << inputs.dump();
  EXPECT_EQ(inputs["backend"], "qemu") << inputs.dump();
  EXPECT_EQ(inputs["seed"], run["seed"]) << inputs.dump();
  EXPECT_EQ(reloaded["inputs"], inputs);
  // Nothing is left behind after a normal exit.
  EXPECT_TRUE(LabHarness::LabQemus(run_id).empty());
  EXPECT_FALSE(std::filesystem::exists(lab.runtime_root() + "/" + run_id));
}

}  // namespace
}  // namespace chaoslab::testing
