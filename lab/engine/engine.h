// The engine: drives a fleet through a scenario on any Backend and measures what happens.
//
// Two clocks (DESIGN.md): the real machines decide WHAT happens (did it crash, did it come back);
// the scenario clock decides WHEN it counts. Each signal from a machine is stamped with scenario
// time from the image's timing profile (a boot costs `boot` seconds, a crash at driver load
// `driver_load`, ...). Stamped signals and fleet events (release, revert, deadline) go into one
// future-event set ordered by (time, sequence). An entry at time T is processed only once no
// machine can still report something earlier than T (each machine's "lower bound"), so results do
// not depend on how fast the VMs ran. A host in boot-loop that no runbook acts on yet is parked
// (vCPUs paused right after its reset) so the scenario clock can move on to the revert without
// burning CPU on identical crash cycles.
//
// Not thread-safe: Run() owns the calling thread until the scenario ends.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/clock.h"
#include "lab/config/config.h"
#include "lab/journal/journal.h"
#include "lab/report/results.h"

namespace chaoslab {

// How progress lines show scenario seconds since midnight: "04:18:51", "d+1 02:00:00".
std::string ClockText(double seconds_since_midnight);

// One host of the fleet, as planned from the setup.
struct HostPlan {
  HostSpec spec;
  config::Role role = config::Role::kWorkstation;
  bool online = true;  // fetches content during the release window
  std::string site;    // the setup site the host stands at
  bool bitlocker = false;
  bool oob_console = false;
  bool cloud = false;
  bool on_hypervisor = false;  // a VM on the organisation's own hypervisor (`virtual: true`)
  int ring = 0;                // index into the rollout's rings (0 for all-at-once)
  bool pinned = false;         // holds content at N-1: never takes the faulty version
  std::string network;         // network profile name, for reports
  // A reset the guest did by itself, with no panic event before it and none asked for, is a crash:
  // real Windows under TCG, where the hypervisor gets no Hyper-V crash report (docs/WINDOWS.md).
  bool reset_is_crash = false;
};

// A channel file the content server can publish.
struct ContentVersion {
  int channel = 291;
  uint32_t version = 0;
  std::string file_name;
  std::string bytes;
};

// One thing the engine journaled (an event or a host's state change), as a copy for a live view
// such as the dashboard. `state` and `crashes` describe the host after the event (empty/0 for
// fleet events).
struct LiveEvent {
  double scenario_s = 0;
  int64_t wall_us = 0;  // since the run started
  std::string host_id;  // empty for fleet events (release, revert, services, key escrow)
  std::string group;
  std::string kind;  // the journal's event kind: "state", "crash", "release", ...
  std::string detail;
  std::string state;  // the host's state after the event, e.g. "boot-loop"
  int crashes = 0;
};

// Something a person did through the game-day dashboard (`chaoslab gameday`), handed to the engine
// (EngineOptions::operator_actions), which carries it out on its thread and journals it
// (Journal::AppendAction). Kinds the engine acts on:
//   console  type `detail` (one line) on `host`'s serial console; `keys` = its raw keystrokes
//   boot     one-time boot choice for `host` ("safe-mode", "winre", "normal"): the machine resets
//   reimage  power `host` off, replace its disk by a fresh image, start it (all local data lost)
//   start    the exercise begins (EngineOptions::wait_for_start)
//   pause / resume   the scenario clock stops and every running machine is paused, then both go on
//   end      the instructor ends the exercise (status "finished")
//   escrow-down / escrow-up   the key escrow fails (or comes back) whatever its hosts do
//   second-update   EngineOptions::second_fault goes out to every online host
//   key-fetch  someone read `host`'s recovery password on the escrow page (counted per host)
// Anything else (a failed key lookup, an ETA asked or answered) is journaled only.
struct OperatorAction {
  std::string role;  // "trainee" or "instructor"
  std::string kind;
  std::string host;
  std::string detail;
  std::string keys;
};

// Where the run's content goes: the lab's content server (and its rollout policy), or a test's
// guest model.
class ContentChannel {
 public:
  virtual ~ContentChannel() = default;
  // Publishes a version (the faulty one at release, the good one at revert).
  virtual Status Publish(const ContentVersion& c) = 0;
  // Staged rollout: the faulty version becomes visible to the hosts of ring `ring` (all at once:
  // ring 0 is everyone).
  virtual void ReleaseRing(int /*ring*/) {}
  // At the revert the faulty version is withdrawn for everyone.
  virtual void WithdrawFault() {}
  // The vendor's cloud remediation: from now on the cloud tells each of `hosts` to quarantine
  // the faulty version `c` (ContentServer::Quarantine).
  virtual Status Quarantine(const ContentVersion& /*c*/,
                            const std::vector<std::string>& /*hosts*/) {
    return Status::Ok();
  }
};

// The lab's key escrow as runbooks use it.
class KeyEscrowDesk {
 public:
  virtual ~KeyEscrowDesk() = default;
  // A host's recovery password (a real request: the escrow counts it), or why not.
  virtual Result<std::string> FetchKey(const std::string& host_id) = 0;
  // Whether the escrow answers: its hosting group has a healthy host (the recovery model says).
  virtual void SetAvailable(bool up) = 0;
};

// A live view of the run (the dashboard) and what people do there. Called on the engine's thread;
// each must return quickly and must not call back into the run.
class LiveView {
 public:
  virtual ~LiveView() = default;
  // Every event the engine journals, in journal order, and every serial console line of a host as
  // kind "tty" (not journaled). Gets copies.
  virtual void Event(const LiveEvent& e) = 0;
  // What people typed at the view's consoles, as (host id, text), since the last call: each is
  // journaled ("console-input") and typed on that host's serial console.
  virtual std::vector<std::pair<std::string, std::string>> TakeConsoleInput() { return {}; }
  // A game day's operator actions since the last call (also polled while waiting for "start").
  virtual std::vector<OperatorAction> TakeActions() { return {}; }
};

// Figures about the lab itself (not the scenario), for `make bench`.
struct EngineStats {
  std::vector<double> event_to_journal_ms;  // QMP event received → its journal row written
  double all_boot_loop_wall_s = -1;         // run start → the last boot-looping host got there
};

struct EngineOptions {
  const config::ScenarioConfig* scenario = nullptr;
  std::string run_id;
  std::string comparison_id;  // when the run is a repetition of `chaoslab compare`
  int repetition = 0;
  Backend* backend = nullptr;
  Journal* journal = nullptr;  // optional
  std::vector<HostPlan> hosts;
  ContentVersion fault;                       // published at release
  ContentVersion revert;                      // published at revert
  ContentChannel* content = nullptr;          // optional: without one, nothing is published
  const std::atomic<bool>* cancel = nullptr;  // set by Ctrl-C / SIGTERM
  // Wall time (watchdog, wall limit, a game day's scenario clock, figures about the lab); the
  // system's steady clock when null. Tests on FakeBackend give both the same FakeClock.
  Clock* clock = nullptr;
  std::function<void(const std::string&)> progress;  // one line per notable event; optional
  // A machine that reports nothing for this long (wall) while it should is marked failed.
  std::chrono::seconds watchdog{150};
  // Lab capacity, not scenario: at most this many machines boot at once (wall clock); the others
  // are paused until a boot ends. Keeps CPU contention out of the real-time boot race. 0 = no
  // limit.
  int max_booting = 0;
  std::string method;            // how the run measured (RunResult::method), for reports
  std::string inputs = "{}";     // what the run was made of (RunResult::inputs), a JSON object
  EngineStats* stats = nullptr;  // optional
  LiveView* live = nullptr;      // optional: polled once per loop round

