#include "lab/backend/fake_backend.h"

#include <utility>

namespace chaoslab {

std::string_view FakeOpName(FakeOp op) {
  switch (op) {
    case FakeOp::kStart:
      return "start";
    case FakeOp::kReset:
      return "reset";
    case FakeOp::kPause:
      return "pause";
    case FakeOp::kResume:
      return "resume";
    case FakeOp::kPowerOff:
      return "power-off";
    case FakeOp::kSendConsole:
      return "send-console";
    case FakeOp::kSetBoot:
      return "set-boot";
    case FakeOp::kRevertDisk:
      return "revert-disk";
    case FakeOp::kReimageDisk:
      return "reimage-disk";
  }
  return "unknown";
}

FakeHost::FakeHost(FakeBackend* backend, HostSpec spec)
    : backend_(backend), spec_(std::move(spec)) {}

Status FakeHost::Start() { return Do(FakeOp::kStart); }
Status FakeHost::Reset() { return Do(FakeOp::kReset); }
Status FakeHost::Pause() { return Do(FakeOp::kPause); }
Status FakeHost::Resume() { return Do(FakeOp::kResume); }
Status FakeHost::PowerOff() { return Do(FakeOp::kPowerOff); }
Status FakeHost::SendConsole(std::string_view text) { return Do(FakeOp::kSendConsole, text); }

std::string FakeHost::ConsoleLogPath() const { return "/nonexistent/fake/" + spec_.id + ".log"; }

Status FakeHost::SetBoot(BootTarget target, const std::string& media) {
  if (target == BootTarget::kUsb && media.empty()) {
    return Status::InvalidArgument("set-boot " + spec_.id + ": usb needs a media image");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    boot_ = target;
    boot_media_ = media;
  }
  return Do(FakeOp::kSetBoot);
}
Status FakeHost::RevertDisk() { return Do(FakeOp::kRevertDisk); }
Status FakeHost::ReimageDisk() { return Do(FakeOp::kReimageDisk); }
DiskImage FakeHost::SystemDisk() const {
  return DiskImage{"/nonexistent/fake/" + spec_.id + ".qcow2", "qcow2", false};
}

BootTarget FakeHost::boot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return boot_;
}

std::string FakeHost::boot_media() const {
  std::lock_guard<std::mutex> lock(mu_);
  return boot_media_;
}

FakeHost::Power FakeHost::power() const {
  std::lock_guard<std::mutex> lock(mu_);
  return power_;
}

std::vector<FakeOp> FakeHost::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::string FakeHost::console_input() const {
  std::lock_guard<std::mutex> lock(mu_);
  return console_input_;
}

Status FakeHost::Do(FakeOp op, std::string_view text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(op);
    Status injected = backend_->TakeFailure(spec_.id, op);
    if (!injected.ok()) return injected;
    const std::string what = std::string(FakeOpName(op)) + " " + spec_.id;
    switch (op) {
      case FakeOp::kStart:
        if (power_ != Power::kOff) return Status::FailedPrecondition(what + ": already running");
        power_ = Power::kRunning;
        break;
      case FakeOp::kReset:
        if (power_ == Power::kOff) return Status::FailedPrecondition(what + ": not running");
        break;
      case FakeOp::kPause:
        if (power_ == Power::kOff) return Status::FailedPrecondition(what + ": not running");
        power_ = Power::kPaused;
        break;
      case FakeOp::kResume:
        if (power_ == Power::kOff) return Status::FailedPrecondition(what + ": not running");
        power_ = Power::kRunning;
        break;
      case FakeOp::kPowerOff:
        if (power_ == Power::kOff) return Status::Ok();  // idempotent, emits nothing
        power_ = Power::kOff;
        break;
      case FakeOp::kSendConsole:
        if (power_ == Power::kOff) return Status::FailedPrecondition(what + ": not running");
        console_input_.append(text);
        break;
      case FakeOp::kSetBoot:
        break;
      case FakeOp::kRevertDisk:
      case FakeOp::kReimageDisk:
        if (power_ != Power::kOff) return Status::FailedPrecondition(what + ": still powered on");
        break;
    }
  }
  backend_->AfterCall(*this, op);
  return Status::Ok();
}

FakeBackend::FakeBackend(bool auto_events, Clock* clock)
    : auto_events_(auto_events), clock_(clock ? clock : &SystemClock()) {}

Result<Host*> FakeBackend::CreateHost(const HostSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (destroyed_) return Status::FailedPrecondition("fake backend: CreateHost after Destroy");
  if (spec.id.empty()) return Status::InvalidArgument("fake backend: host id is empty");
  if (hosts_.count(spec.id)) {
    return Status::InvalidArgument("fake backend: host '" + spec.id + "' already exists");
  }
  auto host = std::make_unique<FakeHost>(this, spec);
  Host* raw = host.get();
  hosts_.emplace(spec.id, std::move(host));
  return raw;
}

Status FakeBackend::PollEvents(std::chrono::milliseconds timeout, std::vector<HostEvent>* out) {
  if (clock_->IsFake() && ticker_) ticker_();  // outside the lock: it may Emit
  std::unique_lock<std::mutex> lock(mu_);
  if (clock_->IsFake()) {
    if (events_.empty()) clock_->SleepFor(timeout);
  } else {
    cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  }
  while (!events_.empty()) {
    out->push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return Status::Ok();
}

Status FakeBackend::Destroy() {
  std::lock_guard<std::mutex> lock(mu_);
  destroyed_ = true;
  hosts_.clear();
  events_.clear();
  return Status::Ok();
}

void FakeBackend::SetTicker(std::function<void()> tick) { ticker_ = std::move(tick); }

void FakeBackend::Emit(const std::string& host_id, HostEventKind kind, std::string detail) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(HostEvent{host_id, kind, std::move(detail), clock_->Now()});
  }
  cv_.notify_all();
}

void FakeBackend::FailNext(const std::string& host_id, FakeOp op, Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[{host_id, op}].push_back(std::move(status));
}

void FakeBackend::SetReaction(Reaction reaction) {
  std::lock_guard<std::mutex> lock(mu_);
  reaction_ = std::move(reaction);
}

FakeHost* FakeBackend::host(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = hosts_.find(id);
  return it == hosts_.end() ? nullptr : it->second.get();
}

bool FakeBackend::destroyed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return destroyed_;
}

size_t FakeBackend::pending_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

Status FakeBackend::TakeFailure(const std::string& host_id, FakeOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find({host_id, op});
  if (it == failures_.end() || it->second.empty()) return Status::Ok();
  Status s = std::move(it->second.front());
  it->second.pop_front();
  return s;
}

void FakeBackend::AfterCall(FakeHost& host, FakeOp op) {
  if (auto_events_) {
    const std::string& id = host.spec().id;
    switch (op) {
      case FakeOp::kStart:
        Emit(id, HostEventKind::kStarted);
        break;
      case FakeOp::kReset:
        Emit(id, HostEventKind::kReset, "host");
        break;
      case FakeOp::kPause:
        Emit(id, HostEventKind::kStopped);
        break;
      case FakeOp::kResume:
        Emit(id, HostEventKind::kResumed);
        break;
      case FakeOp::kPowerOff:
        Emit(id, HostEventKind::kShutdown, "host");
        break;
      case FakeOp::kSendConsole:
      case FakeOp::kSetBoot:
      case FakeOp::kRevertDisk:
      case FakeOp::kReimageDisk:
        break;
    }
  }
  Reaction reaction;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaction = reaction_;
  }
  if (reaction) reaction(host, op);
}

}  // namespace chaoslab
