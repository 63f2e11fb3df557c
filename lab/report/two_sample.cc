#include "lab/report/two_sample.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

namespace chaoslab {
namespace {

// Regularised lower incomplete gamma P(s, x) by its power series (converges fast for x < s + 1).
double LowerGammaSeries(double s, double x) {
  double term = 1.0 / s, sum = term;
  for (int n = 1; n < 10000; ++n) {
    term *= x / (s + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
  }
  return sum * std::exp(-x + s * std::log(x) - std::lgamma(s));
}

// Regularised upper incomplete gamma Q(s, x) by its continued fraction (x >= s + 1), evaluated
// with the modified Lentz method.
double UpperGammaFraction(double s, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - s, c = 1.0 / kTiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - s);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(-x + s * std::log(x) - std::lgamma(s)) * h;
}

// log C(n, k)
double LogChoose(int64_t n, int64_t k) {
  return std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(k) + 1) -
         std::lgamma(static_cast<double>(n - k) + 1);
}

}  // namespace

double KsStatistic(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) return 0;
  std::vector<double> x = a, y = b;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  const double n = static_cast<double>(x.size()), m = static_cast<double>(y.size());
  size_t i = 0, j = 0;
  double d = 0;
  // Step both distribution functions past each distinct value, then compare (ties move together).
  while (i < x.size() || j < y.size()) {
    const double v = j >= y.size() || (i < x.size() && x[i] <= y[j]) ? x[i] : y[j];
    while (i < x.size() && x[i] == v) ++i;
    while (j < y.size() && y[j] == v) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / n - static_cast<double>(j) / m));
  }
  return d;
}

double KolmogorovTail(double lambda) {
  if (lambda <= 0) return 1;
  if (lambda < 0.2) return 1;  // the series converges slowly there, and Q is 1 to 1e-9
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    sum += (k % 2 ? term : -term);
    if (term < 1e-18) break;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

TwoSampleTest KsTest(const std::vector<double>& a, const std::vector<double>& b) {
  TwoSampleTest t;
  t.statistic = KsStatistic(a, b);
  if (a.empty() || b.empty()) return t;
  const double n = static_cast<double>(a.size()), m = static_cast<double>(b.size());
  const double root = std::sqrt(n * m / (n + m));
  t.p_value = KolmogorovTail((root + 0.12 + 0.11 / root) * t.statistic);
  return t;
}

TwoSampleTest KsPermutationTest(const std::vector<double>& a, const std::vector<double>& b,
                                int permutations, uint64_t seed, double alpha, double* critical_d) {
  TwoSampleTest t;
  t.statistic = KsStatistic(a, b);
  if (critical_d) *critical_d = 1;
  if (a.empty() || b.empty() || permutations < 1) return t;
  // The pooled sample as distinct values with counts; each observation is its value's index, so a
  // permutation's D is one pass over the distinct values.
  std::vector<double> pooled = a;
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::vector<double> values = pooled;
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<int> index(pooled.size()), count(values.size(), 0);
  for (size_t i = 0; i < pooled.size(); ++i) {
    index[i] = static_cast<int>(std::lower_bound(values.begin(), values.end(), pooled[i]) -
                                values.begin());
    count[static_cast<size_t>(index[i])]++;
  }
  // Draw the smaller side (a partial Fisher–Yates shuffle); the other side is the rest.
  const size_t small = std::min(a.size(), b.size());
  const double ns = static_cast<double>(small), nl = static_cast<double>(pooled.size() - small);
  std::mt19937_64 rng(seed);
  std::vector<int> in_small(values.size(), 0);
  std::vector<double> ds;
  ds.reserve(static_cast<size_t>(permutations));
  int extreme = 0;
  for (int p = 0; p < permutations; ++p) {
    for (size_t k = 0; k < small; ++k) {
      std::uniform_int_distribution<size_t> pick(k, index.size() - 1);
      std::swap(index[k], index[pick(rng)]);
      in_small[static_cast<size_t>(index[k])]++;
    }
    double d = 0, cs = 0, cp = 0;
    for (size_t j = 0; j < values.size(); ++j) {
      cs += in_small[j];
      cp += count[j];
      d = std::max(d, std::fabs(cs / ns - (cp - cs) / nl));
      in_small[j] = 0;
    }
    // Equal D up to rounding counts as "at least as extreme".
    if (d >= t.statistic - 1e-12) extreme++;
    ds.push_back(d);
  }
  t.p_value = (1.0 + extreme) / (1.0 + permutations);
  if (critical_d) {
    // Smallest observed D whose permutation tail is <= alpha.
    std::sort(ds.begin(), ds.end());
    *critical_d = 1;
    for (size_t i = 0; i < ds.size(); ++i) {
      const size_t at_least =
          static_cast<size_t>(ds.end() - std::lower_bound(ds.begin(), ds.end(), ds[i] - 1e-12));
      if ((1.0 + static_cast<double>(at_least)) / (1.0 + permutations) <= alpha) {
        *critical_d = ds[i];
        break;
      }
    }
  }
  return t;
}

double ChiSquareTail(double x, double dof) {
  if (!(dof > 0)) return std::numeric_limits<double>::quiet_NaN();
  if (x <= 0) return 1;
  const double s = dof / 2, h = x / 2;
  return h < s + 1 ? 1.0 - LowerGammaSeries(s, h) : UpperGammaFraction(s, h);
}

TwoSampleTest ChiSquareHomogeneity(const std::vector<double>& row_a,
                                   const std::vector<double>& row_b) {
  TwoSampleTest t;
  const size_t k = std::min(row_a.size(), row_b.size());
  const double na = std::accumulate(row_a.begin(), row_a.begin() + static_cast<long>(k), 0.0);
  const double nb = std::accumulate(row_b.begin(), row_b.begin() + static_cast<long>(k), 0.0);
  if (na <= 0 || nb <= 0) return t;
  int used = 0;
  for (size_t j = 0; j < k; ++j) {
    const double col = row_a[j] + row_b[j];
    if (col <= 0) continue;
    used++;
    const double ea = na * col / (na + nb), eb = nb * col / (na + nb);
    t.statistic += (row_a[j] - ea) * (row_a[j] - ea) / ea + (row_b[j] - eb) * (row_b[j] - eb) / eb;
  }
  if (used < 2) return t;
  t.dof = used - 1;
  t.p_value = ChiSquareTail(t.statistic, t.dof);
  return t;
}

TwoSampleTest FisherExact(int64_t a, int64_t b, int64_t c, int64_t d) {
  TwoSampleTest t;
  const int64_t r1 = a + b, r2 = c + d, c1 = a + c, n = a + b + c + d;
  if (n == 0) return t;
  // P(top-left = x) for the hypergeometric distribution of tables with these margins.
  auto log_p = [&](int64_t x) {
    return LogChoose(r1, x) + LogChoose(r2, c1 - x) - LogChoose(n, c1);
  };
  const double observed = log_p(a);
  t.statistic = std::exp(observed);
  double p = 0;
  for (int64_t x = std::max<int64_t>(0, c1 - r2); x <= std::min(r1, c1); ++x) {
    const double lp = log_p(x);
    if (lp <= observed + 1e-7) p += std::exp(lp);  // relative tolerance, as R's fisher.test
  }
  t.p_value = std::min(1.0, p);
  return t;
}

}  // namespace chaoslab
