// A scripted Backend for unit tests of the engine: no processes, no sockets.
//
// Hosts record every call made on them. A test makes hosts "do" things by queueing events
// (FakeBackend::Emit), either up front, from another thread, or from a reaction hook that runs when
// the engine calls a Host method (e.g. "on Reset, emit kReset then a console line"). Failures are
// injected per host and per operation (FailNext).
//
// Thread-safe: Emit, FailNext, SetReaction and the inspection methods may be called from any
// thread; Host methods and PollEvents are meant for the engine thread (as with every Backend).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/clock.h"

namespace chaoslab {

class FakeBackend;

// The Host operations a test can observe, fail or react to.
enum class FakeOp {
  kStart,
  kReset,
  kPause,
  kResume,
  kPowerOff,
  kSendConsole,
  kSetBoot,
  kRevertDisk,
  kReimageDisk,
};
std::string_view FakeOpName(FakeOp op);

// One machine of a FakeBackend. Tracks a plausible power state so that lifecycle misuse (Start
// twice, Reset while off) fails the way a real backend does.
class FakeHost : public Host {
 public:
  enum class Power { kOff, kRunning, kPaused };

  FakeHost(FakeBackend* backend, HostSpec spec);

  const HostSpec& spec() const override { return spec_; }
  Status Start() override;
  Status Reset() override;
  Status Pause() override;
  Status Resume() override;
  Status PowerOff() override;
  Status SendConsole(std::string_view text) override;
  std::string ConsoleLogPath() const override;
  Status SetBoot(BootTarget target, const std::string& media = {}) override;
  Status RevertDisk() override;
  Status ReimageDisk() override;
  DiskImage SystemDisk() const override;

  // Inspection (thread-safe).
  Power power() const;
  std::vector<FakeOp> calls() const;  // every call, in order, including failed ones
  std::string console_input() const;  // everything passed to SendConsole, concatenated
  BootTarget boot() const;            // as last set by SetBoot
  std::string boot_media() const;

 private:
  Status Do(FakeOp op, std::string_view text = {});

  FakeBackend* backend_;
  const HostSpec spec_;
  mutable std::mutex mu_;
  Power power_ = Power::kOff;
  std::vector<FakeOp> calls_;
  std::string console_input_;
  BootTarget boot_ = BootTarget::kDisk;
  std::string boot_media_;
};

class FakeBackend : public Backend {
 public:
  // Runs after a successful Host call (outside the backend's lock, so it may call Emit).
  using Reaction = std::function<void(FakeHost& host, FakeOp op)>;

  // When `auto_events` is true, Start/Reset/Pause/Resume/PowerOff emit the events a real VM would
  // (kStarted, kReset "host", kStopped, kResumed, kShutdown); otherwise only queued events appear.
  // On a fake `clock` a poll with nothing queued moves the clock on by its timeout instead of
  // waiting, so a run whose hosts react at once (reactions) takes no real time.
  explicit FakeBackend(bool auto_events = true, Clock* clock = nullptr);

  std::string_view name() const override { return "fake"; }
  Result<Host*> CreateHost(const HostSpec& spec) override;
  Status PollEvents(std::chrono::milliseconds timeout, std::vector<HostEvent>* out) override;
  Status Destroy() override;

  // On a fake clock: runs at the start of every poll, on the engine's thread, so scripted guests
  // act in the clock's time (and may Emit).
  void SetTicker(std::function<void()> tick);
  // Queues an event as if host `host_id` had produced it. Safe from any thread.
  void Emit(const std::string& host_id, HostEventKind kind, std::string detail = {});
  // The next `op` on `host_id` fails with `status` (once per call to FailNext; they stack in
  // order).
  void FailNext(const std::string& host_id, FakeOp op, Status status);
  // Replaces the reaction hook (empty = none).
  void SetReaction(Reaction reaction);

  // Nullptr if there is no such host (or after Destroy).
  FakeHost* host(const std::string& id);
  bool destroyed() const;
  size_t pending_events() const;

 private:
  friend class FakeHost;
  // Returns the injected failure for (host, op), if any; OK otherwise.
  Status TakeFailure(const std::string& host_id, FakeOp op);
  void AfterCall(FakeHost& host, FakeOp op);

  const bool auto_events_;
  Clock* const clock_;
  std::function<void()> ticker_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HostEvent> events_;
  std::map<std::string, std::unique_ptr<FakeHost>> hosts_;
  std::map<std::pair<std::string, FakeOp>, std::deque<Status>> failures_;
  Reaction reaction_;
  bool destroyed_ = false;
};

}  // namespace chaoslab
