// QMP: every line QEMU could send, as the client's reader splits and handles them.
#include <exception>
#include <nlohmann/json.hpp>

#include "lab/backend/bugcheck.h"
#include "lab/fuzz/lab_fuzz.h"
#include "lab/qmp/qmp_message.h"

namespace chaoslab::fuzz {
namespace {

using json = nlohmann::json;
using qmp::Message;

// Replies and events as the rest of the lab uses them; none of it may throw.
void CheckMessage(const Message& msg, std::string_view line, Stats& stats) {
  json whole = json::parse(line.begin(), line.end(), nullptr, false);
  switch (msg.kind) {
    case Message::Kind::kEvent: {
      ++stats["events"];
      if (!whole.is_object() || whole.value("event", json()) != json(msg.event.name)) {
        Fail("qmp event", "the name is not the line's \"event\" member");
      }
      // The backends pass the data on as text (HostEventInbox decodes a panic from it).
      std::string data = msg.event.data.dump();
      if (msg.event.name == "GUEST_PANICKED") {
        ++stats["panics"];
        if (DecodeGuestPanicked(data)) ++stats["bugchecks"];
      }
      return;
    }
    case Message::Kind::kReply: {
      ++stats["replies"];
      auto id = whole.find("id");
      bool integer_id = id != whole.end() && id->is_number_integer();
      if (integer_id != msg.id.has_value() || (integer_id && id->get<int64_t>() != *msg.id)) {
        Fail("qmp reply", "the id is not the line's integer \"id\"");
      }
      Result<json> result = qmp::ReplyResult("fuzz", msg.reply);
      if (msg.reply.contains("error")) {
        ++stats["errors"];
        if (result.ok()) Fail("qmp reply", "an error reply gave a result");
        ErrorCode code = result.status().code();
        if (code != ErrorCode::kNotFound && code != ErrorCode::kFailedPrecondition) {
          Fail("qmp reply", "error reply gave " + result.status().ToString());
        }
      } else if (!result.ok()) {
        Fail("qmp reply", "a return reply gave " + result.status().ToString());
      }
      return;
    }
    case Message::Kind::kGreeting:
      ++stats["greetings"];
      return;
  }
}

void CheckLine(std::string_view line, Stats& stats) {
  ++stats["lines"];
  Result<Message> msg = Status::Internal("not parsed");
  try {
    msg = qmp::ParseMessage(line);
    if (msg.ok()) CheckMessage(*msg, line, stats);
  } catch (const std::exception& e) {
    Fail("qmp threw", e.what());
  }
  if (msg.ok()) return;
  ++stats["corrupt"];
  if (msg.status().code() != ErrorCode::kCorruption) {
    Fail("qmp error", "not Corruption: " + msg.status().ToString());
  }
  // The message quotes at most 200 bytes of the line (QEMU lines may be megabytes).
  if (msg.status().message().size() > 260) Fail("qmp error", "quotes more than 200 bytes");
}

}  // namespace

// As ClientImpl::ReadMessages: '\n' ends a line, a trailing '\r' goes, blank lines are skipped.
// A last line without '\n' is handled too (as if QEMU had finished it).
void CheckQmp(std::string_view bytes, Stats& stats) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    bytes = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    CheckLine(line, stats);
  }
}

}  // namespace chaoslab::fuzz
