#include "lab/qmp/qmp_message.h"

#include <utility>

namespace chaoslab::qmp {
namespace {

using json = nlohmann::json;

std::string Excerpt(std::string_view text) {
  constexpr size_t kMax = 200;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax)) + "...";
}

// `object[key]` if it is a number, else 0: QEMU's own messages always have numbers there, and a
// json::value() with a default throws on a member of another type.
double NumberOr0(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string StringOr(const json& object, const char* key, std::string fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::move(fallback);
}

}  // namespace

Result<Message> ParseMessage(std::string_view line) {
  json msg = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) {
    return Status::Corruption("malformed QMP message: " + Excerpt(line));
  }
  Message out;
  if (auto event = msg.find("event"); event != msg.end()) {
    if (!event->is_string()) {
      return Status::Corruption("QMP event without a name: " + Excerpt(line));
    }
    out.kind = Message::Kind::kEvent;
    out.event.name = event->get<std::string>();
    if (auto data = msg.find("data"); data != msg.end()) out.event.data = *data;
    out.event.qemu_timestamp = 0;
    if (auto ts = msg.find("timestamp"); ts != msg.end() && ts->is_object()) {
      out.event.qemu_timestamp = NumberOr0(*ts, "seconds") + NumberOr0(*ts, "microseconds") / 1e6;
    }
    return out;
  }
  if (msg.contains("return") || msg.contains("error")) {
    out.kind = Message::Kind::kReply;
    if (auto id = msg.find("id"); id != msg.end() && id->is_number_integer()) {
      out.id = id->get<int64_t>();
    }
    out.reply = std::move(msg);
    return out;
  }
  if (msg.contains("QMP")) return out;  // kGreeting; a repeated one is harmless
  return Status::Corruption("unexpected QMP message: " + Excerpt(line));
}

Result<json> ReplyResult(const std::string& command, const json& reply) {
  if (auto error = reply.find("error"); error != reply.end()) {
    std::string cls = StringOr(*error, "class", "?");
    std::string desc = StringOr(*error, "desc", "(no description)");
    std::string msg = "QMP " + command + ": " + desc + " (" + cls + ")";
    if (cls == "CommandNotFound" || cls == "DeviceNotFound") return Status::NotFound(msg);
    return Status::FailedPrecondition(msg);
  }
  auto ret = reply.find("return");
  return ret == reply.end() ? json::object() : *ret;
}

}  // namespace chaoslab::qmp
