// Internal to lab/journal: the SQLite schema and its migrations, one prepared statement, and the
// small helpers the journal's queries share.
#pragma once

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace chaoslab::journal_internal {

// Version 1: schema_version, runs, hosts, events.
// Version 3: hosts.ring and hosts.network (added in place, like version 2's columns).
// Version 4: hosts.race_fetch_ms (comma-separated) and runs.method (how the run measured).
// Version 5: hosts.weight (a simulator row standing for many hosts; 1 elsewhere).
// Version 6 (issue 8): table actions (what people did in a game day; created in older files by
// kSchema's CREATE TABLE IF NOT EXISTS, like version 2's tables).
// Version 7 (issue 18): hosts.escalations (runbooks a host moved on to, on_failure).
// Version 8 (issue 18): services.catching_up_s (working off a backlog, ServiceConfig::backlog).
// Version 2 (issue 4): runs gain setup, release_s, comparison_id, repetition; hosts gain the
// runbook figures; new tables comparisons and services. Older files are migrated when opened:
// kSchema creates any missing table in its version-1 shape and kAddedColumns then adds every
// column a table lacks, so new and migrated files end up alike. Bump, and add to kAddedColumns,
// when a table changes.
constexpr int kSchemaVersion = 8;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  scenario TEXT NOT NULL, runbook TEXT NOT NULL, backend TEXT NOT NULL,
  seed INTEGER NOT NULL,            -- unsigned 64-bit stored as its two's-complement bits
  status TEXT NOT NULL, started_at TEXT NOT NULL,
  wall_s REAL NOT NULL DEFAULT 0, scenario_end_s REAL NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL,             -- orchestrator process, to tell running from killed runs
  pid_start INTEGER NOT NULL,       -- its start time (/proc/<pid>/stat), so a reused pid is not it
  config_json TEXT NOT NULL,
  hosts INTEGER NOT NULL DEFAULT 0, exposed INTEGER NOT NULL DEFAULT 0,
  crashed INTEGER NOT NULL DEFAULT 0, recovered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE TABLE IF NOT EXISTS hosts (
  run_id TEXT NOT NULL REFERENCES runs (id), id TEXT NOT NULL,
  ord INTEGER NOT NULL,             -- order the host was first saved in
  group_name TEXT NOT NULL, final_state TEXT NOT NULL, exposed INTEGER NOT NULL,
  crashes INTEGER NOT NULL, boot_loop INTEGER NOT NULL, recovered INTEGER NOT NULL,
  reboots INTEGER NOT NULL, first_crash_s REAL, time_to_recover_s REAL, stop_code TEXT NOT NULL,
  PRIMARY KEY (run_id, id));
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL REFERENCES runs (id), seq INTEGER NOT NULL,
  scenario_s REAL NOT NULL, wall_us INTEGER NOT NULL, host_id TEXT NOT NULL,
  kind TEXT NOT NULL, detail TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;  -- clustered: one b-tree write per event
CREATE INDEX IF NOT EXISTS events_by_host ON events (run_id, host_id, seq);
CREATE TABLE IF NOT EXISTS comparisons (
  id TEXT PRIMARY KEY, scenario TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL,
  pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, config_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS comparisons_by_start ON comparisons (started_at);
CREATE TABLE IF NOT EXISTS services (
  run_id TEXT NOT NULL REFERENCES runs (id), ord INTEGER NOT NULL, name TEXT NOT NULL,
  downtime_s REAL NOT NULL, down_at_s REAL, up_again_s REAL, up_at_end INTEGER NOT NULL,
  PRIMARY KEY (run_id, ord));
CREATE TABLE IF NOT EXISTS actions (
  run_id TEXT NOT NULL REFERENCES runs (id), seq INTEGER NOT NULL,
  scenario_s REAL NOT NULL, wall_us INTEGER NOT NULL,
  role TEXT NOT NULL, host_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  keys TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
)sql";

struct AddedColumn {
  const char* table;
  const char* name;
  const char* declaration;  // ALTER TABLE ... ADD COLUMN needs a default for NOT NULL columns
};

constexpr AddedColumn kAddedColumns[] = {
    {"runs", "setup", "TEXT NOT NULL DEFAULT ''"},
    {"runs", "release_s", "REAL NOT NULL DEFAULT 0"},
    {"runs", "comparison_id", "TEXT NOT NULL DEFAULT ''"},
    {"runs", "repetition", "INTEGER NOT NULL DEFAULT 0"},
    {"hosts", "site", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "role", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "bitlocker", "INTEGER NOT NULL DEFAULT 0"},
    {"hosts", "recovered_at_s", "REAL"},
    {"hosts", "recovered_by", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "technician_s", "REAL NOT NULL DEFAULT 0"},
    {"hosts", "waited_s", "REAL NOT NULL DEFAULT 0"},
    {"hosts", "waited_for", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "keys_fetched", "INTEGER NOT NULL DEFAULT 0"},
    {"hosts", "data_lost", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "data_lost_s", "REAL NOT NULL DEFAULT 0"},
    {"hosts", "failed_why", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "ring", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "network", "TEXT NOT NULL DEFAULT ''"},
    {"hosts", "race_fetch_ms", "TEXT NOT NULL DEFAULT ''"},
    {"runs", "method", "TEXT NOT NULL DEFAULT ''"},
    // Version 5 (issue 7): a simulator row may stand for many hosts.
    {"hosts", "weight", "INTEGER NOT NULL DEFAULT 1"},
    // Issue 18: runbook fallbacks (on_failure).
    {"hosts", "escalations", "INTEGER NOT NULL DEFAULT 0"},
    // Version 8 (issue 18): services that work off a backlog.
    {"services", "catching_up_s", "REAL NOT NULL DEFAULT 0"},
};

// Indexes over added columns, created once the columns exist.
constexpr const char* kAfterColumns = R"sql(
CREATE INDEX IF NOT EXISTS runs_by_comparison ON runs (comparison_id);
-- SaveHost numbers a new host MAX(ord) + 1: without this index that scans the run's hosts on every
-- insert (quadratic; a simulated run writes ~10,000 rows).
CREATE INDEX IF NOT EXISTS hosts_by_ord ON hosts (run_id, ord);
)sql";

inline std::string JoinInts(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

// The inverse of JoinInts; anything that is not a number is skipped (a hand-edited file).
inline std::vector<int> SplitInts(const std::string& text) {
  std::vector<int> values;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (!item.empty() && end && *end == '\0') values.push_back(static_cast<int>(v));
  }
  return values;
}

// Start time of a process in clock ticks since boot, or 0 when unknown.
inline long long ProcessStartTicks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::atoll(field.c_str());
  }
  return 0;
}

