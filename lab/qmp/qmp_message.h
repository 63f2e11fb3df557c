// One line from QEMU's QMP socket, parsed: what the client's reader thread does with each line,
// as pure functions (no socket, no thread) so that tests and lab/fuzz can feed them any bytes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "lab/common/status.h"
#include "lab/qmp/qmp_client.h"

namespace chaoslab::qmp {

struct Message {
  enum class Kind { kEvent, kReply, kGreeting };
  Kind kind = Kind::kGreeting;
  Event event;                // kEvent; `received` is left at its default
  std::optional<int64_t> id;  // kReply: our numeric id; nullopt when QEMU sent none we can match
  nlohmann::json reply;       // kReply: the whole message ("return" or "error", "id")
};

// Parses one line (without its newline) as QEMU sends them: an event, a reply or a greeting.
// Anything else (not JSON, not an object, an event without a string name, an object of none of
// the three kinds) is Corruption quoting the start of the line, and so is a member our code reads
// that is not of the type the QMP spec gives it (a timestamp that is not numbers, a reply id that
// is not an integer, an error that is not {class, desc} strings). Never throws.
Result<Message> ParseMessage(std::string_view line);

// What Execute() returns for `reply` (a kReply message's json) to `command`: its "return" member
// (an empty object when absent), or an error with QEMU's "error.desc" and class (NotFound for
// CommandNotFound/DeviceNotFound, else FailedPrecondition). Never throws, whatever the types.
Result<nlohmann::json> ReplyResult(const std::string& command, const nlohmann::json& reply);

}  // namespace chaoslab::qmp
