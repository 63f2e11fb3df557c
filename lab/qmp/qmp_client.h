// A client for the QEMU Machine Protocol over a Unix socket.
//
// Connect() reads the greeting and negotiates capabilities. Execute() sends a command with a unique
// id and waits for the matching reply. Asynchronous events are delivered in the order QEMU sent
// them, to the callback, from the client's reader thread. A socket that closes or a QEMU that dies
// turns into an Unavailable status for pending and future commands and one on_closed() call;
// nothing hangs. A peer that breaks the protocol (not JSON, not an object, a member of the wrong
// type, a line over 16 MiB) ends the connection with Corruption; a callback that throws ends it
// with Internal. Either way the reason goes to on_closed(), and no exception leaves the client.
//
// Thread-safe: Execute() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "lab/common/status.h"

namespace chaoslab::qmp {

struct Event {
  std::string name;       // e.g. "GUEST_PANICKED", "RESET", "SHUTDOWN", "STOP"
  nlohmann::json data;    // the event's "data" member (may be null)
  double qemu_timestamp;  // seconds, from the event's "timestamp"
  std::chrono::steady_clock::time_point received;
};

struct Callbacks {
  std::function<void(const Event&)> on_event;    // may be empty
  std::function<void(const Status&)> on_closed;  // once, when the connection ends
};

class Client {
 public:
  virtual ~Client() = default;
  // Sends {"execute": command, "arguments": args, "id": N} and waits for its reply.
  // Returns the "return" member, or an error with QEMU's "error.desc", Timeout or Unavailable.
  virtual Result<nlohmann::json> Execute(
      const std::string& command, const nlohmann::json& arguments = nullptr,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) = 0;
  virtual bool connected() const = 0;
  // Closes the socket; pending Execute() calls return Unavailable. Idempotent.
  virtual void Close() = 0;
};

// Connects to the QMP socket at `socket_path`, retrying until `timeout` (QEMU may still be
// starting).
Result<std::unique_ptr<Client>> Connect(
    const std::string& socket_path, Callbacks callbacks,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace chaoslab::qmp
