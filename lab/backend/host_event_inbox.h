// Where a backend's reader threads leave host events for the engine thread's PollEvents: a
// thread-safe FIFO that can wait. Shared by the QEMU and libvirt backends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/bugcheck.h"

namespace chaoslab {

class HostEventInbox {
 public:
  // Stamps the event with the time it arrived. A kPanicked whose GUEST_PANICKED carries a
  // Windows bugcheck (Hyper-V crash MSRs, bugcheck.h) is preceded by the `@@bugcheck` console line
  // that bugcheck gives: a real Windows guest cannot print one on its serial console after it has
  // stopped, and the engine takes a host's stop code from that line (GUEST-PROTOCOL.md), so both
  // kinds of guest are journalled the same way. Both in one lock: nothing comes between them.
  void Push(const std::string& host_id, HostEventKind kind, std::string detail = {}) {
    std::optional<Bugcheck> bugcheck;
    if (kind == HostEventKind::kPanicked) bugcheck = DecodeGuestPanicked(detail);
    {
      std::lock_guard<std::mutex> lock(mu_);
      const WallClock::time_point now = WallClock::now();
      if (bugcheck) {
        events_.push_back(
            HostEvent{host_id, HostEventKind::kConsoleLine, BugcheckSignalLine(*bugcheck), now});
      }
      events_.push_back(HostEvent{host_id, kind, std::move(detail), now});
    }
    cv_.notify_all();
  }
  // Waits up to `timeout` for an event, then moves every pending one to `out`, oldest first.
  void PopAll(std::chrono::milliseconds timeout, std::vector<HostEvent>* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
    while (!events_.empty()) {
      out->push_back(std::move(events_.front()));
      events_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HostEvent> events_;
};

}  // namespace chaoslab
