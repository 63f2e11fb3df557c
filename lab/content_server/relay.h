// chaoslab-relay: links one guest TCP connection to a lab service on the host's loopback.
//
// QEMU runs it as the helper of `-netdev user,guestfwd=tcp:10.0.2.100:80-cmd:<relay argv>`, one
// process per guest connection, with the guest connection on its stdin/stdout. It connects to
// host:port (loopback only, no name resolution), copies both ways, and exits as soon as the
// service closes, the guest goes away, or nothing has moved for the idle timeout. An optional
// delay before the first byte of each direction models the host's network profile.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab {

struct RelayOptions {
  std::string host = "127.0.0.1";  // a loopback IP literal or "localhost"
  int port = 0;                    // required, 1..65535
  int delay_ms = 0;                // before the first byte of each direction
  int jitter_ms = 0;     // each direction's delay is uniform in [delay-jitter, delay+jitter]
  int loss_percent = 0;  // this share of connections is dropped before anything is forwarded
  std::optional<uint64_t> seed;  // for the jitter and the loss; random when absent
  int idle_timeout_ms = 30000;   // exit when nothing moved for this long
  // The host's escrow credential (a 0600 file of hex digits): presented to the service before the
  // guest's first byte (host_credential.h). Empty: none.
  std::string credential_file;
};

// Parses `args` (argv without the program name): --port N [--host H] [--delay-ms D]
// [--jitter-ms J] [--loss-percent P] [--seed S] [--idle-timeout-ms T] [--credential-file F];
// "--flag=value" works too.
// InvalidArgument with the offending flag for anything else, including a non-loopback --host.
Result<RelayOptions> ParseRelayArgs(const std::vector<std::string>& args);

// The usage text for --help and errors.
std::string RelayUsage();

// OK if `host` is a loopback address (127.0.0.0/8, ::1, "localhost"); otherwise InvalidArgument
// explaining that the relay refuses it. Never resolves names.
Status CheckLoopbackHost(std::string_view host);

// Whether this connection is lost (a `loss_percent` draw; seeded like the delays).
bool RelayDropsConnection(const RelayOptions& options);

// The credential in `path`: a regular file (not a symlink) that only its owner may read or write,
// holding 1..128 hex digits (surrounding whitespace ignored). FailedPrecondition if others may read
// it, InvalidArgument for other contents (not quoted), IoError/NotFound naming the file otherwise.
Result<std::string> ReadCredentialFile(const std::string& path);

// The per-direction delays (milliseconds) that `options` implies: {in->service, service->out}.
std::pair<int, int> RelayDelays(const RelayOptions& options);

// One direction's delay: its bytes are held until `delay` after the first byte arrived; later bytes
// are not held again. Pure (time is passed in), so the rule is tested without a clock.
class FirstByteDelay {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FirstByteDelay(std::chrono::milliseconds delay) : delay_(delay) {}
  // Bytes arrived at `now`; the first call starts the delay.
  void OnBytes(Clock::time_point now) {
    if (started_) return;
    started_ = true;
    release_at_ = now + delay_;
  }
  bool Released(Clock::time_point now) const { return started_ && now >= release_at_; }
  bool started() const { return started_; }
  Clock::time_point release_at() const { return release_at_; }
  std::chrono::milliseconds delay() const { return delay_; }

 private:
  std::chrono::milliseconds delay_;
  bool started_ = false;
  Clock::time_point release_at_;
};

// Connects and copies in_fd -> service and service -> out_fd until one side closes (the fds may be
// the same socket). Returns OK when a side closed normally, Unavailable if the service cannot be
// reached, Timeout after the idle timeout.
Status RunRelay(const RelayOptions& options, int in_fd, int out_fd);

// The argv for QEMU's guestfwd "cmd:" (which QEMU splits on spaces): the relay binary followed by
// the flags of `options`. InvalidArgument if the binary path holds characters QEMU or its argv
// splitting would misread (space, comma, quotes, backslash).
Result<std::vector<std::string>> RelayCommand(const std::string& relay_binary,
                                              const RelayOptions& options);

}  // namespace chaoslab
