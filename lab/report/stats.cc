#include "lab/report/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace chaoslab {
namespace {

// Continued fraction of the regularized incomplete beta function (modified Lentz's method); good
// for x < (a + 1) / (a + b + 2), where it converges quickly.
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEpsilon = 1e-15;
  auto guard = [](double v) { return std::fabs(v) < kTiny ? kTiny : v; };
  double c = 1.0;
  double d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
  double result = d;
  for (int m = 1; m <= 1000; ++m) {
    // Even term: m (b - m) x / ((a + 2m - 1)(a + 2m)).
    double even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 / guard(1.0 + even * d);
    c = guard(1.0 + even / c);
    result *= d * c;
    // Odd term: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    double odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 / guard(1.0 + odd * d);
    c = guard(1.0 + odd / c);
    double step = d * c;
    result *= step;
    if (std::fabs(step - 1.0) < kEpsilon) break;
  }
  return result;
}

// I_x(a, b), the regularized incomplete beta function.
double RegularizedBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * BetaContinuedFraction(a, b, x) / a;
  return 1.0 - front * BetaContinuedFraction(b, a, 1.0 - x) / b;
}

// P(T <= t) for Student's t with `dof` degrees of freedom.
double StudentTCdf(double t, double dof) {
  double tail = 0.5 * RegularizedBeta(dof / 2.0, 0.5, dof / (dof + t * t));
  return t >= 0 ? 1.0 - tail : tail;
}

}  // namespace

double StudentTQuantile(double p, double dof) {
  if (!(p > 0 && p < 1) || !(dof > 0)) return std::numeric_limits<double>::quiet_NaN();
  if (p == 0.5) return 0;
  if (p < 0.5) return -StudentTQuantile(1.0 - p, dof);
  // The CDF is monotonic: bracket the answer, then bisect (about 100 steps reach double precision).
  double low = 0, high = 1;
  while (StudentTCdf(high, dof) < p && high < 1e12) high *= 2;
  for (int i = 0; i < 200 && high - low > 1e-12 * std::max(1.0, high); ++i) {
    double mid = 0.5 * (low + high);
    (StudentTCdf(mid, dof) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

std::optional<Interval> MeanInterval(const std::vector<double>& values, double confidence) {
  if (values.empty()) return std::nullopt;
  const int n = static_cast<int>(values.size());
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  if (n == 1) return Interval{mean, mean, mean, 1};
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double sd = std::sqrt(squares / (n - 1));
  const double half = StudentTQuantile(0.5 + confidence / 2.0, n - 1) * sd / std::sqrt(double(n));
  return Interval{mean, mean - half, mean + half, n};
}

std::optional<double> Percentile(std::vector<double> values, double q) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * (values.size() - 1);  // 0-based position between order statistics
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (rank - below) * (values[above] - values[below]);
}

}  // namespace chaoslab
