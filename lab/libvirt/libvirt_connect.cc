// Connections to hypervisors: libvirt's event loop, bounded opens (libvirt_internal.h).
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <unistd.h>

#include <thread>

#include "lab/libvirt/libvirt_internal.h"

namespace chaoslab::libvirt {
namespace {

using std::chrono::milliseconds;

// libvirt prints every error to stderr unless told otherwise; the lab reports errors itself.
void QuietErrors(void*, virErrorPtr) {}

}  // namespace

// One event loop per process (libvirt allows one), on its own thread, started before the first
// connection is opened (libvirt requires that for events and keepalive).
void EnsureEventLoop() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, QuietErrors);
    virEventRegisterDefaultImpl();
    std::thread([] {
      while (true) {
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(milliseconds(10));
      }
    }).detach();
  });
}

std::string LastError() {
  const char* msg = virGetLastErrorMessage();
  return msg ? msg : "unknown libvirt error";
}

std::shared_ptr<PendingOpen> PendingOpen::Start(const std::string& uri) {
  auto pending = std::make_shared<PendingOpen>();
  // Detached: it may outlive whoever started it (and the backend), holding only `pending`.
  std::thread([pending, uri] {
    virConnectPtr conn = virConnectOpen(uri.c_str());
    const std::string error = conn ? "" : LastError();  // libvirt's errors are per thread
    std::lock_guard<std::mutex> lock(pending->mu_);
    if (pending->abandoned_ && conn) {
      virConnectClose(conn);
      conn = nullptr;
    }
    pending->conn_ = conn;
    pending->error_ = error;
    pending->done_ = true;
    pending->cv_.notify_all();
  }).detach();
  return pending;
}

bool PendingOpen::Wait(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return done_; });
}

virConnectPtr PendingOpen::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  virConnectPtr conn = conn_;
  conn_ = nullptr;
  return conn;
}

std::string PendingOpen::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void PendingOpen::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  abandoned_ = true;
  if (conn_) {  // it opened, but nobody will use it
    virConnectClose(conn_);
    conn_ = nullptr;
  }
}

Result<virConnectPtr> OpenWithin(const std::string& uri, milliseconds timeout) {
  std::shared_ptr<PendingOpen> pending = PendingOpen::Start(uri);
  if (!pending->Wait(timeout)) {
    pending->Abandon();
    return Status::Timeout(
        "did not answer within " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s");
  }
  virConnectPtr conn = pending->Take();
  if (!conn) return Status::FailedPrecondition(pending->error());
  return conn;
}

std::string MachineName() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

}  // namespace chaoslab::libvirt