inline bool ProcessAlive(long long pid, long long start_ticks) {
  if (pid <= 0 || pid > 0x3fffffff) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  long long now_start = ProcessStartTicks(static_cast<pid_t>(pid));
  return start_ticks == 0 || now_start == 0 || now_start == start_ticks;
}

// Host columns after (run_id, id, ord), in the order SaveHost binds them (?3, ?4, ...) and
// LoadRun reads them (column 1, 2, ...).
constexpr const char* kHostColumns[] = {
    "group_name",   "final_state", "exposed",       "crashes",           "boot_loop",
    "recovered",    "reboots",     "first_crash_s", "time_to_recover_s", "stop_code",
    "site",         "role",        "bitlocker",     "recovered_at_s",    "recovered_by",
    "technician_s", "waited_s",    "waited_for",    "keys_fetched",      "data_lost",
    "data_lost_s",  "failed_why",  "ring",          "network",           "race_fetch_ms",
    "weight",       "escalations"};

inline std::string HostUpsertSql() {
  std::string columns, values, updates;
  int param = 3;
  for (const char* column : kHostColumns) {
    columns += std::string(", ") + column;
    values += ", ?" + std::to_string(param++);
    updates += std::string(updates.empty() ? "" : ", ") + column + " = excluded." + column;
  }
  return "INSERT INTO hosts (run_id, id, ord" + columns +
         ") VALUES (?1, ?2, (SELECT COALESCE(MAX(ord), 0) + 1 FROM hosts WHERE run_id = ?1)" +
         values + ") ON CONFLICT (run_id, id) DO UPDATE SET " + updates;
}

inline std::string HostSelectSql() {
  std::string columns;
  for (const char* column : kHostColumns) columns += std::string(", ") + column;
  return "SELECT id" + columns + " FROM hosts WHERE run_id = ?1 ORDER BY ord";
}

// One prepared statement; reset after each use so it can be cached.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }
  sqlite3_stmt** out() { return &stmt_; }
  void Reset() const {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void Bind(int i, const std::string& v) const {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, long long v) const { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, int v) const { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, bool v) const { sqlite3_bind_int64(stmt_, i, v ? 1 : 0); }
  void Bind(int i, double v) const { sqlite3_bind_double(stmt_, i, v); }
  void Bind(int i, const std::optional<double>& v) const {
    v ? Bind(i, *v) : void(sqlite3_bind_null(stmt_, i));
  }

  std::string Text(int col) const {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    return text ? std::string(reinterpret_cast<const char*>(text),
                              static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
                : std::string();
  }
  long long Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::optional<double> OptReal(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Real(col);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace chaoslab::journal_internal