  // Game day (`chaoslab gameday`).
  // The scenario clock is the wall clock (1:1, minus paused time) from rollout.start: machines'
  // signals are stamped when they arrive, and fleet events and runbook steps wait for the clock.
  bool realtime = false;
  // The runbook is not carried out (it is the trainees' checklist): boot-looping hosts are not
  // parked and keep crashing by themselves; people remediate them through operator actions.
  bool manual = false;
  // Powers nothing on until a "start" action (realtime only).
  bool wait_for_start = false;
  ContentVersion second_fault;  // the "second-update" inject; version 0 = none

  // Runbooks beyond rebooting (all optional; a step that needs a missing one fails on that host).
  // The key escrow; shared, as a game day's dashboard keeps serving it after the run.
  std::shared_ptr<KeyEscrowDesk> escrow;
  std::string usb_media;     // WinPE image attached by `boot: usb`
  HostSpec rescue_template;  // a rescue VM: kernel, initrd, base_disk (its WinPE media), memory
  std::map<std::string, int> priority;  // group → rank (config::PriorityRanks); absent = 0
};

// Runs the scenario to its end (all hosts settled, deadline, wall limit or cancel) and returns what
// was measured. The returned status field says how it ended: "finished", "timeout", "interrupted".
// Errors are returned only when the run could not be carried out at all (e.g. no host could start).
Result<RunResult> RunScenario(const EngineOptions& options);

}  // namespace chaoslab
