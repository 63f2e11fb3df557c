#include "lab/report/stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace chaoslab {
namespace {

TEST(StudentTQuantileTest, MatchesPublishedTables) {
  // Two-sided 95 % critical values (p = 0.975) from standard t tables.
  EXPECT_NEAR(StudentTQuantile(0.975, 1), 12.7062047, 1e-6);
  EXPECT_NEAR(StudentTQuantile(0.975, 2), 4.30265273, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 4), 2.77644511, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 9), 2.26215716, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 30), 2.04227246, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.975, 1000), 1.96233908, 1e-7);
  // Other levels, and symmetry.
  EXPECT_NEAR(StudentTQuantile(0.95, 4), 2.13184679, 1e-7);
  EXPECT_NEAR(StudentTQuantile(0.995, 3), 5.84090931, 1e-6);
  EXPECT_NEAR(StudentTQuantile(0.025, 9), -2.26215716, 1e-7);
  EXPECT_EQ(StudentTQuantile(0.5, 7), 0);
  EXPECT_TRUE(std::isnan(StudentTQuantile(1.0, 3)));
  EXPECT_TRUE(std::isnan(StudentTQuantile(0.9, 0)));
}

TEST(MeanIntervalTest, KnownValues) {
  // mean 3, sd sqrt(2.5), se sqrt(0.5), t(0.975, 4) = 2.77644511.
  auto i = MeanInterval({1, 2, 3, 4, 5});
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->n, 5);
  EXPECT_DOUBLE_EQ(i->mean, 3);
  EXPECT_NEAR(i->low, 3 - 2.77644511 * std::sqrt(0.5), 1e-7);
  EXPECT_NEAR(i->high, 3 + 2.77644511 * std::sqrt(0.5), 1e-7);

  // Two values 10 and 20: se 5, t(0.975, 1) = 12.706 → ±63.53.
  auto two = MeanInterval({10, 20});
  EXPECT_DOUBLE_EQ(two->mean, 15);
  EXPECT_NEAR(two->high - two->mean, 63.5310236, 1e-5);

  // 90 % interval is narrower: t(0.95, 4) = 2.13184679.
  auto ninety = MeanInterval({1, 2, 3, 4, 5}, 0.90);
  EXPECT_NEAR(ninety->high, 3 + 2.13184679 * std::sqrt(0.5), 1e-7);
}

TEST(MeanIntervalTest, OneValueEqualValuesAndNone) {
  auto one = MeanInterval({42.5});
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->n, 1);
  EXPECT_EQ(one->mean, 42.5);
  EXPECT_EQ(one->low, 42.5);
  EXPECT_EQ(one->high, 42.5);

  auto same = MeanInterval({7, 7, 7});
  EXPECT_EQ(same->low, 7);
  EXPECT_EQ(same->high, 7);

  EXPECT_FALSE(MeanInterval({}).has_value());
}

TEST(PercentileTest, LinearInterpolationLikeNumpy) {
  EXPECT_DOUBLE_EQ(*Percentile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(*Percentile({1, 2, 3, 4}, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(*Percentile({4, 1, 3, 2}, 0.9), 3.7);  // order of input does not matter
  EXPECT_DOUBLE_EQ(*Percentile({15, 20, 35, 40, 50}, 0.4), 29);
  EXPECT_DOUBLE_EQ(*Percentile({15, 20, 35, 40, 50}, 0.0), 15);
  EXPECT_DOUBLE_EQ(*Percentile({15, 20, 35, 40, 50}, 1.0), 50);
  // numpy.percentile(range(1, 101), 99) = 99.01
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_NEAR(*Percentile(hundred, 0.99), 99.01, 1e-9);
  EXPECT_DOUBLE_EQ(*Percentile({8}, 0.99), 8);
  EXPECT_FALSE(Percentile({}, 0.5).has_value());
}

}  // namespace
}  // namespace chaoslab
