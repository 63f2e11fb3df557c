// What the dashboard shows, built from the engine's live events: the fleet (state and crash count
// per host), a timeline of events and the recovery curve so far. Plain data, no threads or sockets,
// so it is tested on its own; the server keeps one and applies events to it on its io thread.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lab/engine/engine.h"

namespace chaoslab::dashboard {

struct RunInfo {
  std::string run_id;
  std::string scenario;
  std::string runbook;
  std::string setup;
  double start_s = 0, release_s = 0, revert_s = 0;  // scenario times of the rollout
  // Game day: the setup's services (listed from the start, up or down), and the runbook the
  // trainees follow by hand (one line per step), shown as their checklist.
  std::vector<std::string> services;
  std::vector<std::string> checklist;
  bool gameday = false;
};

struct HostView {
  std::string id, group, state;
  int crashes = 0;
  bool boot_looped = false;  // was in boot-loop at some point (it may have recovered since)
};

// One point of the recovery curve: after the event at `scenario_s`, how many hosts are up
// (healthy or recovered) and how many are down (crashed, booting after a crash, boot-loop,
// remediating, failed, lost).
struct CurvePoint {
  double scenario_s = 0;
  int up = 0, down = 0;
};

class FleetView {
 public:
  explicit FleetView(RunInfo run, size_t max_timeline = 500) : max_timeline_(max_timeline) {
    SetRun(std::move(run));
  }

  // Applies one event; returns the message to push to browsers ({"type":"event",...}). A console
  // line (kind "tty") goes to the host's backlog instead, and the message is {"type":"tty",...}
  // for that host's console viewers only.
  nlohmann::json Apply(const LiveEvent& e);
  // The last lines a host's serial console printed ({"type":"tty-backlog",...}), for a console
  // opened mid-run.
  nlohmann::json ConsoleBacklog(const std::string& host) const;
  bool HasHost(const std::string& host) const { return hosts_.count(host) > 0; }
  // Everything so far ({"type":"snapshot",...}), sent to a browser when it connects.
  nlohmann::json Snapshot() const;
  // Marks the run as ended (status "finished", "interrupted", ...); returns the message to push.
  nlohmann::json End(const std::string& status);

  // The fleet-wide state a game day shows beside the grid: services, key escrow, keys fetched,
  // whether the exercise is waiting, running, paused or over ({"services":{...},...}).
  nlohmann::json Fleet() const;
  void SetRun(RunInfo run);

  const std::map<std::string, HostView>& hosts() const { return hosts_; }
  const std::vector<CurvePoint>& curve() const { return curve_; }

 private:
  RunInfo run_;
  size_t max_timeline_;
  std::map<std::string, HostView> hosts_;
  std::deque<nlohmann::json> timeline_;
  std::map<std::string, std::deque<std::string>> consoles_;  // host → last lines
  std::vector<CurvePoint> curve_;
  std::string status_ = "running";
  double now_s_ = 0;
  std::map<std::string, bool> services_;  // name → up
  std::string escrow_ = "unknown";
  int keys_fetched_ = 0;
  std::string phase_;  // game day: "waiting", "running", "paused"; empty otherwise
};

// A host counts as up in the curve when it is healthy or recovered.
bool IsUpState(const std::string& state);

}  // namespace chaoslab::dashboard
