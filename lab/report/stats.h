// Small statistics for comparing runs: means with confidence intervals over repetitions, and
// percentiles of samples. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <vector>

namespace chaoslab {

// A mean with its confidence interval [low, high] over `n` samples.
struct Interval {
  double mean = 0, low = 0, high = 0;
  int n = 0;
};

// The mean of `values` with a two-sided `confidence` interval from Student's t with n - 1 degrees
// of freedom (the repetitions of a comparison cell are few, so the normal approximation would be
// too narrow). One value: low = high = mean (no spread to estimate). Empty: nullopt.
std::optional<Interval> MeanInterval(const std::vector<double>& values, double confidence = 0.95);

// The `p` quantile (0 < p < 1) of Student's t distribution with `dof` >= 1 degrees of freedom,
// e.g. StudentTQuantile(0.975, 9) = 2.262.
double StudentTQuantile(double p, double dof);

// The `q` quantile (0 <= q <= 1) of `values` by linear interpolation between order statistics
// (Hyndman & Fan type 7, the default of R and NumPy): q = 0.5 of {1, 2, 3, 4} is 2.5. Empty:
// nullopt.
std::optional<double> Percentile(std::vector<double> values, double q);

}  // namespace chaoslab
