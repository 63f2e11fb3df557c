// chaoslab-relay: QEMU's guestfwd helper linking one guest connection to a loopback lab service.
// See relay.h. Exit codes: 0 done, 1 runtime failure (service unreachable, idle timeout),
// 2 bad arguments (including a non-loopback --host).
//
// Under QEMU, stderr is the guest connection too, so errors are short and only on failure.

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "lab/content_server/relay.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a vanished reader is an ordinary end, reported by write()
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(chaoslab::RelayUsage().c_str(), stdout);
      return 0;
    }
  }
  chaoslab::Result<chaoslab::RelayOptions> options = chaoslab::ParseRelayArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "chaoslab-relay: %s\n%s", options.status().message().c_str(),
                 chaoslab::RelayUsage().c_str());
    return 2;
  }
  chaoslab::Status status = chaoslab::RunRelay(*options, /*in_fd=*/0, /*out_fd=*/1);
  if (!status.ok()) {
    std::fprintf(stderr, "chaoslab-relay: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
