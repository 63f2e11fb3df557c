// The part of a Backend both VM backends share: their machines' reader threads leave events in one
// HostEventInbox that PollEvents empties, their QEMUs run on one accelerator, and the first host
// whose QEMU could not be raised to real time is noted (lab_priority.h).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/backend/host_event_inbox.h"
#include "lab/backend/lab_priority.h"

namespace chaoslab {

class VmBackend : public Backend {
 public:
  std::string accelerator() const override { return accel_; }
  Status PollEvents(std::chrono::milliseconds timeout, std::vector<HostEvent>* out) override {
    inbox_.PopAll(timeout, out);
    return Status::Ok();
  }
  std::string HostPathShortfall() const override { return shortfall_.Get(); }

  // For the backend's hosts and their threads (thread-safe).
  const std::string& accel() const { return accel_; }
  HostEventInbox& queue() { return inbox_; }
  HostPathShortfallNote& shortfall() { return shortfall_; }

 protected:
  explicit VmBackend(std::string accel) : accel_(std::move(accel)) {}

 private:
  const std::string accel_;
  HostEventInbox inbox_;
  HostPathShortfallNote shortfall_;
};

}  // namespace chaoslab
