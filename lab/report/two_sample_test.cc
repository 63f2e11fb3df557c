#include "lab/report/two_sample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace chaoslab {
namespace {

TEST(KolmogorovTailTest, MatchesPublishedCriticalValues) {
  // Critical values of the Kolmogorov distribution: 1.2238 (10 %), 1.3581 (5 %), 1.6276 (1 %).
  EXPECT_NEAR(KolmogorovTail(1.2238), 0.10, 2e-4);
  EXPECT_NEAR(KolmogorovTail(1.3581), 0.05, 2e-5);
  EXPECT_NEAR(KolmogorovTail(1.6276), 0.01, 1e-5);
  EXPECT_NEAR(KolmogorovTail(1.0), 0.2700, 1e-4);
  EXPECT_EQ(KolmogorovTail(0), 1);
  EXPECT_LT(KolmogorovTail(4), 1e-12);
}

TEST(KsStatisticTest, HandComputedValues) {
  // a's ECDF minus b's: 0.4 at 2, 0.6 - 1/6 at 3, 0.8 - 2/6 at 4, 1 - 3/6 at 5: D = 0.5.
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3, 4, 5}, {3, 4, 5, 6, 7, 8}), 0.5);
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3}, {4, 5, 6}), 1.0);
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3}, {3, 2, 1}), 0.0);
  // Ties across the samples move both functions at once: {1,1,2} vs {1,2,2}: 2/3 - 1/3 at 1.
  EXPECT_DOUBLE_EQ(KsStatistic({1, 1, 2}, {1, 2, 2}), 1.0 / 3);
  EXPECT_EQ(KsStatistic({}, {1}), 0);
}

TEST(KsTestTest, AsymptoticPValue) {
  // n = m = 100, D = 0.2: ne = 50, lambda = (sqrt(50) + 0.12 + 0.11 / sqrt(50)) * 0.2.
  std::vector<double> a, b;
  for (int i = 0; i < 100; ++i) a.push_back(i);
  for (int i = 0; i < 100; ++i) b.push_back(i + 19.5);
  auto t = KsTest(a, b);
  EXPECT_DOUBLE_EQ(t.statistic, 0.2);
  const double lambda = (std::sqrt(50.0) + 0.12 + 0.11 / std::sqrt(50.0)) * 0.2;
  EXPECT_NEAR(t.p_value, KolmogorovTail(lambda), 1e-12);
  EXPECT_NEAR(t.p_value, 0.0314, 1e-3);
}

TEST(KsPermutationTestTest, ExactSmallCaseAndCalibratedUnderTheNull) {
  // {1,2} vs {3,4}: of the C(4,2) = 6 splits, 2 give D = 1 ({1,2}|{3,4} and {3,4}|{1,2}), so the
  // exact p is 1/3; the permutation estimate must be close.
  auto t = KsPermutationTest({1, 2}, {3, 4}, 60000, 7);
  EXPECT_DOUBLE_EQ(t.statistic, 1.0);
  EXPECT_NEAR(t.p_value, 1.0 / 3, 0.01);
  // Same distribution (many ties, like reboot counts): p-values are roughly uniform, so about
  // 5 % of 200 tests fall below 0.05; and the test is not too conservative (the asymptotic one
  // would be, on 4 distinct values).
  std::mt19937_64 rng(11);
  std::discrete_distribution<int> reboots({0.5, 0.25, 0.15, 0.1});
  int below = 0;
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<double> a, b;
    for (int i = 0; i < 10; ++i) a.push_back(reboots(rng));
    for (int i = 0; i < 300; ++i) b.push_back(reboots(rng));
    if (KsPermutationTest(a, b, 500, static_cast<uint64_t>(rep)).p_value < 0.05) below++;
  }
  EXPECT_GE(below, 2);
  EXPECT_LE(below, 22);
  // A real difference is found: 10 draws all at the top value against the distribution above.
  std::vector<double> far(10, 3.0), ref;
  for (int i = 0; i < 300; ++i) ref.push_back(reboots(rng));
  double critical = 0;
  auto r = KsPermutationTest(far, ref, 5000, 3, 0.01, &critical);
  EXPECT_LT(r.p_value, 0.001);
  EXPECT_GT(critical, 0.2);
  EXPECT_LT(critical, 0.8);
}

TEST(ChiSquareTest, TailMatchesTables) {
  EXPECT_NEAR(ChiSquareTail(3.841459, 1), 0.05, 1e-7);
  EXPECT_NEAR(ChiSquareTail(5.991465, 2), 0.05, 1e-7);
  EXPECT_NEAR(ChiSquareTail(9.487729, 4), 0.05, 1e-7);
  EXPECT_NEAR(ChiSquareTail(15.08627, 5), 0.01, 1e-7);
  EXPECT_NEAR(ChiSquareTail(43.77297, 30), 0.05, 1e-7);
  EXPECT_NEAR(ChiSquareTail(0.4549364, 1), 0.5, 1e-7);
  EXPECT_NEAR(ChiSquareTail(2.0, 2), std::exp(-1.0), 1e-12);  // df 2: exp(-x/2)
  EXPECT_EQ(ChiSquareTail(0, 3), 1);
}

TEST(ChiSquareTest, HomogeneityHandComputed) {
  // Rows {10,20,30} and {20,20,20}: X^2 = 16/3, 2 dof, p = exp(-8/3).
  auto t = ChiSquareHomogeneity({10, 20, 30}, {20, 20, 20});
  EXPECT_NEAR(t.statistic, 16.0 / 3, 1e-12);
  EXPECT_EQ(t.dof, 2);
  EXPECT_NEAR(t.p_value, std::exp(-8.0 / 3), 1e-10);
  // An empty column is dropped (dof 2, same statistic).
  auto u = ChiSquareHomogeneity({10, 0, 20, 30}, {20, 0, 20, 20});
  EXPECT_NEAR(u.statistic, 16.0 / 3, 1e-12);
  EXPECT_EQ(u.dof, 2);
}

TEST(FisherExactTest, KnownTables) {
  // Lady tasting tea (3 of 4 right each way): two-sided p = 34/70.
  EXPECT_NEAR(FisherExact(3, 1, 1, 3).p_value, 34.0 / 70, 1e-12);
  // [[1, 9], [11, 3]]: two-sided p = 0.002759 (one-sided 0.001346).
  EXPECT_NEAR(FisherExact(1, 9, 11, 3).p_value, 0.002759, 1e-6);
  EXPECT_NEAR(FisherExact(5, 5, 5, 5).p_value, 1.0, 1e-12);
}

}  // namespace
}  // namespace chaoslab
