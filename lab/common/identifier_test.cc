#include "lab/common/identifier.h"

#include <gtest/gtest.h>

#include <string>

namespace chaoslab {
namespace {

TEST(IdentifierTest, PlainNamesPass) {
  for (const char* name : {"ws", "ws-711", "crew_app", "DC01", "7", "a-b_c-9"}) {
    EXPECT_EQ(IdentifierProblem(name), "") << name;
    EXPECT_TRUE(CheckIdentifier("group name", name).ok()) << name;
  }
  EXPECT_EQ(IdentifierProblem(std::string(kMaxIdentifierLength, 'a')), "");
}

// Issue 15: a group named ../../../../x/pwn wrote its disk outside the run folder.
TEST(IdentifierTest, NamesThatCouldBecomeSomethingElseFail) {
  for (const char* name : {"",        ".",
                           "..",      "../../../../x/pwn",
                           "a/b",     "-rf",
                           "--help",  "_x",
                           ".hidden", "a b",
                           "a,b",     "a=b",
                           "a;b",     "a$b",
                           "a`b",     "a'b",
                           "a\"b",    "a\\b",
                           "a\nb",    "a:b",
                           "a?b",     "a*b",
                           "a.b",     "a%2fb",
                           "a<b>",    "\xc3\xa9t\xc3\xa9"}) {
    EXPECT_NE(IdentifierProblem(name), "") << "'" << name << "'";
    Status s = CheckIdentifier("group name", name);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << name;
  }
  EXPECT_NE(IdentifierProblem(std::string(kMaxIdentifierLength + 1, 'a')), "");
  EXPECT_NE(IdentifierProblem(std::string("a\0b", 3)), "");
}

TEST(IdentifierTest, MessageNamesWhatWhichAndTheRule) {
  Status s = CheckIdentifier("group name", "x/../y");
  EXPECT_NE(s.message().find("group name 'x/../y' contains '/'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::string(IdentifierRule())), std::string::npos) << s.message();
  // A name that cannot be printed is shown escaped, not raw.
  Status nl = CheckIdentifier("site name", "a\nb");
  EXPECT_EQ(nl.message().find('\n'), std::string::npos) << nl.message();
}

}  // namespace
}  // namespace chaoslab
