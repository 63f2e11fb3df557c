#include "lab/common/json_text.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

TEST(JsonTextTest, InvalidUtf8BecomesTheReplacementCharacter) {
  nlohmann::json j = {{"line", std::string("STOP \xff\xfe code \xc3")}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what every plain dump() does
  std::string text = JsonText(j);
  EXPECT_EQ(nlohmann::json::parse(text)["line"], "STOP \xEF\xBF\xBD\xEF\xBF\xBD code \xEF\xBF\xBD");
  EXPECT_EQ(JsonText({{"a", "\xc3\xa9t\xc3\xa9"}}),
            "{\"a\":\"\xc3\xa9t\xc3\xa9\"}");  // valid stays
  EXPECT_NE(JsonText(j, 2).find("\n  \"line\""), std::string::npos);
}

TEST(JsonTextTest, Utf8PrefixNeverCutsACharacter) {
  const std::string e = "\xc3\xa9";         // é, 2 bytes
  const std::string euro = "\xe2\x82\xac";  // €, 3 bytes
  EXPECT_EQ(Utf8Prefix("abc", 10), "abc");
  EXPECT_EQ(Utf8Prefix("abc", 2), "ab");
  EXPECT_EQ(Utf8Prefix(e + e, 3), e);
  EXPECT_EQ(Utf8Prefix(e + e, 4), e + e);
  EXPECT_EQ(Utf8Prefix("a" + euro, 2), "a");
  EXPECT_EQ(Utf8Prefix("a" + euro, 3), "a");
  EXPECT_EQ(Utf8Prefix("a" + euro, 4), "a" + euro);
  EXPECT_EQ(Utf8Prefix(e, 0), "");
  // Garbage of continuation bytes only: still bounded, at most 3 bytes given back.
  EXPECT_LE(Utf8Prefix(std::string(10, '\x80'), 8).size(), 8u);
}

}  // namespace
}  // namespace chaoslab
