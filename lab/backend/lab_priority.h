// The CPU priority of the lab's side of a guest's network path (issue 16, docs/TIME-BASE.md).
//
// A winsim guest's clock counts instructions and its link's delays are netem's, in guest time; but
// while the guest waits for an answer it idles, and an idle guest's clock follows the wall. The
// host side of that wait — QEMU's main loop (slirp), the chaoslab-relay it spawns per connection,
// the content server's io thread — runs in host time, and competes for the CPU with every other
// guest's vCPU and with whatever else the machine runs: beside two CPU burners the wired hosts'
// fetch went from a median of 127 ms to 216 ms of guest time and lost the race on 37 % more boots.
// A nicer value did not help (nice -10: still -48 pp). Real-time scheduling does: those threads,
// and only they, run in SCHED_RR at the lowest real-time priority, ahead of every ordinary thread,
// so the host side takes its own CPU time (a few ms) whatever else is runnable. They do little work
// each; the kernel's real-time throttling (95 % of each second by default) bounds what a runaway
// could take. The guests' vCPU threads stay ordinary: their time is counted in instructions anyway.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab {

// SCHED_RR priority of the lab's network-path threads: the lowest real-time one, below the
// kernel's and any real-time service's threads.
inline constexpr int kLabRealtimePriority = 1;

// Puts thread `tid` (0: the calling thread) in SCHED_RR at `priority`. With `reset_on_fork`, the
// tasks it creates later (threads or processes) start as ordinary ones; without, they inherit it
// (QEMU's main loop: the relays it spawns must). FailedPrecondition when the caller may not (not
// root, no CAP_SYS_NICE), NotFound if the thread is gone.
Status SetRealtime(pid_t tid, int priority, bool reset_on_fork);

// The first reason a backend could not raise a QEMU's main loop (Backend::HostPathShortfall).
// Thread-safe: hosts start on several threads.
class HostPathShortfallNote {
 public:
  void Note(const std::string& host, const Status& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_.empty()) first_ = host + ": " + why.message();
  }
  std::string Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  mutable std::mutex mu_;
  std::string first_;
};

// The scheduling policy of thread `tid` as a word for reports: "realtime" (SCHED_RR or SCHED_FIFO)
// or "ordinary"; NotFound if the thread is gone.
Result<std::string> SchedulingOf(pid_t tid);

// How many threads of process `pid`, its main thread aside, are ordinary (0 if it is gone): what
// checks that QEMU's vCPU thread stayed ordinary while its main loop is real-time count.
int OrdinaryThreadsBesidesMain(pid_t pid);

// Whether a process with command name `comm` and arguments `argv` is the QEMU of libvirt domain
// `domain`: a qemu-system-* (or qemu-kvm) whose `-name` is "guest=<domain>" or
// "guest=<domain>,...". Pure.
bool IsQemuOfDomain(std::string_view comm, const std::vector<std::string>& argv,
                    std::string_view domain);

// The pid of the local QEMU that runs libvirt domain `domain` (its main thread is its main loop),
// found in /proc; NotFound when there is none here (a remote hypervisor's). Not the socket peer of
// its console: libvirt creates those sockets itself and hands QEMU the descriptor, so the peer is
// the daemon.
Result<pid_t> LocalQemuOfDomain(const std::string& domain);

}  // namespace chaoslab
