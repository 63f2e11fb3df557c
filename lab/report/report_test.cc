#include "lab/report/report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace chaoslab {
namespace {

RunResult SampleRun() {
  RunResult run;
  run.run_id = "r-20240719-0409-abcd";
  run.scenario = "channel-291";
  run.runbook = "safe-mode-delete";
  run.backend = "vm";
  run.seed = 42;
  run.status = "finished";
  run.started_at = "2024-07-19T04:09:00Z";
  run.wall_s = 93.25;
  run.scenario_end_s = 6 * 3600 + 27 * 60 + 10;  // 06:27:10
  HostResult ws;
  ws.id = "ws-01";
  ws.group = "workstations";
  ws.final_state = "healthy";
  ws.exposed = true;
  ws.crashes = 2;
  ws.boot_loop = true;
  ws.recovered = true;
  ws.reboots = 3;
  ws.first_crash_s = 70;
  ws.time_to_recover_s = 754;
  ws.stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
  HostResult dc;
  dc.id = "dc-01";
  dc.group = "servers";
  dc.final_state = "lost";
  dc.exposed = true;
  dc.crashes = 1;
  dc.first_crash_s = 5;
  HostResult db;
  db.id = "db-01";
  db.group = "servers";
  db.final_state = "healthy";
  run.hosts = {ws, dc, db};
  Summarize(&run);
  return run;
}

// The line of `text` that starts (after indentation) with `first_cell`, or "".
std::string LineStartingWith(const std::string& text, const std::string& first_cell) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t start = line.find_first_not_of(' ');
    if (start != std::string::npos &&
        line.compare(start, first_cell.size() + 1, first_cell + " ") == 0)
      return line;
  }
  return "";
}

