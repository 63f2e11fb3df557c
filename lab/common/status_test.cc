#include "lab/common/status.h"

#include <gtest/gtest.h>

namespace chaoslab {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(StatusTest, OkIsDefault) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().ToString(), "OK");
}

TEST(StatusTest, AtLocationNamesFileLineColumn) {
  Status s = Status::AtLocation({"a.yaml", 3, 7}, "unknown key 'x'");
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "a.yaml:3:7: unknown key 'x'");
}

TEST(StatusTest, WithContextPrefixes) {
  EXPECT_EQ(Status::NotFound("x").WithContext("load").message(), "load: x");
  EXPECT_TRUE(Status::Ok().WithContext("load").ok());
}

TEST(ResultTest, PropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "odd: 3");
}

}  // namespace
}  // namespace chaoslab
