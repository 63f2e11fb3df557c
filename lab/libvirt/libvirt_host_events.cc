#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lab/backend/console_lines.h"
#include "lab/backend/console_socket.h"
#include "lab/backend/qmp_events.h"
#include "lab/libvirt/libvirt_host.h"

namespace chaoslab::libvirt {
namespace {

using std::chrono::milliseconds;

// After the domain ends, how long to wait for the console readers to drain what it wrote last.
constexpr milliseconds kDrainTimeout(2000);

}  // namespace

Status LibvirtHost::SendTo(int fd, std::string_view text) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return SendAll(fd, text, "console of host " + spec_.id);
}

Status LibvirtHost::SendConsole(std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_ || lost_ || console_fd_ < 0) {
    return Status::FailedPrecondition("console of host " + spec_.id + ": not running");
  }
  if (relaunching_ || !reboot_detail_.empty()) {
    console_in_relaunch_.append(text);
    return Status::Ok();
  }
  if (wincon_) {
    WindowsConsole::Output out;
    {
      std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
      out = wincon_->Type(text);
    }
    Apply(out);
    return Status::Ok();
  }
  return SendTo(console_fd_, text);
}

void LibvirtHost::Apply(const WindowsConsole::Output& out) {
  // Requires mu_ (console_fd_). A console that is gone shows as the domain's end, reported by its
  // own events.
  if (!out.send.empty() && console_fd_ >= 0) (void)SendTo(console_fd_, out.send);
  for (const std::string& line : out.lines) {
    run_->queue->Push(spec_.id, HostEventKind::kConsoleLine, line);
  }
}

void LibvirtHost::ReadConsole(int fd) {
  const LineSink push = [this](std::string line) {
    run_->queue->Push(spec_.id, HostEventKind::kConsoleLine, std::move(line));
  };
  if (!wincon_) {
    ReadConsoleLines(fd, push);
  } else {
    // EMS: SAC's prompts and the boot screens do not end in a newline, so the lab's hands read
    // the bytes as they come; the lines still go to the engine (and the journal) as for winsim.
    ConsoleLineSplitter lines;
    ReadConsoleChunks(fd, [&](std::string_view bytes) {
      lines.Feed(bytes, push);
      WindowsConsole::Output out;
      {
        std::lock_guard<std::mutex> wincon_lock(wincon_mu_);
        out = wincon_->Feed(bytes);
      }
      if (!out.send.empty()) (void)SendTo(fd, out.send);
      for (const std::string& line : out.lines) push(line);
    });
    lines.Flush(push);
  }
  ReaderEnded();
}

void LibvirtHost::ReadAgent(int fd) {
  ReadConsoleLines(fd, [this](std::string line) {
    run_->queue->Push(spec_.id, HostEventKind::kConsoleLine, std::move(line));
  });
  ReaderEnded();
}

void LibvirtHost::ReaderEnded() {
  {
    std::lock_guard<std::mutex> lock(console_mu_);
    --open_readers_;
  }
  console_cv_.notify_all();
}

void LibvirtHost::DrainConsole() {
  std::unique_lock<std::mutex> lock(console_mu_);
  if (!console_cv_.wait_for(lock, kDrainTimeout, [&] { return open_readers_ <= 0; })) {
    // The readers end; the fds are closed by their owner.
    for (int fd : reading_fds_)
      if (fd >= 0) shutdown(fd, SHUT_RDWR);
  }
}

void LibvirtHost::CloseConsole() {
  std::thread reader, agent_reader;
  int fds[2];
  {
    std::lock_guard<std::mutex> lock(mu_);
    fds[0] = console_fd_;
    fds[1] = agent_fd_;
    reader.swap(reader_);
    agent_reader.swap(agent_reader_);
    console_fd_ = agent_fd_ = -1;
  }
  for (int fd : fds)
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  if (reader.joinable()) reader.join();
  if (agent_reader.joinable()) agent_reader.join();
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

void LibvirtHost::OnQmp(const std::string& event, const char* details) {
  nlohmann::json data = nlohmann::json::object();
  if (details && *details) data = nlohmann::json::parse(details, nullptr, false);
  const QmpEventMeaning meaning = ReadQmpEvent(event, data);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // During a relaunch these are the new domain's (the old one's all came before its STOPPED).
    if (lost_ || !running_) return;
    if (event == "SHUTDOWN") {
      // -no-reboot: a reset ends QEMU; the STOPPED that follows starts the relaunch.
      if (!meaning.reset_by.empty()) reboot_detail_ = meaning.reset_by;
      return;  // otherwise the lifecycle STOPPED that follows is the authoritative end
    }
  }
  // RESET comes only with warm resets (not configured); reported so that the engine hears of one.
  if (!meaning.event) return;
  if (*meaning.event == HostEventKind::kResumed && swallow_resume_.exchange(false)) return;
  run_->queue->Push(spec_.id, *meaning.event, meaning.detail);
}

void LibvirtHost::OnStopped(int detail) {
  std::string reboot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stale_stops_ > 0) {
      --stale_stops_;
      return;
    }
    if (lost_ || !running_ || relaunching_) return;
    reboot = reboot_detail_;
    if (!reboot.empty()) {
      relaunching_ = true;
      reboot_detail_.clear();
    } else {
      running_ = false;
    }
  }
  // --terminate ends it with QEMU's connection; this makes sure before the host may start again.
  if (windows_ && reboot.empty()) StopSwtpm();
  DrainConsole();
  if (!reboot.empty()) {
    // The engine sees what a warm reset would show: one kReset, then the new boot's console.
    run_->queue->Push(spec_.id, HostEventKind::kReset, reboot);
    run_->worker->Post([this] { Relaunch(); });
    return;
  }
  switch (detail) {
    case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
      run_->queue->Push(spec_.id, HostEventKind::kShutdown, "guest");
      break;
    case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
      run_->queue->Push(spec_.id, HostEventKind::kLost,
                        "domain " + name_ + " was destroyed outside the lab");
      break;
    default:
      run_->queue->Push(spec_.id, HostEventKind::kLost,
                        "domain " + name_ + " stopped (libvirt detail " + std::to_string(detail) +
                            "): QEMU crashed or failed");
  }
}

void LibvirtHost::OnHypervisorLost(const std::string& why) {
  int fds[2];
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_) return;
    lost_ = true;
    running_ = false;
    fds[0] = console_fd_;
    fds[1] = agent_fd_;
  }
  cv_.notify_all();
  // QEMU may well still run there, unobserved: stop listening to it.
  for (int fd : fds)
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  run_->queue->Push(spec_.id, HostEventKind::kLost, why);
}

}  // namespace chaoslab::libvirt
