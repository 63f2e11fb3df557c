#include "tests/soak/soak_checks.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <tuple>

namespace chaoslab::soak {

JournalView ReadJournal(const std::string& path, const std::string& run_id) {
  JournalView view;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    view.error = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return view;
  }
  sqlite3_busy_timeout(db, 120'000);
  auto query = [&](const char* sql, auto&& row) -> bool {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
      view.error = std::string(sql) + ": " + sqlite3_errmsg(db);
      return false;
    }
    sqlite3_bind_text(st, 1, run_id.c_str(), -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) view.error = std::string(sql) + ": " + sqlite3_errmsg(db);
    return rc == SQLITE_DONE;
  };
  auto text = [](sqlite3_stmt* st, int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(st, i)))
             : std::string();
  };
  query("PRAGMA integrity_check", [&](sqlite3_stmt* st) {
    view.integrity += (view.integrity.empty() ? "" : "\n") + text(st, 0);
  });
  query(
      "SELECT seq, scenario_s, wall_us, host_id, kind, detail FROM events WHERE run_id = ?1 "
      "ORDER BY seq",
      [&](sqlite3_stmt* st) {
        view.events.push_back({sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1),
                               sqlite3_column_int64(st, 2), text(st, 3), text(st, 4), text(st, 5)});
      });
  sqlite3_close(db);
  return view;
}

std::vector<ProgressAck> ParseProgress(const std::string& progress,
                                       const std::set<std::string>& hosts) {
  static const std::regex line_re(R"(^((?:d\+\d+ )?\d\d:\d\d:\d\d)  (\S+) +(.*)$)");
  static const std::regex state_re(R"(^[a-z-]+ -> [a-z-]+(: .*)?$)");
  static const std::regex crash_re(R"(^crashed again \(reboot \d+ of \d+\)$)");
  std::vector<ProgressAck> acks;
  std::istringstream in(progress);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_match(line, m, line_re) || !hosts.count(m[2].str())) continue;
    const std::string clock = m[1], host = m[2], rest = m[3];
    if (std::regex_match(rest, state_re)) {
      acks.push_back({host, "state", rest, line});
    } else if (std::regex_match(rest, crash_re)) {
      acks.push_back({host, "crash", clock, line});
    }
  }
  return acks;
}

std::vector<ProgressAck> UnjournaledProgress(const std::vector<ProgressAck>& acks,
                                             const std::vector<JournalRow>& events) {
  // How many journal events answer each (host, kind, key).
  std::map<std::tuple<std::string, std::string, std::string>, int> have;
  for (const auto& e : events) {
    if (e.kind == "state") {
      have[{e.host, "state", e.detail.substr(0, e.detail.find('\n'))}]++;
    } else if (e.kind == "crash") {
      have[{e.host, "crash", ClockText(e.scenario_s)}]++;
    }
  }
  std::vector<ProgressAck> missing;
  for (const auto& a : acks) {
    int& n = have[{a.host, a.kind, a.key}];
    if (n > 0) {
      n--;
    } else {
      missing.push_back(a);
    }
  }
  return missing;
}

std::vector<PushedEvent> UnjournaledPushes(const std::set<PushedEvent>& pushed,
                                           const std::vector<JournalRow>& events) {
  // By host, kind and wall time: the feed's text went through JsonText (U+FFFD for bytes that
  // are not UTF-8), the journal keeps the bytes.
  std::set<std::tuple<int64_t, std::string, std::string>> have;
  for (const auto& e : events) have.insert({e.wall_us, e.host, e.kind});
  std::vector<PushedEvent> missing;
  for (const auto& p : pushed) {
    if (!have.count({p.wall_us, p.host, p.kind})) missing.push_back(p);
  }
  return missing;
}

}  // namespace chaoslab::soak
