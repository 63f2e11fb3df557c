// Two-sample tests: do two sets of observations (e.g. hosts of a VM run and hosts of a simulated
// run) come from the same distribution? Kolmogorov–Smirnov (asymptotic, and by permutation for
// small or tied samples), chi-square homogeneity of a 2 x k table, Fisher's exact test on 2 x 2.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace chaoslab {

struct TwoSampleTest {
  double statistic = 0;  // D (KS), X^2 (chi-square), or the table's probability (Fisher)
  double p_value = 1;    // probability of a statistic at least as extreme under "same distribution"
  double dof = 0;        // chi-square only
};

// D = sup_x |F_a(x) - F_b(x)| of the two empirical distribution functions. 0 if either is empty.
double KsStatistic(const std::vector<double>& a, const std::vector<double>& b);

// Q_KS(lambda) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2), the Kolmogorov distribution's tail:
// Q_KS(1.3581) = 0.05.
double KolmogorovTail(double lambda);

// KS with the asymptotic p-value Q_KS((sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) D), ne = n m / (n + m)
// (Stephens' small-sample correction). For continuous data; with ties it is conservative.
TwoSampleTest KsTest(const std::vector<double>& a, const std::vector<double>& b);

// KS by permutation: p = (1 + #{D* >= D}) / (1 + permutations), D* from `permutations` random
// splits of the pooled sample into sizes |a| and |b| (seeded: the same inputs give the same p).
// Exact in distribution also for discrete data with many ties (counts, reboots), where the
// asymptotic p-value is far too conservative. `critical_d` (if not null): the smallest D this
// test would reject at `alpha`, i.e. the (1 - alpha) quantile of D* — what the test can detect.
TwoSampleTest KsPermutationTest(const std::vector<double>& a, const std::vector<double>& b,
                                int permutations = 20000, uint64_t seed = 291, double alpha = 0.01,
                                double* critical_d = nullptr);

// P(X >= x) for X ~ chi-square with `dof` degrees of freedom (regularised upper incomplete gamma):
// ChiSquareTail(3.841459, 1) = 0.05.
double ChiSquareTail(double x, double dof);

// Pearson's chi-square test of homogeneity of two rows of counts over the same k categories
// (columns that are 0 in both rows are dropped; dof = k' - 1). Use it when expected counts are
// about 5 or more.
TwoSampleTest ChiSquareHomogeneity(const std::vector<double>& row_a,
                                   const std::vector<double>& row_b);

// Fisher's exact test on the 2 x 2 table [[a, b], [c, d]], two-sided: the sum of the
// probabilities of all tables with the same margins that are no more likely than this one.
TwoSampleTest FisherExact(int64_t a, int64_t b, int64_t c, int64_t d);

}  // namespace chaoslab