TEST(PrintTableTest, HeaderGroupFleetAndHostRows) {
  std::ostringstream out;
  PrintTable(SampleRun(), out);
  const std::string text = out.str();
  for (const char* expected : {"r-20240719-0409-abcd", "channel-291", "safe-mode-delete", "vm",
                               "seed 42", "finished", "93.2 s", "scenario end 06:27"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  // group hosts exposed crashed crash% bootloop% recovered failed lost MTTR
  EXPECT_EQ(LineStartingWith(text, "workstations"),
            "  workstations      1        1        1    100.0        100.0          1       0     "
            "0  12:34");
  EXPECT_EQ(LineStartingWith(text, "servers"),
            "  servers           2        1        1    100.0          0.0          0       0     "
            "1      –");
  EXPECT_EQ(LineStartingWith(text, "fleet"),
            "  fleet             3        2        2    100.0         50.0          1       0     "
            "1  12:34");
  const std::string ws = LineStartingWith(text, "ws-01");
  EXPECT_NE(ws.find("healthy"), std::string::npos) << ws;
  EXPECT_NE(ws.find("+01:10"), std::string::npos) << ws;
  EXPECT_NE(ws.find("yes        yes"), std::string::npos) << ws;
  EXPECT_NE(ws.find("12:34"), std::string::npos) << ws;
  EXPECT_NE(ws.find("PAGE_FAULT_IN_NONPAGED_AREA"), std::string::npos) << ws;
  const std::string db = LineStartingWith(text, "db-01");
  EXPECT_NE(db.find("no         no"), std::string::npos) << db;
  EXPECT_NE(db.find("–"), std::string::npos) << db;
}

TEST(ToJsonTest, KeysAndValues) {
  const nlohmann::json j = ToJson(SampleRun());
  EXPECT_EQ(j["run_id"], "r-20240719-0409-abcd");
  EXPECT_EQ(j["scenario"], "channel-291");
  EXPECT_EQ(j["runbook"], "safe-mode-delete");
  EXPECT_EQ(j["backend"], "vm");
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["status"], "finished");
  EXPECT_EQ(j["started_at"], "2024-07-19T04:09:00Z");
  EXPECT_DOUBLE_EQ(j["wall_s"].get<double>(), 93.25);
  EXPECT_DOUBLE_EQ(j["scenario_end_s"].get<double>(), 23230);

  EXPECT_EQ(j["fleet"]["name"], "fleet");
  EXPECT_EQ(j["fleet"]["hosts"], 3);
  EXPECT_DOUBLE_EQ(j["fleet"]["boot_loop_rate"].get<double>(), 0.5);
  ASSERT_EQ(j["groups"].size(), 2u);
  const auto& servers = j["groups"][1];
  EXPECT_EQ(servers["name"], "servers");
  for (const char* key : {"hosts", "exposed", "crashed", "crash_rate", "boot_loop_rate",
                          "recovered", "failed", "lost", "mttr_s"}) {
    EXPECT_TRUE(servers.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(servers["crash_rate"].get<double>(), 1.0);  // a fraction, not a percent
  EXPECT_EQ(servers["lost"], 1);
  EXPECT_TRUE(servers["mttr_s"].is_null());
  EXPECT_DOUBLE_EQ(j["groups"][0]["mttr_s"].get<double>(), 754);

  ASSERT_EQ(j["hosts"].size(), 3u);
  const auto& ws = j["hosts"][0];
  EXPECT_EQ(ws["id"], "ws-01");
  EXPECT_EQ(ws["group"], "workstations");
  EXPECT_EQ(ws["state"], "healthy");
  EXPECT_EQ(ws["exposed"], true);
  EXPECT_EQ(ws["crashes"], 2);
  EXPECT_DOUBLE_EQ(ws["first_crash_s"].get<double>(), 70);
  EXPECT_EQ(ws["boot_loop"], true);
  EXPECT_EQ(ws["recovered"], true);
  EXPECT_EQ(ws["reboots"], 3);
  EXPECT_DOUBLE_EQ(ws["time_to_recover_s"].get<double>(), 754);
  EXPECT_EQ(ws["stop_code"], "PAGE_FAULT_IN_NONPAGED_AREA");
  const auto& db = j["hosts"][2];
  EXPECT_TRUE(db["first_crash_s"].is_null());
  EXPECT_TRUE(db["time_to_recover_s"].is_null());
  EXPECT_TRUE(db["stop_code"].is_null());
}

// Issue 15: a stop code is what the guest said; bytes that are not UTF-8 aborted `--json`.
TEST(ReportTest, AStopCodeThatIsNotUtf8StillPrintsAsJson) {
  RunResult run = SampleRun();
  run.hosts[0].stop_code = "PAGE_FAULT\xff\xc3";
  std::string text;
  ASSERT_NO_THROW(text = ToJsonText(run));
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["hosts"][0]["stop_code"], "PAGE_FAULT\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(j["run_id"], run.run_id);
  EXPECT_NE(text.find("\n  \"run_id\""), std::string::npos);  // indented as before
}

// A run with the issue-4 figures: sites, roles, BitLocker, escrow keys, data lost, services.
RunResult RunbookRun() {
  RunResult run = SampleRun();
  run.setup = "hospital";
  run.comparison_id = "c-1";
  run.repetition = 1;
  run.release_s = 4 * 3600 + 9 * 60;
  run.hosts[0].site = "main";
  run.hosts[0].role = "workstation";
  run.hosts[0].bitlocker = true;
  run.hosts[0].recovered_at_s = 824;
  run.hosts[0].recovered_by = "safe-mode-delete";
  run.hosts[0].technician_s = 1500;
  run.hosts[0].waited_s = 4200;
  run.hosts[0].waited_for = "key-escrow";
  run.hosts[0].keys_fetched = 1;
  run.hosts[1].failed_why = "no technician";
  run.hosts[1].data_lost = "all";
  run.hosts[1].data_lost_s = 7200;
  run.services = {{"crew-scheduling", 5400, 10, 5410, true},
                  {"email", 9000, 30, std::nullopt, false}};
  Summarize(&run);
  return run;
}

TEST(PrintTableTest, RecoveryServicesAndNotes) {
  std::ostringstream out;
  PrintTable(RunbookRun(), out);
  const std::string text = out.str();
  for (const char* expected : {"setup hospital", "comparison c-1  repetition 2", "release 04:09",
                               "site", "role", "main", "workstation", "safe-mode-delete"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  // The recovery table: the fleet row (p50/p90/p99 of the one recovered host = 12:34; 50 % of
  // 3 hosts up at 13:44 (ws-01 back at 824 s), 90 % never (dc-01 is lost); technician 0.4 h,
  // 1 key, 1 host lost 2.0 h of data).
  std::istringstream lines(text);
  std::vector<std::string> fleet_lines;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  fleet ", 0) == 0) fleet_lines.push_back(line);
  }
  ASSERT_EQ(fleet_lines.size(), 2u) << text;
  EXPECT_EQ(
      fleet_lines[1],
      "  fleet         12:34  12:34  12:34    13:44        –        –           0.4     1     "
      "     1          2.0");
  const std::string crew = LineStartingWith(text, "crew-scheduling");
  EXPECT_NE(crew.find("1:30:00"), std::string::npos) << crew;
  EXPECT_NE(crew.find("+1:30:10"), std::string::npos) << crew;
  EXPECT_NE(crew.find("up"), std::string::npos) << crew;
  const std::string email = LineStartingWith(text, "email");
  EXPECT_NE(email.find("2:30:00"), std::string::npos) << email;
  EXPECT_NE(email.find("down"), std::string::npos) << email;
  const std::string ws = LineStartingWith(text, "ws-01");
  EXPECT_NE(ws.find("BitLocker; technician 25:00; keys 1; waited 1:10:00 for key-escrow"),
            std::string::npos)
      << ws;
  const std::string dc = LineStartingWith(text, "dc-01");
  EXPECT_NE(dc.find("data lost (all, 2:00:00); why: no technician"), std::string::npos) << dc;
}

// A service that worked off a backlog: the services table gains "catching up", the part of the
// downtime its hosts were up; without one, the column stays away.
TEST(PrintTableTest, ServicesCatchingUpOnABacklog) {
  RunResult run = RunbookRun();
  std::ostringstream plain;
  PrintTable(run, plain);
  EXPECT_EQ(plain.str().find("catching up"), std::string::npos) << plain.str();
  run.services[0].catching_up_s = 3600;
  std::ostringstream out;
  PrintTable(run, out);
  EXPECT_NE(LineStartingWith(out.str(), "service").find("catching up"), std::string::npos)
      << out.str();
  const std::string crew = LineStartingWith(out.str(), "crew-scheduling");
  EXPECT_NE(crew.find("1:30:00      1:00:00"), std::string::npos) << crew;
  EXPECT_NE(LineStartingWith(out.str(), "email").find("2:30:00        00:00"), std::string::npos)
      << out.str();
  EXPECT_DOUBLE_EQ(ToJson(run)["services"][0]["catching_up_s"].get<double>(), 3600);
}

TEST(PrintTableTest, PlainRunHasNoSiteRoleOrServiceTable) {
  std::ostringstream out;
  PrintTable(SampleRun(), out);
  const std::string text = out.str();
  EXPECT_EQ(text.find(" site "), std::string::npos) << text;
  EXPECT_EQ(text.find(" role "), std::string::npos) << text;
  EXPECT_EQ(text.find("service"), std::string::npos) << text;
  EXPECT_EQ(text.find("comparison"), std::string::npos) << text;
}

TEST(PrintTableTest, SaysWhichFilesAndImageTheRunWasMadeOf) {
  RunResult run = SampleRun();
  std::ostringstream without;
  PrintTable(run, without);
  EXPECT_EQ(without.str().find("  from "), std::string::npos) << without.str();
  run.inputs = R"({"scenario_file":"/lab/playbooks/scenarios/channel-291.yaml",)"
               R"("image":{"name":"winsim","kind":"winsim","dir":"/cache/winsim"}})";
  std::ostringstream with;
  PrintTable(run, with);
  EXPECT_EQ(LineStartingWith(with.str(), "from"),
            "  from /lab/playbooks/scenarios/channel-291.yaml  image winsim (winsim)")
      << with.str();
}

TEST(ToJsonTest, InputsAreAnObjectEvenWhenTheJournalRowIsNot) {
  RunResult run = SampleRun();
  EXPECT_EQ(ToJson(run)["inputs"], nlohmann::json::object());  // not known: "{}"
  run.inputs = R"({"scenario_file":"/lab/playbooks/scenarios/channel-291.yaml","seed":42})";
  EXPECT_EQ(ToJson(run)["inputs"]["seed"], 42);
  EXPECT_EQ(ToJson(run)["inputs"]["scenario_file"], "/lab/playbooks/scenarios/channel-291.yaml");
  for (const char* damaged : {"", "[1,2]", "{\"cut", "null"}) {
    run.inputs = damaged;
    EXPECT_EQ(ToJson(run)["inputs"], nlohmann::json::object()) << damaged;
  }
}

TEST(ToJsonTest, RunbookFieldsAndServices) {
  const nlohmann::json j = ToJson(RunbookRun());
  EXPECT_EQ(j["setup"], "hospital");
  EXPECT_EQ(j["comparison_id"], "c-1");
  EXPECT_EQ(j["repetition"], 1);
  EXPECT_DOUBLE_EQ(j["release_s"].get<double>(), 14940);
  const auto& recovery = j["fleet"]["recovery"];
  EXPECT_DOUBLE_EQ(recovery["p50_s"].get<double>(), 754);
  EXPECT_DOUBLE_EQ(recovery["healthy_50_s"].get<double>(), 824);
  EXPECT_TRUE(recovery["healthy_90_s"].is_null());
  EXPECT_DOUBLE_EQ(j["fleet"]["technician_s"].get<double>(), 1500);
  EXPECT_EQ(j["fleet"]["keys_fetched"], 1);
  EXPECT_EQ(j["fleet"]["data_lost_hosts"], 1);
  EXPECT_DOUBLE_EQ(j["fleet"]["data_lost_s"].get<double>(), 7200);
  const auto& ws = j["hosts"][0];
  EXPECT_EQ(ws["site"], "main");
  EXPECT_EQ(ws["role"], "workstation");
  EXPECT_EQ(ws["bitlocker"], true);
  EXPECT_DOUBLE_EQ(ws["recovered_at_s"].get<double>(), 824);
  EXPECT_EQ(ws["recovered_by"], "safe-mode-delete");
  EXPECT_DOUBLE_EQ(ws["waited_s"].get<double>(), 4200);
  EXPECT_EQ(ws["waited_for"], "key-escrow");
  EXPECT_EQ(ws["keys_fetched"], 1);
  EXPECT_TRUE(ws["data_lost"].is_null());
  const auto& dc = j["hosts"][1];
  EXPECT_EQ(dc["data_lost"], "all");
  EXPECT_EQ(dc["failed_why"], "no technician");
  ASSERT_EQ(j["services"].size(), 2u);
  EXPECT_EQ(j["services"][0]["name"], "crew-scheduling");
  EXPECT_DOUBLE_EQ(j["services"][0]["downtime_s"].get<double>(), 5400);
  EXPECT_DOUBLE_EQ(j["services"][0]["up_again_s"].get<double>(), 5410);
  EXPECT_TRUE(j["services"][1]["up_again_s"].is_null());
  EXPECT_EQ(j["services"][1]["up_at_end"], false);
}

}  // namespace
TEST(PrintTableTest, RebootRaceByNetworkProfile) {
  RunResult run;
  run.run_id = "race";
  auto host = [](std::string id, std::string net, int reboots, bool recovered) {
    HostResult h;
    h.id = id;
    h.group = net;
    h.network = net;
    h.crashes = reboots + 2;
    h.reboots = reboots;
    h.recovered = recovered;
    if (recovered) h.recovered_by = "reboot";
    return h;
  };
  run.hosts = {host("w1", "wired", 1, true), host("w2", "wired", 3, true),
               host("v1", "vpn", 15, false), host("v2", "vpn", 4, true),
               host("c", "wired", 0, false)};  // never rebooted: not counted
  Summarize(&run);
  std::ostringstream out;
  PrintTable(run, out);
  const std::string text = out.str();
  ASSERT_NE(text.find("Reboots until recovery by network profile"), std::string::npos) << text;
  EXPECT_NE(text.find("wired        2         4  1×1 3×1"), std::string::npos) << text;
  EXPECT_NE(text.find("vpn          2        19  4×1"), std::string::npos) << text;
  EXPECT_NE(text.find("50 %"), std::string::npos) << text;  // wired: 2 came back in 4 boots
}

// A comparison's repetitions add up: hosts, attempts, the distribution and the guests' fetch times.
TEST(RebootRaceTest, AggregatesRunsPerNetworkProfile) {
  auto host = [](std::string net, int reboots, bool recovered, std::vector<int> fetch) {
    HostResult h;
    h.network = net;
    h.reboots = reboots;
    h.recovered = recovered;
    if (recovered) h.recovered_by = "reboot";
    h.race_fetch_ms = fetch;
    return h;
  };
  RunResult a, b;
  a.hosts = {host("wired", 1, true, {300}), host("wifi", 3, true, {520, 440})};
  b.hosts = {host("wired", 2, true, {470, 310}), host("wifi", 15, false, {}),
             host("vpn", 0, true, {})};  // recovered without a reboot: no race attempt
  b.method = "second";
  a.method = "At most 2 guests booted at once.";
  std::vector<RaceFigures> race = RebootRace({&a, &b});
  ASSERT_EQ(race.size(), 2u);
  EXPECT_EQ(race[0].network, "wired");
  EXPECT_EQ(race[0].hosts, 2);
  EXPECT_EQ(race[0].attempts, 3);
  EXPECT_EQ(race[0].recovered_after, (std::vector<std::pair<int, long long>>{{1, 1}, {2, 1}}));
  EXPECT_EQ(race[0].never, 0);
  EXPECT_EQ(race[0].fetch_ms.size(), 3u);
  EXPECT_EQ(race[1].network, "wifi");
  EXPECT_EQ(race[1].attempts, 18);
  EXPECT_EQ(race[1].recovered_after, (std::vector<std::pair<int, long long>>{{3, 1}}));
  EXPECT_EQ(race[1].never, 1);

  std::ostringstream out;
  PrintRebootRace({&a, &b}, out);
  const std::string text = out.str();
  EXPECT_NE(text.find("real guests, 2 runs"), std::string::npos) << text;
  EXPECT_NE(text.find("310 [300-470] n=3"), std::string::npos) << text;  // wired fetch ms
  EXPECT_NE(text.find("How measured: At most 2 guests booted at once."), std::string::npos) << text;
}

// A simulated run's rows stand for many hosts each: the race table counts hosts, not rows.
TEST(RebootRaceTest, WeighsRowsByHosts) {
  auto row = [](int reboots, bool recovered, long long weight) {
    HostResult h;
    h.network = "wired";
    h.reboots = reboots;
    h.recovered = recovered;
    if (recovered) h.recovered_by = "reboot";
    h.weight = weight;
    return h;
  };
  RunResult run;
  run.backend = "sim";
  run.hosts = {row(1, true, 600), row(2, true, 300), row(15, false, 100), row(2, true, 1)};
  std::vector<RaceFigures> race = RebootRace({&run});
  ASSERT_EQ(race.size(), 1u);
  EXPECT_EQ(race[0].hosts, 1001);
  EXPECT_EQ(race[0].attempts, 600 + 2 * 301 + 1500);
  EXPECT_EQ(race[0].recovered_after, (std::vector<std::pair<int, long long>>{{1, 600}, {2, 301}}));
  EXPECT_EQ(race[0].recovered(), 901);
  EXPECT_EQ(race[0].never, 100);
  std::ostringstream out;
  PrintRebootRace({&run}, out);
  const std::string text = out.str();
  EXPECT_NE(text.find("simulated hosts"), std::string::npos) << text;
  // 1001 hosts, 2702 attempts, 1×600 2×301, median 1 (the 451st of 901), 100 never, 33 %.
  EXPECT_NE(text.find("wired     1001      2702  1×600 2×301"), std::string::npos) << text;
  EXPECT_NE(text.find("  1    100          33 %"), std::string::npos) << text;
}

}  // namespace chaoslab
