#include "lab/qmp/qmp_message.h"

#include <gtest/gtest.h>

namespace chaoslab::qmp {
namespace {

using json = nlohmann::json;

TEST(QmpMessageTest, ParsesEventsRepliesAndGreetings) {
  auto event = ParseMessage(
      R"({"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": 3, "microseconds": 500000}})");
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  EXPECT_EQ(event->kind, Message::Kind::kEvent);
  EXPECT_EQ(event->event.name, "RESET");
  EXPECT_EQ(event->event.data, json({{"guest", true}}));
  EXPECT_DOUBLE_EQ(event->event.qemu_timestamp, 3.5);

  auto reply = ParseMessage(R"({"return": {}, "id": 7})");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->kind, Message::Kind::kReply);
  EXPECT_EQ(reply->id, 7);
  EXPECT_EQ(ParseMessage(R"({"return": {}, "id": "x"})").status().code(), ErrorCode::kCorruption);
  EXPECT_EQ(ParseMessage(R"({"QMP": {}})")->kind, Message::Kind::kGreeting);
}

TEST(QmpMessageTest, NonMessagesAreCorruption) {
  for (const char* line : {"", "garbage", "[1]", "42", R"({"event": 1})", R"({"hello": 1})"}) {
    auto msg = ParseMessage(line);
    ASSERT_FALSE(msg.ok()) << line;
    EXPECT_EQ(msg.status().code(), ErrorCode::kCorruption) << line;
  }
}

// Regression (issue 15): a timestamp member that is not a number made json::value() throw in
// the reader thread, which ended the lab with std::terminate. Now it is Corruption (the
// connection ends, its host is lost), never an exception.
TEST(QmpMessageTest, TimestampOfAnotherTypeIsCorruptionNotAThrow) {
  for (const char* line : {R"({"event": "STOP", "timestamp": {"seconds": "x"}})",
                           R"({"event": "STOP", "timestamp": {"microseconds": [1]}})",
                           R"({"event": "STOP", "timestamp": {"seconds": null}})",
                           R"({"event": "STOP", "timestamp": 5})"}) {
    Result<Message> msg = Status::Internal("not run");
    EXPECT_NO_THROW(msg = ParseMessage(line)) << line;
    EXPECT_EQ(msg.status().code(), ErrorCode::kCorruption) << line;
    EXPECT_NE(msg.status().message().find("timestamp"), std::string::npos) << line;
  }
}

// Regression (issue 15): an "error" that is not an object, or whose class or desc is not a
// string, made Execute() throw instead of returning an error. The reader refuses such a reply
// (Corruption); ReplyResult itself never throws whatever it is given.
TEST(QmpMessageTest, ErrorRepliesOfAnyShapeAreErrors) {
  for (const char* line :
       {R"({"error": 5, "id": 1})", R"({"error": {"class": 1, "desc": "d"}, "id": 1})",
        R"({"error": {"class": "GenericError", "desc": ["d"]}, "id": 1})",
        R"({"error": null, "id": 1})"}) {
    EXPECT_EQ(ParseMessage(line).status().code(), ErrorCode::kCorruption) << line;
    Result<json> result = json();
    EXPECT_NO_THROW(result = ReplyResult("stop", json::parse(line))) << line;
    EXPECT_EQ(result.status().code(), ErrorCode::kFailedPrecondition) << line;
  }
  auto not_found = ReplyResult("x", json::parse(R"({"error": {"class": "CommandNotFound"}})"));
  EXPECT_EQ(not_found.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(ReplyResult("x", json::parse(R"({"return": 3})")).value(), json(3));
  EXPECT_EQ(ReplyResult("x", json::parse(R"({"id": 3})")).value(), json::object());
}

}  // namespace
}  // namespace chaoslab::qmp
