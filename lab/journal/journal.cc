#include "lab/journal/journal.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lab/common/clock_text.h"
#include "lab/journal/journal_schema.h"

namespace chaoslab {
namespace {

using namespace journal_internal;  // NOLINT: the schema and statement (journal_schema.h)

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
    sqlite3_busy_timeout(db_, static_cast<int>(kJournalLockWait.count()));  // see journal.h
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
    return Prepare(HostUpsertSql().c_str(), &save_host_);
  }

  Status BeginRun(const RunResult& run) override {
    if (run.run_id.empty()) return Status::InvalidArgument("run id is empty");
    if (!run.comparison_id.empty()) {
      ASSIGN_OR_RETURN(bool known,
                       Exists("SELECT 1 FROM comparisons WHERE id = ?1", run.comparison_id));
      if (!known) {
        return Status::FailedPrecondition("run '" + run.run_id + "' names comparison '" +
                                          run.comparison_id + "', which " + path_ +
                                          " does not hold (BeginComparison first)");
      }
    }
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
          "pid_start, config_json, setup, release_s, comparison_id, repetition) VALUES (?1, ?2, "
          "?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
          &insert));
      insert.Bind(1, run.run_id);
      insert.Bind(2, run.scenario);
      insert.Bind(3, run.runbook);
      insert.Bind(4, run.backend);
      insert.Bind(5, static_cast<long long>(run.seed));
      insert.Bind(6, run.started_at);
      insert.Bind(7, static_cast<long long>(getpid()));
      insert.Bind(8, ProcessStartTicks(getpid()));
      insert.Bind(9, run.inputs);
      insert.Bind(10, run.setup);
      insert.Bind(11, run.release_s);
      insert.Bind(12, run.comparison_id);
      insert.Bind(13, run.repetition);
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

  Status AppendAction(const JournalAction& a) override {
    Statement s;
    RETURN_IF_ERROR(Prepare(
        "INSERT INTO actions (run_id, seq, scenario_s, wall_us, role, host_id, kind, detail, keys) "
        "VALUES (?1, CASE WHEN ?2 > 0 THEN ?2 ELSE "
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM actions WHERE run_id = ?1) END, "
        "?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &s));
    s.Bind(1, a.run_id);
    s.Bind(2, a.seq);
    s.Bind(3, a.scenario_s);
    s.Bind(4, a.wall_us);
    s.Bind(5, a.role);
    s.Bind(6, a.host_id);
    s.Bind(7, a.kind);
    s.Bind(8, a.detail);
    s.Bind(9, a.keys);
    return Step(s, "append action to run '" + a.run_id + "'").status();
  }

  Result<std::vector<JournalAction>> LoadActions(const std::string& run_id) override {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    Statement s;
    RETURN_IF_ERROR(
        Prepare("SELECT seq, scenario_s, wall_us, role, host_id, kind, detail, keys FROM actions "
                "WHERE run_id = ?1 ORDER BY seq",
                &s));
    s.Bind(1, id);
    std::vector<JournalAction> actions;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "load actions"));
      if (!row) break;
      actions.push_back(JournalAction{id, s.Int(0), s.Real(1), s.Int(2), s.Text(3), s.Text(4),
                                      s.Text(5), s.Text(6), s.Text(7)});
    }
    return actions;
  }

  Status SaveHost(const std::string& run_id, const HostResult& h) override {
    const Statement& s = save_host_;
    s.Bind(1, run_id);
    s.Bind(2, h.id);
    s.Bind(3, h.group);
    s.Bind(4, h.final_state);
    s.Bind(5, h.exposed);
    s.Bind(6, h.crashes);
    s.Bind(7, h.boot_loop);
    s.Bind(8, h.recovered);
    s.Bind(9, h.reboots);
    s.Bind(10, h.first_crash_s);
    s.Bind(11, h.time_to_recover_s);
    s.Bind(12, h.stop_code);
    s.Bind(13, h.site);
    s.Bind(14, h.role);
    s.Bind(15, h.bitlocker);
    s.Bind(16, h.recovered_at_s);
    s.Bind(17, h.recovered_by);
    s.Bind(18, h.technician_s);
    s.Bind(19, h.waited_s);
    s.Bind(20, h.waited_for);
    s.Bind(21, h.keys_fetched);
    s.Bind(22, h.data_lost);
    s.Bind(23, h.data_lost_s);
    s.Bind(24, h.failed_why);
    s.Bind(25, h.ring);
    s.Bind(26, h.network);
    s.Bind(27, JoinInts(h.race_fetch_ms));
    s.Bind(28, static_cast<long long>(h.weight));
    s.Bind(29, static_cast<long long>(h.escalations));
    return Step(s, "save host '" + h.id + "' of run '" + run_id + "'").status();
  }

  Status SaveServices(const std::string& run_id,
                      const std::vector<ServiceResult>& services) override {
    return InTransaction([&] { return WriteServices(run_id, services); });
  }

  Status FinishRun(const RunResult& run) override {
    RETURN_IF_ERROR(InTransaction([&]() -> Status {
      RunResult summarized = run;
      Summarize(&summarized);
      Statement update;
      RETURN_IF_ERROR(Prepare(
          "UPDATE runs SET status = ?2, wall_s = ?3, scenario_end_s = ?4, hosts = ?5, "
          "exposed = ?6, crashed = ?7, recovered = ?8, release_s = ?9, method = ?10 WHERE id = ?1",
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
      update.Bind(9, run.release_s);
      update.Bind(10, run.method);
      RETURN_IF_ERROR(Step(update, "finish run").status());
      if (sqlite3_changes(db_) == 0) return NoRun(run.run_id);
      for (const HostResult& host : run.hosts) RETURN_IF_ERROR(SaveHost(run.run_id, host));
      return WriteServices(run.run_id, run.services);
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
                "r.pid, r.pid_start, (SELECT COUNT(*) FROM hosts h WHERE h.run_id = r.id), "
                "r.setup, r.comparison_id, r.repetition "
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
      r.setup = s.Text(10);
      r.comparison_id = s.Text(11);
      r.repetition = static_cast<int>(s.Int(12));
      rows.push_back(std::move(r));
    }
    return rows;
  }

  Result<RunResult> LoadRun(const std::string& run_id) override {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    return LoadRunById(id, run_id);
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

  Status BeginComparison(const std::string& id, const std::string& scenario,
                         const std::string& config_json) override {
    if (id.empty()) return Status::InvalidArgument("comparison id is empty");
    ASSIGN_OR_RETURN(bool found, Exists("SELECT 1 FROM comparisons WHERE id = ?1", id));
    if (found) return Status::FailedPrecondition("comparison '" + id + "' already in " + path_);
    return InTransaction([&]() -> Status {
      Statement insert;
      RETURN_IF_ERROR(
          Prepare("INSERT INTO comparisons (id, scenario, status, started_at, pid, pid_start, "
                  "config_json) VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6)",
                  &insert));
      insert.Bind(1, id);
      insert.Bind(2, scenario);
      insert.Bind(3, IsoNowUtc());
      insert.Bind(4, static_cast<long long>(getpid()));
      insert.Bind(5, ProcessStartTicks(getpid()));
      insert.Bind(6, config_json);
      return Step(insert, "insert comparison").status();
    });
  }

  Status FinishComparison(const std::string& id, const std::string& status) override {
    Statement update;
    RETURN_IF_ERROR(Prepare("UPDATE comparisons SET status = ?2 WHERE id = ?1", &update));
    update.Bind(1, id);
    update.Bind(2, status.empty() || status == "running" ? std::string("finished") : status);
    RETURN_IF_ERROR(Step(update, "finish comparison").status());
    if (sqlite3_changes(db_) == 0) return NoComparison(id);
    return Status::Ok();
  }

  Result<std::vector<ComparisonSummaryRow>> ListComparisons() override {
    Statement s;
    RETURN_IF_ERROR(Prepare(
        "SELECT c.id, c.scenario, c.status, c.started_at, c.pid, c.pid_start, "
        "(SELECT COUNT(*) FROM runs r WHERE r.comparison_id = c.id), "
        "(SELECT COUNT(*) FROM runs r WHERE r.comparison_id = c.id AND r.status = 'finished'), "
        "(SELECT COUNT(*) FROM (SELECT DISTINCT runbook, setup FROM runs r "
        "WHERE r.comparison_id = c.id)) "
        "FROM comparisons c ORDER BY c.started_at DESC, c.rowid DESC",
        &s));
    std::vector<ComparisonSummaryRow> rows;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "list comparisons"));
      if (!row) break;
      ComparisonSummaryRow r;
      r.id = s.Text(0);
      r.scenario = s.Text(1);
      r.status = EffectiveStatus(s.Text(2), s.Int(4), s.Int(5));
      r.started_at = s.Text(3);
      r.runs = static_cast<int>(s.Int(6));
      r.finished_runs = static_cast<int>(s.Int(7));
      r.cells = static_cast<int>(s.Int(8));
      rows.push_back(std::move(r));
    }
    return rows;
  }

  Result<Comparison> LoadComparison(const std::string& wanted) override {
    ASSIGN_OR_RETURN(std::string id, ResolveId("comparisons", "comparison", wanted));
    Comparison comparison;
    comparison.id = id;
    std::vector<std::string> run_ids;
    {
      Statement s;
      RETURN_IF_ERROR(Prepare("SELECT scenario FROM comparisons WHERE id = ?1", &s));
      s.Bind(1, id);
      ASSIGN_OR_RETURN(bool found, Step(s, "load comparison"));
      if (!found) return NoComparison(wanted);
      comparison.scenario = s.Text(0);
      s.Reset();
      Statement runs;
      RETURN_IF_ERROR(
          Prepare("SELECT id FROM runs WHERE comparison_id = ?1 ORDER BY rowid", &runs));
      runs.Bind(1, id);
      while (true) {
        ASSIGN_OR_RETURN(bool row, Step(runs, "list the comparison's runs"));
        if (!row) break;
        run_ids.push_back(runs.Text(0));
      }
    }
    for (const std::string& run_id : run_ids) {
      ASSIGN_OR_RETURN(RunResult run, LoadRunById(run_id, run_id));
      comparison.runs.push_back(std::move(run));
    }
    return comparison;
  }

 private:
  Result<RunResult> LoadRunById(const std::string& id, const std::string& asked_for) {
    Statement s;
    RETURN_IF_ERROR(Prepare(
        "SELECT scenario, runbook, backend, seed, status, started_at, wall_s, scenario_end_s, "
        "pid, pid_start, setup, release_s, comparison_id, repetition, method, config_json FROM "
        "runs WHERE id = ?1",
        &s));
    s.Bind(1, id);
    ASSIGN_OR_RETURN(bool found, Step(s, "load run"));
    if (!found) return NoRun(asked_for);
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
    run.setup = s.Text(10);
    run.release_s = s.Real(11);
    run.comparison_id = s.Text(12);
    run.repetition = static_cast<int>(s.Int(13));
    run.method = s.Text(14);
    run.inputs = s.Text(15);
    s.Reset();

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
    RETURN_IF_ERROR(Prepare(HostSelectSql().c_str(), &hosts));
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
      h.site = hosts.Text(11);
      h.role = hosts.Text(12);
      h.bitlocker = hosts.Int(13) != 0;
      h.recovered_at_s = hosts.OptReal(14);
      h.recovered_by = hosts.Text(15);
      h.technician_s = hosts.Real(16);
      h.waited_s = hosts.Real(17);
      h.waited_for = hosts.Text(18);
      h.keys_fetched = static_cast<int>(hosts.Int(19));
      h.data_lost = hosts.Text(20);
      h.data_lost_s = hosts.Real(21);
      h.failed_why = hosts.Text(22);
      h.ring = hosts.Text(23);
      h.network = hosts.Text(24);
      h.race_fetch_ms = SplitInts(hosts.Text(25));
      h.weight = std::max(1LL, static_cast<long long>(hosts.Int(26)));
      h.escalations = static_cast<int>(hosts.Int(27));
      run.hosts.push_back(std::move(h));
    }

    Statement services;
    RETURN_IF_ERROR(
        Prepare("SELECT name, downtime_s, down_at_s, up_again_s, up_at_end, catching_up_s "
                "FROM services WHERE run_id = ?1 ORDER BY ord",
                &services));
    services.Bind(1, id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(services, "load services"));
      if (!row) break;
      run.services.push_back(ServiceResult{services.Text(0), services.Real(1), services.OptReal(2),
                                           services.OptReal(3), services.Int(4) != 0,
                                           services.Real(5)});
    }
    Summarize(&run);
    return run;
  }

  // A run left "running" whose orchestrator is gone was killed.
  static std::string EffectiveStatus(const std::string& stored, long long pid, long long start) {
    if (stored == "running" && !ProcessAlive(pid, start)) return "interrupted";
    return stored;
  }

  Status NoRun(const std::string& run_id) const {
    return Status::NotFound("no run '" + run_id + "' in " + path_);
  }

  Status NoComparison(const std::string& id) const {
    return Status::NotFound("no comparison '" + id + "' in " + path_);
  }

  Result<std::string> ResolveRunId(const std::string& wanted) {
    return ResolveId("runs", "run", wanted);
  }

  // Exact id, "last", or a unique prefix, among the ids of `table` ("runs" or "comparisons",
  // whose rows a `noun` names in messages).
  Result<std::string> ResolveId(const std::string& table, const std::string& noun,
                                const std::string& wanted) {
    if (wanted.empty()) return Status::InvalidArgument(noun + " id is empty");
    Statement s;
    if (wanted == "last") {
      RETURN_IF_ERROR(Prepare(
          ("SELECT id FROM " + table + " ORDER BY started_at DESC, rowid DESC LIMIT 1").c_str(),
          &s));
      ASSIGN_OR_RETURN(bool row, Step(s, "find last " + noun));
      if (!row) return Status::NotFound("no " + table + " in " + path_);
      return s.Text(0);
    }
    RETURN_IF_ERROR(Prepare(("SELECT id FROM " + table +
                             " WHERE substr(id, 1, length(?1)) = ?1 "
                             "ORDER BY id = ?1 DESC, started_at DESC LIMIT 11")
                                .c_str(),
                            &s));
    s.Bind(1, wanted);
    std::vector<std::string> candidates;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(s, "find " + noun));
      if (!row) break;
      candidates.push_back(s.Text(0));
      if (candidates.front() == wanted) {  // an exact match wins over longer ids
        s.Reset();
        return wanted;
      }
    }
    if (candidates.empty()) {
      return Status::NotFound("no " + noun + " '" + wanted + "' in " + path_);
    }
    if (candidates.size() == 1) return candidates.front();
    std::string list;
    for (size_t i = 0; i < candidates.size() && i < 10; ++i)
      list += (i ? ", " : "") + candidates[i];
    if (candidates.size() > 10) list += ", ...";
    return Status::InvalidArgument(noun + " id '" + wanted + "' is ambiguous in " + path_ +
                                   "; it matches " + list);
  }

  // Whether `sql` with ?1 = `param` returns a row.
  Result<bool> Exists(const char* sql, const std::string& param) {
    Statement s;
    RETURN_IF_ERROR(Prepare(sql, &s));
    s.Bind(1, param);
    ASSIGN_OR_RETURN(bool found, Step(s, "look up"));
    s.Reset();  // end its read before any write transaction
    return found;
  }

  // Replaces the run's services; the caller holds a transaction.
  Status WriteServices(const std::string& run_id, const std::vector<ServiceResult>& services) {
    Statement clear;
    RETURN_IF_ERROR(Prepare("DELETE FROM services WHERE run_id = ?1", &clear));
    clear.Bind(1, run_id);
    RETURN_IF_ERROR(Step(clear, "clear services").status());
    Statement insert;
    RETURN_IF_ERROR(
        Prepare("INSERT INTO services (run_id, ord, name, downtime_s, down_at_s, up_again_s, "
                "up_at_end, catching_up_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &insert));
    int ord = 0;
    for (const ServiceResult& service : services) {
      insert.Bind(1, run_id);
      insert.Bind(2, ++ord);
      insert.Bind(3, service.name);
      insert.Bind(4, service.downtime_s);
      insert.Bind(5, service.down_at_s);
      insert.Bind(6, service.up_again_s);
      insert.Bind(7, service.up_at_end);
      insert.Bind(8, service.catching_up_s);
      RETURN_IF_ERROR(
          Step(insert, "save service '" + service.name + "' of run '" + run_id + "'").status());
    }
    return Status::Ok();
  }

  // Adds the columns of later versions that a table lacks (see kAddedColumns).
  Status AddMissingColumns() {
    for (const AddedColumn& added : kAddedColumns) {
      Statement info;
      RETURN_IF_ERROR(Prepare("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2", &info));
      info.Bind(1, std::string(added.table));
      info.Bind(2, std::string(added.name));
      RETURN_IF_ERROR(Step(info, "read columns").status());
      const bool present = info.Int(0) > 0;
      info.Reset();
      if (present) continue;
      RETURN_IF_ERROR(Exec(std::string("ALTER TABLE ") + added.table + " ADD COLUMN " + added.name +
                               " " + added.declaration,
                           std::string("add column ") + added.table + "." + added.name));
    }
    return Exec(kAfterColumns, "create indexes");
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
    RETURN_IF_ERROR(AddMissingColumns());
    if (version == 0) {
      return Exec("INSERT INTO schema_version VALUES (" + std::to_string(kSchemaVersion) + ")",
                  "write schema version");
    }
    if (version < kSchemaVersion) {
      return Exec("UPDATE schema_version SET version = " + std::to_string(kSchemaVersion),
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
