// What the fault soak sends to a run's dashboard (tests/soak): malformed requests of many kinds
// over raw loopback sockets (bad JSON, wrong types, cut UTF-8, huge bodies and headers, garbage
// bytes, half-open connections, bad WebSocket frames, a foreign Host), valid requests in between
// to check the server still answers, and a WebSocket feed watcher that keeps every event the
// dashboard pushed (to check them against the journal). Every wait is bounded. Loopback only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace chaoslab::soak {

// How the server took one request: "200", "409", ... (its status), "closed" (it closed the
// connection without an answer, as it does with bytes that are not HTTP), "no-answer" (nothing
// within the wait: a finding) or "refused" (no connection).
using Outcome = std::string;

class DashboardAbuser {
 public:
  DashboardAbuser(int port, std::string token, std::vector<std::string> hosts);
  ~DashboardAbuser();  // closes the half-open connections it holds

  // Kinds of malformed request Send() knows, in a fixed order (a seeded draw picks from them).
  static const std::vector<std::string>& Kinds();
  // Sends one malformed request of `kind` (Kinds()) and says how the server took it.
  Outcome Send(const std::string& kind, std::mt19937_64& rng);
  // A valid request (GET /api/state with the token): "200" when the answer is the JSON snapshot
  // ("200-not-json" when the body is not it), else how it failed.
  Outcome Probe();
  // Closes the half-open connections opened more than `older_than` ago and says, for each,
  // whether the server had already closed it ("closed-by-server") or not ("still-open").
  std::vector<Outcome> ReapHalfOpen(std::chrono::seconds older_than);

 private:
  struct HalfOpen {
    int fd;
    std::chrono::steady_clock::time_point opened;
  };
  Outcome BadWebSocket(const std::string& kind, std::mt19937_64& rng);
  std::string Target(const std::string& path) const;  // path?token=...
  int port_;
  std::string token_;
  std::vector<std::string> hosts_;
  std::vector<HalfOpen> half_open_;
};

// One event as the dashboard pushed it ({"type":"event","event":{...}} or a snapshot's timeline).
struct PushedEvent {
  int64_t wall_us = 0;
  std::string host, kind, detail;
  auto operator<=>(const PushedEvent&) const = default;
};

// Keeps a WebSocket to the dashboard's feed (/ws) open on its own thread and records every event
// pushed to it; reconnects (counted) when the server closes it.
class FeedWatcher {
 public:
  FeedWatcher(int port, std::string token);
  ~FeedWatcher();  // Stop()
  void Stop();
  std::set<PushedEvent> Events() const;
  // When each host's "... -> lost" state event reached the feed (by this machine's steady clock).
  std::map<std::string, std::chrono::steady_clock::time_point> LostSeen() const;
  int messages() const;
  int connects() const;  // 1 when the feed never dropped
  std::string last_error() const;

 private:
  void Loop();
  int port_;
  std::string token_;
  mutable std::mutex mu_;
  std::set<PushedEvent> events_;
  std::map<std::string, std::chrono::steady_clock::time_point> lost_seen_;
  int messages_ = 0, connects_ = 0;
  std::string last_error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace chaoslab::soak
