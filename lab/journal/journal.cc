#include "lab/journal/journal.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace chaoslab {
namespace {

// Version 1: schema_version, runs, hosts, events. Bump and migrate when a table changes.
constexpr int kSchemaVersion = 1;

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
)sql";

// Start time of a process in clock ticks since boot, or 0 when unknown.
long long ProcessStartTicks(pid_t pid) {
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

bool ProcessAlive(long long pid, long long start_ticks) {
  if (pid <= 0 || pid > 0x3fffffff) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  long long now_start = ProcessStartTicks(static_cast<pid_t>(pid));
  return start_ticks == 0 || now_start == 0 || now_start == start_ticks;
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

class SqliteJournal : public Journal {
 public:
  explicit SqliteJournal(std::string path) : path_(std::move(path)) {}
  // close_v2 defers the real close until the cached statements are finalized (just after).
  ~SqliteJournal() override { sqlite3_close_v2(db_); }

  Status Init() {
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
      std::filesystem::create_directories(parent, ec);
      if (ec)
        return Status::IoError("cannot create folder " + parent.string() + ": " + ec.message());
    }
    int rc =
        sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) return Error(rc, "open");
    sqlite3_busy_timeout(db_, 5000);  // another process (a report, a second run) may hold the lock
    // WAL + NORMAL: a commit is an append to the WAL without fsync, so events are cheap yet
    // survive the orchestrator being killed (only a power loss can drop the last few).
    RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL", "enable WAL"));
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL", "set synchronous"));
    RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON", "enable foreign keys"));
    // Checkpoints fsync; keep them rare during a run (WAL up to ~40 MB) and do one in FinishRun.
    RETURN_IF_ERROR(Exec("PRAGMA wal_autocheckpoint=10000", "set checkpoint interval"));
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "lock for schema check"));
    Status status = CheckAndCreateSchema();
    RETURN_IF_ERROR(Exec(status.ok() ? "COMMIT" : "ROLLBACK", "finish schema check"));
    RETURN_IF_ERROR(status);
    RETURN_IF_ERROR(Prepare(
        "INSERT INTO events (run_id, seq, scenario_s, wall_us, host_id, kind, detail) VALUES "
        "(?1, CASE WHEN ?2 > 0 THEN ?2 ELSE "
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?1) END, ?3, ?4, ?5, ?6, ?7)",
        &append_event_));
    return Prepare(
        "INSERT INTO hosts (run_id, id, ord, group_name, final_state, exposed, crashes, boot_loop, "
        "recovered, reboots, first_crash_s, time_to_recover_s, stop_code) VALUES (?1, ?2, "
        "(SELECT COALESCE(MAX(ord), 0) + 1 FROM hosts WHERE run_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9, ?10, ?11, ?12) ON CONFLICT (run_id, id) DO UPDATE SET group_name = "
        "excluded.group_name, "
        "final_state = excluded.final_state, exposed = excluded.exposed, "
        "crashes = excluded.crashes, boot_loop = excluded.boot_loop, "
        "recovered = excluded.recovered, reboots = excluded.reboots, "
        "first_crash_s = excluded.first_crash_s, time_to_recover_s = excluded.time_to_recover_s, "
        "stop_code = excluded.stop_code",
        &save_host_);
  }

  Status BeginRun(const RunResult& run, const std::string& config_json) override {
    if (run.run_id.empty()) return Status::InvalidArgument("run id is empty");
    Statement exists;
    RETURN_IF_ERROR(Prepare("SELECT 1 FROM runs WHERE id = ?1", &exists));
    exists.Bind(1, run.run_id);
    ASSIGN_OR_RETURN(bool found, Step(exists, "look up run"));
    exists.Reset();  // end its read before the write transaction
    if (found) return Status::FailedPrecondition("run '" + run.run_id + "' already in " + path_);

    return InTransaction([&]() -> Status {
      Statement insert;
      RETURN_IF_ERROR(Prepare(
          "INSERT INTO runs (id, scenario, runbook, backend, seed, status, started_at, pid, "
          "pid_start, config_json) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9)",
          &insert));
      insert.Bind(1, run.run_id);
      insert.Bind(2, run.scenario);
      insert.Bind(3, run.runbook);
      insert.Bind(4, run.backend);
      insert.Bind(5, static_cast<long long>(run.seed));
      insert.Bind(6, run.started_at);
      insert.Bind(7, static_cast<long long>(getpid()));
      insert.Bind(8, ProcessStartTicks(getpid()));
      insert.Bind(9, config_json);
      RETURN_IF_ERROR(Step(insert, "insert run").status());
      for (const HostResult& host : run.hosts) RETURN_IF_ERROR(SaveHost(run.run_id, host));
      return Status::Ok();
    });
  }

  Status AppendEvent(const JournalEvent& e) override {
    const Statement& s = append_event_;
    s.Bind(1, e.run_id);
    s.Bind(2, e.seq);
    s.Bind(3, e.scenario_s);
    s.Bind(4, e.wall_us);
    s.Bind(5, e.host_id);
    s.Bind(6, e.kind);
    s.Bind(7, e.detail);
    return Step(s, "append event to run '" + e.run_id + "'").status();
  }

  Status SaveHost(const std::string& run_id, const HostResult& h) override {
    const Statement& s = save_host_;
    s.Bind(1, run_id);
    s.Bind(2, h.id);
    s.Bind(3, h.group);
    s.Bind(4, h.final_state);
    s.Bind(5, static_cast<long long>(h.exposed));
    s.Bind(6, static_cast<long long>(h.crashes));
    s.Bind(7, static_cast<long long>(h.boot_loop));
    s.Bind(8, static_cast<long long>(h.recovered));
    s.Bind(9, static_cast<long long>(h.reboots));
    s.Bind(10, h.first_crash_s);
    s.Bind(11, h.time_to_recover_s);
    s.Bind(12, h.stop_code);
    return Step(s, "save host '" + h.id + "' of run '" + run_id + "'").status();
  }

  Status FinishRun(const RunResult& run) override {
    RETURN_IF_ERROR(InTransaction([&]() -> Status {
      RunResult summarized = run;
      Summarize(&summarized);
      Statement update;
      RETURN_IF_ERROR(
          Prepare("UPDATE runs SET status = ?2, wall_s = ?3, scenario_end_s = ?4, hosts = ?5, "
                  "exposed = ?6, crashed = ?7, recovered = ?8 WHERE id = ?1",
                  &update));
      update.Bind(1, run.run_id);
      update.Bind(
          2, run.status.empty() || run.status == "running" ? std::string("finished") : run.status);
      update.Bind(3, run.wall_s);
      update.Bind(4, run.scenario_end_s);
      update.Bind(5, static_cast<long long>(summarized.fleet.hosts));
      update.Bind(6, static_cast<long long>(summarized.fleet.exposed));
      update.Bind(7, static_cast<long long>(summarized.fleet.crashed));
      update.Bind(8, static_cast<long long>(summarized.fleet.recovered));
      RETURN_IF_ERROR(Step(update, "finish run").status());
      if (sqlite3_changes(db_) == 0) return NoRun(run.run_id);
      for (const HostResult& host : run.hosts) RETURN_IF_ERROR(SaveHost(run.run_id, host));
      return Status::Ok();
    }));
    // Fold the WAL back into the file now that latency no longer matters; readers may hold it,
    // so a partial checkpoint is fine.
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return Status::Ok();
  }

  Result<std::vector<RunSummaryRow>> ListRuns() override {
    Statement s;
    RETURN_IF_ERROR(
        Prepare("SELECT r.id, r.scenario, r.runbook, r.backend, r.status, r.started_at, r.wall_s, "
                "r.pid, r.pid_start, (SELECT COUNT(*) FROM hosts h WHERE h.run_id = r.id) "
                "FROM runs r ORDER BY r.started_at DESC, r.rowid DESC",
                &s));
    std::vector<RunSummaryRow> rows;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "list runs"));
      if (!row) break;
      RunSummaryRow r{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5)};
      r.wall_s = s.Real(6);
      r.status = EffectiveStatus(r.status, s.Int(7), s.Int(8));
      r.hosts = static_cast<int>(s.Int(9));
      rows.push_back(std::move(r));
    }
    return rows;
  }

  Result<RunResult> LoadRun(const std::string& run_id) override {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    Statement s;
    RETURN_IF_ERROR(Prepare(
        "SELECT scenario, runbook, backend, seed, status, started_at, wall_s, scenario_end_s, "
        "pid, pid_start FROM runs WHERE id = ?1",
        &s));
    s.Bind(1, id);
    ASSIGN_OR_RETURN(bool found, Step(s, "load run"));
    if (!found) return NoRun(run_id);
    RunResult run;
    run.run_id = id;
    run.scenario = s.Text(0);
    run.runbook = s.Text(1);
    run.backend = s.Text(2);
    run.seed = static_cast<unsigned long long>(s.Int(3));
    run.status = EffectiveStatus(s.Text(4), s.Int(8), s.Int(9));
    run.started_at = s.Text(5);
    run.wall_s = s.Real(6);
    run.scenario_end_s = s.Real(7);

    if (run.status == "running" || run.status == "interrupted") {
      // Never finished: the last event tells how far it got.
      Statement last;
      RETURN_IF_ERROR(
          Prepare("SELECT MAX(wall_us), MAX(scenario_s) FROM events WHERE run_id = ?1", &last));
      last.Bind(1, id);
      ASSIGN_OR_RETURN(bool row, Step(last, "read last event"));
      if (row && sqlite3_column_type(last.get(), 0) != SQLITE_NULL) {
        run.wall_s = std::max(run.wall_s, last.Int(0) / 1e6);
        run.scenario_end_s = std::max(run.scenario_end_s, last.Real(1));
      }
    }

    Statement hosts;
    RETURN_IF_ERROR(Prepare(
        "SELECT id, group_name, final_state, exposed, crashes, boot_loop, recovered, reboots, "
        "first_crash_s, time_to_recover_s, stop_code FROM hosts WHERE run_id = ?1 ORDER BY ord",
        &hosts));
    hosts.Bind(1, id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(hosts, "load hosts"));
      if (!row) break;
      HostResult h;
      h.id = hosts.Text(0);
      h.group = hosts.Text(1);
      h.final_state = hosts.Text(2);
      h.exposed = hosts.Int(3) != 0;
      h.crashes = static_cast<int>(hosts.Int(4));
      h.boot_loop = hosts.Int(5) != 0;
      h.recovered = hosts.Int(6) != 0;
      h.reboots = static_cast<int>(hosts.Int(7));
      h.first_crash_s = hosts.OptReal(8);
      h.time_to_recover_s = hosts.OptReal(9);
      h.stop_code = hosts.Text(10);
      run.hosts.push_back(std::move(h));
    }
    Summarize(&run);
    return run;
  }

  Result<std::vector<JournalEvent>> LoadEvents(const std::string& run_id) override {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    Statement s;
    RETURN_IF_ERROR(Prepare(
        "SELECT seq, scenario_s, wall_us, host_id, kind, detail FROM events WHERE run_id = ?1 "
        "ORDER BY seq",
        &s));
    s.Bind(1, id);
    std::vector<JournalEvent> events;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "load events"));
      if (!row) break;
      events.push_back(
          JournalEvent{id, s.Int(0), s.Real(1), s.Int(2), s.Text(3), s.Text(4), s.Text(5)});
    }
    return events;
  }

 private:
  // A run left "running" whose orchestrator is gone was killed.
  static std::string EffectiveStatus(const std::string& stored, long long pid, long long start) {
    if (stored == "running" && !ProcessAlive(pid, start)) return "interrupted";
    return stored;
  }

  Status NoRun(const std::string& run_id) const {
    return Status::NotFound("no run '" + run_id + "' in " + path_);
  }

  // Exact id, "last", or a unique prefix.
  Result<std::string> ResolveRunId(const std::string& wanted) {
    if (wanted.empty()) return Status::InvalidArgument("run id is empty");
    Statement s;
    if (wanted == "last") {
      RETURN_IF_ERROR(
          Prepare("SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1", &s));
      ASSIGN_OR_RETURN(bool row, Step(s, "find last run"));
      if (!row) return Status::NotFound("no runs in " + path_);
      return s.Text(0);
    }
    RETURN_IF_ERROR(
        Prepare("SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1 "
                "ORDER BY id = ?1 DESC, started_at DESC LIMIT 11",
                &s));
    s.Bind(1, wanted);
    std::vector<std::string> candidates;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "find run"));
      if (!row) break;
      candidates.push_back(s.Text(0));
      if (candidates.front() == wanted) return wanted;  // an exact match wins over longer ids
    }
    if (candidates.empty()) return NoRun(wanted);
    if (candidates.size() == 1) return candidates.front();
    std::string list;
    for (size_t i = 0; i < candidates.size() && i < 10; ++i)
      list += (i ? ", " : "") + candidates[i];
    if (candidates.size() > 10) list += ", ...";
    return Status::InvalidArgument("run id '" + wanted + "' is ambiguous in " + path_ +
                                   "; it matches " + list);
  }

  // Refuses foreign databases and newer schemas before touching anything, then creates tables.
  Status CheckAndCreateSchema() {
    Statement tables;
    RETURN_IF_ERROR(
        Prepare("SELECT COUNT(*), COALESCE(SUM(name = 'schema_version'), 0) FROM sqlite_master "
                "WHERE type = 'table'",
                &tables));
    RETURN_IF_ERROR(Step(tables, "read schema").status());
    const bool any_tables = tables.Int(0) > 0, versioned = tables.Int(1) > 0;
    tables.Reset();
    if (any_tables && !versioned) {
      return Status::Corruption(path_ + " is a SQLite database but not a chaoslab journal");
    }
    long long version = 0;
    if (versioned) {
      Statement read;
      RETURN_IF_ERROR(Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version", &read));
      RETURN_IF_ERROR(Step(read, "read schema version").status());
      version = read.Int(0);
    }
    if (version > kSchemaVersion) {
      return Status::FailedPrecondition(
          "journal " + path_ + " has schema version " + std::to_string(version) +
          ", newer than this chaoslab understands (" + std::to_string(kSchemaVersion) +
          "); use a newer chaoslab or another journal file");
    }
    RETURN_IF_ERROR(Exec(kSchema, "create schema"));
    if (version == 0) {
      return Exec("INSERT INTO schema_version VALUES (" + std::to_string(kSchemaVersion) + ")",
                  "write schema version");
    }
    return Status::Ok();
  }

  template <typename Fn>
  Status InTransaction(Fn body) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "begin transaction"));
    Status status = body();
    if (!status.ok()) {
      Exec("ROLLBACK", "roll back");
      return status;
    }
    return Exec("COMMIT", "commit");
  }

  // Maps a SQLite failure to the error model: a damaged or foreign file is Corruption.
  Status Error(int rc, const std::string& what) const {
    std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    std::string msg = "journal " + path_ + ": " + what + ": " + detail;
    switch (rc & 0xff) {
      case SQLITE_NOTADB:
      case SQLITE_CORRUPT:
        return Status::Corruption(msg);
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_FULL:
      case SQLITE_READONLY:
      case SQLITE_PERM:
        return Status::IoError(msg);
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Status::Unavailable(msg);
      case SQLITE_CONSTRAINT:
        return Status::FailedPrecondition(msg);
      default:
        return Status::Internal(msg);
    }
  }

  Status Exec(const std::string& sql, const std::string& what) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, what);
  }

  Status Prepare(const char* sql, Statement* stmt) {
    int rc = sqlite3_prepare_v2(db_, sql, -1, stmt->out(), nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, "prepare");
  }

  // One step: true when a row is ready, false when done (the statement is then reset).
  Result<bool> Step(const Statement& stmt, const std::string& what) {
    int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_ROW) return true;
    Status status = rc == SQLITE_DONE ? Status::Ok() : Error(rc, what);
    stmt.Reset();
    if (!status.ok()) return status;
    return false;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  Statement append_event_;  // cached: called for every event
  Statement save_host_;     // cached: called whenever a host's figures change
};

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("journal path is empty");
  auto journal = std::make_unique<SqliteJournal>(path);
  RETURN_IF_ERROR(journal->Init());
  return std::unique_ptr<Journal>(std::move(journal));
}

}  // namespace chaoslab
