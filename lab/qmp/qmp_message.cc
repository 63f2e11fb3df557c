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

// What is wrong with a message's shape (the members our code reads, of the types the QMP spec
// gives them), or empty. QEMU never sends these otherwise: a peer that does is not QEMU, or is
// broken, and its connection ends (its host is lost) instead of being half-believed.
std::string ShapeProblem(const json& msg) {
  auto string_or_absent = [](const json& obj, const char* key) {
    return !obj.contains(key) || obj[key].is_string();
  };
  if (msg.contains("event")) {
    if (!msg["event"].is_string()) return "event without a name";
    if (!msg.contains("timestamp")) return "";
    const json& ts = msg["timestamp"];
    bool ok = ts.is_object() && (!ts.contains("seconds") || ts["seconds"].is_number()) &&
              (!ts.contains("microseconds") || ts["microseconds"].is_number());
    return ok ? "" : "event timestamp is not {seconds, microseconds}";
  }
  if (msg.contains("return") || msg.contains("error")) {
    if (msg.contains("id") && !msg["id"].is_number_integer()) return "reply id is not our number";
    if (!msg.contains("error")) return "";
    const json& error = msg["error"];
    bool ok =
        error.is_object() && string_or_absent(error, "class") && string_or_absent(error, "desc");
    return ok ? "" : "error reply is not {class, desc}";
  }
  return "";
}

}  // namespace

Result<Message> ParseMessage(std::string_view line) {
  json msg = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded() || !msg.is_object()) {
    return Status::Corruption("malformed QMP message: " + Excerpt(line));
  }
  if (std::string problem = ShapeProblem(msg); !problem.empty()) {
    return Status::Corruption("QMP " + problem + ": " + Excerpt(line));
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
