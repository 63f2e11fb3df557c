#include "lab/report/report.h"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

namespace chaoslab {
namespace {

constexpr const char* kNone = "–";  // shown for values that do not exist (no recovery, no crash)

// Seconds as [-]mm:ss, minutes unbounded (e.g. 125:03).
std::string MinSec(double seconds) {
  long long total = std::llround(std::fabs(seconds));
  return fmt::format("{}{:02}:{:02}", seconds < 0 && total > 0 ? "-" : "", total / 60, total % 60);
}

// Seconds since midnight as HH:MM, with "+Nd" once the scenario runs past midnight.
std::string ClockTime(double seconds_since_midnight) {
  long long minutes = std::llround(seconds_since_midnight / 60.0);
  if (minutes < 0) minutes = 0;
  long long days = minutes / (24 * 60);
  std::string hhmm = fmt::format("{:02}:{:02}", (minutes / 60) % 24, minutes % 60);
  return days > 0 ? fmt::format("{} (+{}d)", hhmm, days) : hhmm;
}

std::string Percent(double fraction) { return fmt::format("{:.1f}", fraction * 100.0); }

// Display width of UTF-8 text: counts code points, not bytes (so "–" is one column).
size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

// A plain-text table whose columns are as wide as their widest cell. Not thread-safe.
class TextTable {
 public:
  // `right_aligned[i]` says whether column i holds numbers (right-aligned).
  TextTable(std::vector<std::string> header, std::vector<bool> right_aligned)
      : right_(std::move(right_aligned)) {
    rows_.push_back(std::move(header));
  }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void AddRule() { rows_.push_back({}); }  // an empty row prints as a dashed line

  void Print(std::ostream& out) const {
    std::vector<size_t> widths(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        widths[i] = std::max(widths[i], Width(row[i]));
      }
    }
    size_t total = 0;
    for (size_t w : widths) total += w + 2;
    for (const auto& row : rows_) {
      std::string line;
      if (row.empty()) line.assign(total - 2, '-');
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        std::string pad(widths[i] - Width(row[i]), ' ');
        if (i > 0) line += "  ";
        line += right_[i] ? pad + row[i] : row[i] + pad;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << "  " << line << '\n';
    }
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

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
          g.mttr_s ? MinSec(*g.mttr_s) : kNone};
}

nlohmann::json Optional(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json GroupJson(const GroupResult& g) {
  return {{"name", g.name},
          {"hosts", g.hosts},
          {"exposed", g.exposed},
          {"crashed", g.crashed},
          {"boot_looped", g.boot_looped},
          {"crash_rate", g.crash_rate},
          {"boot_loop_rate", g.boot_loop_rate},
          {"recovered", g.recovered},
          {"failed", g.failed},
          {"lost", g.lost},
          {"mttr_s", Optional(g.mttr_s)}};
}

}  // namespace

void PrintTable(const RunResult& run, std::ostream& out) {
  out << fmt::format("Run {}  [{}]\n", run.run_id, run.status);
  out << fmt::format("  scenario {}  runbook {}  backend {}  seed {}\n", run.scenario, run.runbook,
                     run.backend, run.seed);
  out << fmt::format("  started {}  wall time {:.1f} s  scenario end {}\n\n",
                     run.started_at.empty() ? kNone : run.started_at, run.wall_s,
                     ClockTime(run.scenario_end_s));

  TextTable groups({"group", "hosts", "exposed", "crashed", "crash %", "boot-loop %", "recovered",
                    "failed", "lost", "MTTR"},
                   {false, true, true, true, true, true, true, true, true, true});
  for (const GroupResult& g : run.groups) groups.AddRow(GroupRow(g));
  groups.AddRule();
  groups.AddRow(GroupRow(run.fleet));
  groups.Print(out);
  out << '\n';

  TextTable hosts({"host", "group", "state", "crashes", "first crash", "boot-loop", "recovered",
                   "recover", "stop code"},
                  {false, false, false, true, true, false, false, true, false});
  for (const HostResult& h : run.hosts) {
    hosts.AddRow({h.id, h.group, h.final_state, std::to_string(h.crashes),
                  h.first_crash_s ? "+" + MinSec(*h.first_crash_s) : kNone,
                  h.boot_loop ? "yes" : "no", h.recovered ? "yes" : "no",
                  h.time_to_recover_s ? MinSec(*h.time_to_recover_s) : kNone,
                  h.stop_code.empty() ? kNone : h.stop_code});
  }
  hosts.Print(out);
}

nlohmann::json ToJson(const RunResult& run) {
  nlohmann::json groups = nlohmann::json::array();
  for (const GroupResult& g : run.groups) groups.push_back(GroupJson(g));
  nlohmann::json hosts = nlohmann::json::array();
  for (const HostResult& h : run.hosts) {
    hosts.push_back({{"id", h.id},
                     {"group", h.group},
                     {"state", h.final_state},
                     {"exposed", h.exposed},
                     {"crashes", h.crashes},
                     {"first_crash_s", Optional(h.first_crash_s)},
                     {"boot_loop", h.boot_loop},
                     {"recovered", h.recovered},
                     {"reboots", h.reboots},
                     {"time_to_recover_s", Optional(h.time_to_recover_s)},
                     {"stop_code", h.stop_code.empty() ? nlohmann::json(nullptr)
                                                       : nlohmann::json(h.stop_code)}});
  }
  return {{"run_id", run.run_id},
          {"scenario", run.scenario},
          {"runbook", run.runbook},
          {"backend", run.backend},
          {"seed", run.seed},
          {"status", run.status},
          {"started_at", run.started_at},
          {"wall_s", run.wall_s},
          {"scenario_end_s", run.scenario_end_s},
          {"fleet", GroupJson(run.fleet)},
          {"groups", std::move(groups)},
          {"hosts", std::move(hosts)}};
}

}  // namespace chaoslab
