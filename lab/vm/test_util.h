// Helpers shared by the QEMU backend tests: temporary folders and waiting for backend events.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lab/backend/backend.h"

namespace chaoslab::vm::testing {

// A fresh folder under /tmp (short, for socket paths), removed with its content at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/clt-XXXXXX";
    path_ = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Collects a backend's events and waits for particular ones.
class EventLog {
 public:
  explicit EventLog(Backend* backend) : backend_(backend) {}

  // Polls until an event matching `pred` arrives (searching from `from`); returns its index or -1.
  int WaitFor(const std::function<bool(const HostEvent&)>& pred, std::chrono::milliseconds timeout,
              size_t from = 0) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t checked = from;
    while (true) {
      for (; checked < events.size(); ++checked) {
        if (pred(events[checked])) return static_cast<int>(checked);
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return -1;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      (void)backend_->PollEvents(std::min(left, std::chrono::milliseconds(200)), &events);
    }
  }
  int WaitKind(const std::string& host, HostEventKind kind, std::chrono::milliseconds timeout,
               size_t from = 0) {
    return WaitFor([&](const HostEvent& e) { return e.host_id == host && e.kind == kind; }, timeout,
                   from);
  }
  int WaitLine(const std::string& host, const std::string& prefix,
               std::chrono::milliseconds timeout, size_t from = 0) {
    return WaitFor(
        [&](const HostEvent& e) {
          return e.host_id == host && e.kind == HostEventKind::kConsoleLine &&
                 e.detail.rfind(prefix, 0) == 0;
        },
        timeout, from);
  }
  std::string Dump() const {
    std::string out;
    for (const auto& e : events) {
      out += e.host_id + " " + std::string(HostEventKindName(e.kind)) + " " + e.detail + "\n";
    }
    return out;
  }

  std::vector<HostEvent> events;

 private:
  Backend* backend_;
};

}  // namespace chaoslab::vm::testing
