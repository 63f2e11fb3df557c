#include "lab/dashboard/debrief.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace chaoslab::dashboard {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool IsRestart(const std::string& line) {
  const std::string l = Lower(Trim(line));
  return l == "restart" || l == "reboot" || l == "wpeutil reboot";
}

// "deleted=<n>" of a `cmd=del` line.
int Deleted(const std::string& detail) {
  size_t p = detail.find("deleted=");
  return p == std::string::npos ? 0 : std::atoi(detail.c_str() + p + 8);
}

}  // namespace

json DownCurve(const RunResult& run) {
  std::vector<std::pair<double, int>> steps;
  for (const auto& h : run.hosts) {
    if (!h.first_crash_s) continue;
    steps.push_back({*h.first_crash_s, static_cast<int>(h.weight)});
    if (h.recovered_at_s) steps.push_back({*h.recovered_at_s, -static_cast<int>(h.weight)});
  }
  std::sort(steps.begin(), steps.end());
  json curve = json::array({json::array({0.0, 0})});
  int down = 0;
  for (const auto& [t, d] : steps) {
    down += d;
    if (curve.back()[0].get<double>() == t) {
      curve.back()[1] = down;
    } else {
      curve.push_back(json::array({t, down}));
    }
  }
  return curve;
}

json MakeDebrief(const RunResult& team, const std::vector<JournalEvent>& events,
                 const std::vector<JournalAction>& actions, const Baseline& baseline,
                 double revert_s) {
  json mistakes = json::array();
  std::map<std::string, bool> deleted;  // host → a del worked since its last boot choice
  std::map<std::string, double> first_touch;
  for (const auto& e : events) {
    const bool touch = e.kind == "boot-menu" || e.kind == "console-input";
    if (touch && !e.host_id.empty() && !first_touch.count(e.host_id))
      first_touch[e.host_id] = e.scenario_s;
    if (e.kind == "boot-menu") deleted[e.host_id] = false;
    if (e.kind == "command" && e.detail.find("cmd=del ") != std::string::npos &&
        e.detail.find("rc=0") != std::string::npos && Deleted(e.detail) > 0)
      deleted[e.host_id] = true;
    if (e.kind == "command" && e.detail.find("cmd=unlock") != std::string::npos &&
        e.detail.find("bad-password") != std::string::npos) {
      mistakes.push_back({{"host", e.host_id},
                          {"t", e.scenario_s},
                          {"kind", "wrong-password"},
                          {"what", "a wrong BitLocker recovery password was typed"}});
    }
    if (e.kind == "console-input" && IsRestart(e.detail)) {
      if (!deleted[e.host_id]) {
        mistakes.push_back({{"host", e.host_id},
                            {"t", e.scenario_s},
                            {"kind", "restart-before-delete"},
                            {"what", "restarted before the bad channel file was deleted"}});
      } else if (e.scenario_s < revert_s) {
        mistakes.push_back({{"host", e.host_id},
                            {"t", e.scenario_s},
                            {"kind", "restart-before-revert"},
                            {"what",
                             "restarted while the faulty content was still out: it "
                             "fetches the bad file again"}});
      }
    }
  }
  int keys = 0, key_failures = 0, typed = 0;
  json eta = json::array();
  for (const auto& a : actions) {
    if (a.kind == "reimage") {
      mistakes.push_back({{"host", a.host_id},
                          {"t", a.scenario_s},
                          {"kind", "reimage"},
                          {"what",
                           "reimaged (all local data lost) where deleting one file would "
                           "have done"}});
    }
    keys += a.kind == "key-fetch";
    key_failures += a.kind == "key-fetch-failed";
    typed += a.kind == "console";
    if (a.kind == "eta-ask" || a.kind == "eta-answer") {
      eta.push_back({{"t", a.scenario_s}, {"role", a.role}, {"kind", a.kind}, {"text", a.detail}});
    }
  }
  std::sort(mistakes.begin(), mistakes.end(),
            [](const json& a, const json& b) { return a["t"] < b["t"]; });

  json hosts = json::array();
  const double release = team.release_s;
  for (const auto& h : team.hosts) {
    if (!h.first_crash_s) continue;
    json row = {{"host", h.id},
                {"group", h.group},
                {"bitlocker", h.bitlocker},
                {"crashes", h.crashes},
                {"final_state", h.final_state},
                {"recovered_by", h.recovered_by},
                {"first_crash_s", *h.first_crash_s},
                {"time_to_recover_s", h.time_to_recover_s ? json(*h.time_to_recover_s) : json()}};
    if (first_touch.count(h.id)) {
      const double touched = first_touch[h.id] - release;
      row["first_action_s"] = touched;
      if (h.recovered_at_s) row["hands_on_s"] = *h.recovered_at_s - touched;
    }
    hosts.push_back(row);
  }

  json out = {{"run_id", team.run_id},
              {"scenario", team.scenario},
              {"setup", team.setup},
              {"team",
               {{"curve", DownCurve(team)},
                {"end_s", team.scenario_end_s - team.release_s},
                {"crashed", team.fleet.crashed},
                {"recovered", team.fleet.recovered}}},
              {"hosts", hosts},
              {"mistakes", mistakes},
              {"keys_fetched", keys},
              {"key_fetch_failures", key_failures},
              {"console_lines", typed},
              {"actions", actions.size()},
              {"eta", eta}};
  if (baseline.available) {
    out["baseline"] = {{"runbook", baseline.run.runbook},
                       {"backend", baseline.run.backend},
                       {"how", baseline.how},
                       {"curve", DownCurve(baseline.run)},
                       {"crashed", baseline.run.fleet.crashed},
                       {"recovered", baseline.run.fleet.recovered}};
  } else {
    out["baseline"] = {{"how", baseline.how}};
  }
  return out;
}

}  // namespace chaoslab::dashboard
