#include "lab/report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "lab/common/json_text.h"
#include "lab/report/text_table.h"

namespace chaoslab {
namespace {

// The journal keeps a run's inputs as JSON text; an older or damaged row reads as no inputs.
nlohmann::json InputsJson(const std::string& text) {
  nlohmann::json inputs = nlohmann::json::parse(text, nullptr, false);
  return inputs.is_object() ? inputs : nlohmann::json::object();
}

// "name (kind)" of the image and the files a run was read from, when the journal has them.
std::string InputsLine(const nlohmann::json& inputs) {
  auto text = [&](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                                  : std::string();
  };
  std::string line;
  const auto add = [&](const std::string& label, const std::string& value) {
    if (value.empty()) return;
    line += (line.empty() ? "" : "  ") + label + " " + value;
  };
  add("from", text(inputs, "scenario_file"));
  if (inputs.contains("image")) {
    const std::string kind = text(inputs["image"], "kind");
    add("image", text(inputs["image"], "name") + (kind.empty() ? "" : " (" + kind + ")"));
  }
  return line;
}

using report_internal::TextTable;

constexpr const char* kNone = "–";  // shown for values that do not exist (no recovery, no crash)

// Seconds as [-]mm:ss below an hour, [-]h:mm:ss from an hour on (e.g. 12:34, 2:05:00).
std::string Duration(double seconds) {
  long long total = std::llround(std::fabs(seconds));
  const char* sign = seconds < 0 && total > 0 ? "-" : "";
  if (total < 3600) return fmt::format("{}{:02}:{:02}", sign, total / 60, total % 60);
  return fmt::format("{}{}:{:02}:{:02}", sign, total / 3600, total / 60 % 60, total % 60);
}

std::string OptDuration(const std::optional<double>& seconds) {
  return seconds ? Duration(*seconds) : kNone;
}

std::string Hours(double seconds) { return fmt::format("{:.1f}", seconds / 3600.0); }

// Seconds since midnight as HH:MM, with "+Nd" once the scenario runs past midnight.
std::string ClockTime(double seconds_since_midnight) {
  long long minutes = std::llround(seconds_since_midnight / 60.0);
  if (minutes < 0) minutes = 0;
  long long days = minutes / (24 * 60);
  std::string hhmm = fmt::format("{:02}:{:02}", (minutes / 60) % 24, minutes % 60);
  return days > 0 ? fmt::format("{} (+{}d)", hhmm, days) : hhmm;
}

std::string Percent(double fraction) { return fmt::format("{:.1f}", fraction * 100.0); }

std::vector<std::string> GroupRow(const GroupResult& g) {
  return {g.name,
          std::to_string(g.hosts),
          std::to_string(g.exposed),
          std::to_string(g.crashed),
          Percent(g.crash_rate),
          Percent(g.boot_loop_rate),
          std::to_string(g.recovered),
          std::to_string(g.failed),
          std::to_string(g.lost),
          OptDuration(g.mttr_s)};
}

nlohmann::json Optional(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json GroupJson(const GroupResult& g) {
  nlohmann::json out = {{"name", g.name},
                        {"hosts", g.hosts},
                        {"exposed", g.exposed},
                        {"crashed", g.crashed},
                        {"boot_looped", g.boot_looped},
                        {"crash_rate", g.crash_rate},
                        {"boot_loop_rate", g.boot_loop_rate},
                        {"recovered", g.recovered},
                        {"failed", g.failed},
                        {"lost", g.lost},
                        {"mttr_s", Optional(g.mttr_s)},
                        {"recovery",
                         {{"p50_s", Optional(g.recovery.p50_s)},
                          {"p90_s", Optional(g.recovery.p90_s)},
                          {"p99_s", Optional(g.recovery.p99_s)},
                          {"healthy_50_s", Optional(g.recovery.healthy_50_s)},
                          {"healthy_90_s", Optional(g.recovery.healthy_90_s)},
                          {"healthy_99_s", Optional(g.recovery.healthy_99_s)}}},
                        {"technician_s", g.technician_s},
                        {"keys_fetched", g.keys_fetched},
                        {"data_lost_hosts", g.data_lost_hosts},
                        {"data_lost_s", g.data_lost_s}};
  // Only where a runbook escalated, so runs without on_failure read as before.
  if (g.escalated > 0) out["escalated"] = g.escalated;
  return out;
}

// The second group table: how fast the group came back and what it cost.
std::vector<std::string> RecoveryRow(const GroupResult& g) {
  return {g.name,
          OptDuration(g.recovery.p50_s),
          OptDuration(g.recovery.p90_s),
          OptDuration(g.recovery.p99_s),
          OptDuration(g.recovery.healthy_50_s),
          OptDuration(g.recovery.healthy_90_s),
          OptDuration(g.recovery.healthy_99_s),
          Hours(g.technician_s),
          std::to_string(g.keys_fetched),
          std::to_string(g.data_lost_hosts),
          Hours(g.data_lost_s)};
}

// What else happened to a host, only the parts that apply (most hosts have none).
std::string HostNotes(const HostResult& h) {
  std::vector<std::string> notes;
  if (!h.ring.empty()) notes.push_back("ring " + h.ring);
  if (h.bitlocker) notes.push_back("BitLocker");
  if (h.technician_s > 0) notes.push_back("technician " + Duration(h.technician_s));
  if (h.keys_fetched > 0) notes.push_back(fmt::format("keys {}", h.keys_fetched));
  if (h.escalations > 0) notes.push_back(fmt::format("escalated {}x", h.escalations));
  if (h.waited_s > 0) {
    notes.push_back("waited " + Duration(h.waited_s) +
                    (h.waited_for.empty() ? "" : " for " + h.waited_for));
  }
  if (!h.data_lost.empty()) {
    notes.push_back("data lost (" + h.data_lost + ", " + Duration(h.data_lost_s) + ")");
  }
  if (!h.failed_why.empty()) notes.push_back("why: " + h.failed_why);
  std::string text;
  for (const std::string& note : notes) text += (text.empty() ? "" : "; ") + note;
  return text;
}

nlohmann::json ServiceJson(const ServiceResult& s) {
  return {{"name", s.name},
          {"downtime_s", s.downtime_s},
          {"down_at_s", Optional(s.down_at_s)},
          {"up_again_s", Optional(s.up_again_s)},
          {"up_at_end", s.up_at_end},
          {"catching_up_s", s.catching_up_s}};
}

nlohmann::json HostJson(const HostResult& h) {
  auto text_or_null = [](const std::string& text) {
    return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
  };
  nlohmann::json out = {{"id", h.id},
                        {"weight", h.weight},
                        {"group", h.group},
                        {"site", text_or_null(h.site)},
                        {"role", text_or_null(h.role)},
                        {"bitlocker", h.bitlocker},
                        {"state", h.final_state},
                        {"exposed", h.exposed},
                        {"crashes", h.crashes},
                        {"first_crash_s", Optional(h.first_crash_s)},
                        {"boot_loop", h.boot_loop},
                        {"recovered", h.recovered},
                        {"reboots", h.reboots},
                        {"time_to_recover_s", Optional(h.time_to_recover_s)},
                        {"recovered_at_s", Optional(h.recovered_at_s)},
                        {"recovered_by", text_or_null(h.recovered_by)},
                        {"stop_code", text_or_null(h.stop_code)},
                        {"technician_s", h.technician_s},
                        {"waited_s", h.waited_s},
                        {"waited_for", text_or_null(h.waited_for)},
                        {"keys_fetched", h.keys_fetched},
                        {"data_lost", text_or_null(h.data_lost)},
                        {"data_lost_s", h.data_lost_s},
                        {"failed_why", text_or_null(h.failed_why)},
                        {"ring", text_or_null(h.ring)},
                        {"network", text_or_null(h.network)},
                        {"race_fetch_ms", h.race_fetch_ms}};
  if (h.escalations > 0) out["escalations"] = h.escalations;
  return out;
}

double Median(std::vector<int> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

}  // namespace

std::vector<RaceFigures> RebootRace(const std::vector<const RunResult*>& runs) {
  std::vector<RaceFigures> out;
  auto find = [&](const std::string& net) -> RaceFigures& {
    for (auto& f : out)
      if (f.network == net) return f;
    out.push_back(RaceFigures{});
    out.back().network = net;
    return out.back();
  };
  std::vector<std::map<int, long long>> recovered;  // per profile: reboots -> hosts
  for (const RunResult* run : runs) {
    for (const HostResult& h : run->hosts) {
      if (h.reboots <= 0) continue;
      RaceFigures& f = find(h.network.empty() ? "-" : h.network);
      recovered.resize(out.size());
      const long long w = h.weight;
      f.hosts += w;
      f.attempts += w * h.reboots;
      if (h.recovered && h.recovered_by == "reboot") {
        recovered[static_cast<size_t>(&f - out.data())][h.reboots] += w;
      } else {
        f.never += w;
      }
      f.fetch_ms.insert(f.fetch_ms.end(), h.race_fetch_ms.begin(), h.race_fetch_ms.end());
    }
  }
  for (size_t i = 0; i < out.size(); ++i)
    out[i].recovered_after.assign(recovered[i].begin(), recovered[i].end());
  return out;
}

void PrintRebootRace(const std::vector<const RunResult*>& runs, std::ostream& out) {
  std::vector<RaceFigures> race = RebootRace(runs);
  if (race.empty()) return;
  out << fmt::format(
      "  Reboots until recovery by network profile (boot attempts after the revert, {}{}):\n",
      runs.front()->backend == "sim" ? "simulated hosts" : "real guests",
      runs.size() > 1 ? fmt::format(", {} runs", runs.size()) : "");
  TextTable table({"network", "hosts", "attempts", "recovered after N reboots (N×hosts)", "median",
                   "never", "won per boot", "fetch ms p50 [p10-p90]"},
                  {false, true, true, false, true, true, true, false});
  for (const RaceFigures& f : race) {
    std::string hist;
    for (const auto& [reboots, hosts] : f.recovered_after)
      hist += fmt::format("{}{}×{}", hist.empty() ? "" : " ", reboots, hosts);
    // Weighted median of the reboots (the mean of the two middle ones for an even count).
    const long long recovered = f.recovered();
    auto nth = [&](long long k) {  // k-th smallest, 0-based
      for (const auto& [reboots, hosts] : f.recovered_after) {
        if (k < hosts) return reboots;
        k -= hosts;
      }
      return 0;
    };
    const double median =
        recovered % 2 ? nth(recovered / 2) : (nth(recovered / 2 - 1) + nth(recovered / 2)) / 2.0;
    std::string fetch = "-";
    if (!f.fetch_ms.empty()) {
      std::vector<int> v = f.fetch_ms;
      std::sort(v.begin(), v.end());
      auto at = [&](double q) { return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)]; };
      fetch = fmt::format("{:.0f} [{}-{}] n={}", Median(v), at(0.1), at(0.9), v.size());
    }
    table.AddRow({f.network, std::to_string(f.hosts), std::to_string(f.attempts),
                  hist.empty() ? "-" : hist, recovered == 0 ? "-" : fmt::format("{:g}", median),
                  std::to_string(f.never),
                  f.attempts ? fmt::format("{:.0f} %", 100.0 * static_cast<double>(recovered) /
                                                           static_cast<double>(f.attempts))
                             : "-",
                  fetch});
  }
  table.Print(out);
  out << "  (won per boot: hosts that came back ÷ boot attempts, the chance one boot wins the "
         "race; "
         "fetch ms: sensor start → newer content fetched, in boots whose fetch finished)\n";
  if (!runs.front()->method.empty()) out << "  How measured: " << runs.front()->method << "\n";
  out << '\n';
}

void PrintTable(const RunResult& run, std::ostream& out) {
  out << fmt::format("Run {}  [{}]\n", run.run_id, run.status);
  out << fmt::format("  scenario {}  runbook {}  setup {}  backend {}  seed {}\n", run.scenario,
                     run.runbook, run.setup.empty() ? kNone : run.setup, run.backend, run.seed);
  if (std::string inputs = InputsLine(InputsJson(run.inputs)); !inputs.empty()) {
    out << "  " << inputs << "\n";
  }
  if (!run.comparison_id.empty()) {
    out << fmt::format("  comparison {}  repetition {}\n", run.comparison_id, run.repetition + 1);
  }
  out << fmt::format("  started {}  wall time {:.1f} s  release {}  scenario end {}\n\n",
                     run.started_at.empty() ? kNone : run.started_at, run.wall_s,
                     ClockTime(run.release_s), ClockTime(run.scenario_end_s));

  TextTable groups({"group", "hosts", "exposed", "crashed", "crash %", "boot-loop %", "recovered",
                    "failed", "lost", "MTTR"},
                   {false, true, true, true, true, true, true, true, true, true});
  for (const GroupResult& g : run.groups) groups.AddRow(GroupRow(g));
  groups.AddRule();
  groups.AddRow(GroupRow(run.fleet));
  groups.Print(out);
  if (run.fleet.escalated > 0) {
    out << fmt::format(
        "  escalated (on_failure): {} of {} crashed hosts moved on to a fallback "
        "runbook\n",
        run.fleet.escalated, run.fleet.crashed);
  }
  out << '\n';

  out << "  Time to recover (percentiles) and until a share of hosts is healthy for good, after "
         "release:\n";
  TextTable recovery({"group", "p50", "p90", "p99", "50 % up", "90 % up", "99 % up", "technician h",
                      "keys", "data lost", "data lost h"},
                     {false, true, true, true, true, true, true, true, true, true, true});
  for (const GroupResult& g : run.groups) recovery.AddRow(RecoveryRow(g));
  recovery.AddRule();
  recovery.AddRow(RecoveryRow(run.fleet));
  recovery.Print(out);
  out << '\n';

  PrintRebootRace({&run}, out);

  if (!run.services.empty()) {
    // "catching up" (part of the downtime) only when a service worked off a backlog, so other runs
    // stay narrow.
    const bool any_backlog =
        std::any_of(run.services.begin(), run.services.end(),
                    [](const ServiceResult& s) { return s.catching_up_s > 0; });
    std::vector<std::string> heads = {"service", "downtime", "down at", "up again", "at end"};
    std::vector<bool> right = {false, true, true, true, false};
    if (any_backlog) {
      heads.insert(heads.begin() + 2, "catching up");
      right.insert(right.begin() + 2, true);
    }
    TextTable services(heads, right);
    for (const ServiceResult& s : run.services) {
      std::vector<std::string> row = {
          s.name, Duration(s.downtime_s), s.down_at_s ? "+" + Duration(*s.down_at_s) : kNone,
          s.up_again_s ? "+" + Duration(*s.up_again_s) : kNone, s.up_at_end ? "up" : "down"};
      if (any_backlog) row.insert(row.begin() + 2, Duration(s.catching_up_s));
      services.AddRow(row);
    }
    services.Print(out);
    out << '\n';
  }

  // Site, role and "recovered by" only when the run has them, so a plain run stays narrow.
  bool any_site = false, any_role = false, any_by = false;
  for (const HostResult& h : run.hosts) {
    any_site |= !h.site.empty();
    any_role |= !h.role.empty();
    any_by |= !h.recovered_by.empty();
  }
  std::vector<std::string> header = {"host", "group"};
  std::vector<bool> right = {false, false};
  auto column = [&](bool wanted, const char* name, bool right_aligned) {
    if (!wanted) return;
    header.push_back(name);
    right.push_back(right_aligned);
  };
  column(any_site, "site", false);
  column(any_role, "role", false);
  column(true, "state", false);
  column(true, "crashes", true);
  column(true, "first crash", true);
  column(true, "boot-loop", false);
  column(true, "recovered", false);
  column(true, "recover", true);
  column(any_by, "by", false);
  column(true, "stop code", false);
  column(true, "notes", false);
  // A simulated run may fold hosts into weighted rows: then the heaviest rows only, with how many
  // hosts each stands for (`--json` lists every row).
  bool weighted = false;
  for (const HostResult& h : run.hosts) weighted |= h.weight != 1;
  std::vector<const HostResult*> shown;
  for (const HostResult& h : run.hosts) shown.push_back(&h);
  constexpr size_t kWeightedRows = 30;
  if (weighted) {
    header.insert(header.begin() + 2, "hosts");
    right.insert(right.begin() + 2, true);
    std::stable_sort(shown.begin(), shown.end(), [](const HostResult* a, const HostResult* b) {
      return a->weight > b->weight;
    });
    if (shown.size() > kWeightedRows) shown.resize(kWeightedRows);
  }
  TextTable hosts(header, right);
  for (const HostResult* shown_host : shown) {
    const HostResult& h = *shown_host;
    std::vector<std::string> row = {h.id, h.group};
    if (weighted) row.push_back(std::to_string(h.weight));
    if (any_site) row.push_back(h.site.empty() ? kNone : h.site);
    if (any_role) row.push_back(h.role.empty() ? kNone : h.role);
    row.insert(row.end(), {h.final_state, std::to_string(h.crashes),
                           h.first_crash_s ? "+" + Duration(*h.first_crash_s) : kNone,
                           h.boot_loop ? "yes" : "no", h.recovered ? "yes" : "no",
                           OptDuration(h.time_to_recover_s)});
    if (any_by) row.push_back(h.recovered_by.empty() ? kNone : h.recovered_by);
    row.push_back(h.stop_code.empty() ? kNone : h.stop_code);
    row.push_back(HostNotes(h));
    hosts.AddRow(std::move(row));
  }
  hosts.Print(out);
  if (weighted && run.hosts.size() > shown.size()) {
    out << fmt::format(
        "  ... {} more rows (each stands for hosts with the same figures; --json "
        "lists them all)\n",
        run.hosts.size() - shown.size());
  }
}

std::string ToJsonText(const RunResult& run) { return JsonText(ToJson(run), 2); }

nlohmann::json ToJson(const RunResult& run) {
  nlohmann::json groups = nlohmann::json::array();
  for (const GroupResult& g : run.groups) groups.push_back(GroupJson(g));
  nlohmann::json hosts = nlohmann::json::array();
  for (const HostResult& h : run.hosts) hosts.push_back(HostJson(h));
  nlohmann::json services = nlohmann::json::array();
  for (const ServiceResult& s : run.services) services.push_back(ServiceJson(s));
  return {{"run_id", run.run_id},
          {"comparison_id",
           run.comparison_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.comparison_id)},
          {"repetition", run.repetition},
          {"scenario", run.scenario},
          {"runbook", run.runbook},
          {"setup", run.setup},
          {"backend", run.backend},
          {"seed", run.seed},
          {"status", run.status},
          {"started_at", run.started_at},
          {"wall_s", run.wall_s},
          {"release_s", run.release_s},
          {"scenario_end_s", run.scenario_end_s},
          {"method", run.method},
          {"inputs", InputsJson(run.inputs)},
          {"fleet", GroupJson(run.fleet)},
          {"groups", std::move(groups)},
          {"hosts", std::move(hosts)},
          {"services", std::move(services)}};
}

}  // namespace chaoslab
