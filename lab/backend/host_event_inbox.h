// Where a backend's reader threads leave host events for the engine thread's PollEvents: a
// thread-safe FIFO that can wait. Shared by the QEMU and libvirt backends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "lab/backend/backend.h"

namespace chaoslab {

class HostEventInbox {
 public:
  // Stamps the event with the time it arrived.
  void Push(const std::string& host_id, HostEventKind kind, std::string detail = {}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(HostEvent{host_id, kind, std::move(detail), WallClock::now()});
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
