// Helpers shared by the libvirt backend's files (libvirt_backend.cc, libvirt_gc.cc); not an API.
#pragma once

#include <libvirt/libvirt.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::libvirt {

// How long the lab waits for a hypervisor to answer a new connection. virConnectOpen has no
// timeout of its own, and a daemon that hangs (stopped, say) accepts the connection and never
// answers; a remote one over ssh answers within a few seconds.
inline constexpr std::chrono::seconds kOpenTimeout{15};

// One virConnectOpen on a thread of its own, so that nobody has to wait for it without end.
// Thread-safe. Whoever gives up on it (Abandon) never blocks on it again; a connection that
// opens after that is closed by its thread.
class PendingOpen {
 public:
  static std::shared_ptr<PendingOpen> Start(const std::string& uri);
  // Waits up to `timeout` for the open to finish; true when it has.
  bool Wait(std::chrono::milliseconds timeout);
  // Once finished: the connection (the caller owns it), or nullptr and error() says why.
  virConnectPtr Take();
  std::string error();
  // The caller will not Take() it.
  void Abandon();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, abandoned_ = false;
  virConnectPtr conn_ = nullptr;
  std::string error_;
};

// Opens `uri`, waiting up to `timeout`: the connection, FailedPrecondition with libvirt's error,
// or Timeout ("did not answer within N s").
Result<virConnectPtr> OpenWithin(const std::string& uri, std::chrono::milliseconds timeout);

// Starts libvirt's one default event loop thread (once per process), before any connection.
void EnsureEventLoop();
// The message of the calling thread's last libvirt error.
std::string LastError();
// This machine's host name: the orchestrator's "machine" in a domain's ownership metadata.
std::string MachineName();

}  // namespace chaoslab::libvirt
