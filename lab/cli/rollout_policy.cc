#include "lab/cli/rollout_policy.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace chaoslab::run_internal {

std::vector<int> AssignRings(const config::RolloutConfig& rollout, size_t hosts, uint64_t seed) {
  std::vector<int> ring(hosts, 0);
  if (rollout.policy != config::RolloutPolicy::kRings || rollout.rings.empty()) return ring;
  std::vector<size_t> order(hosts);
  for (size_t i = 0; i < hosts; ++i) order[i] = i;
  std::mt19937_64 rng(seed ^ 0x5249'4E47ULL);  // "RING"
  std::shuffle(order.begin(), order.end(), rng);
  size_t next = 0;
  double cumulative = 0;
  for (size_t r = 0; r < rollout.rings.size(); ++r) {
    cumulative += rollout.rings[r].percent;
    size_t until = r + 1 == rollout.rings.size()
                       ? hosts
                       : static_cast<size_t>(std::floor(cumulative / 100.0 * hosts + 1e-9));
    if (rollout.rings[r].percent > 0) until = std::max(until, next + 1);
    until = std::min(until, hosts);
    for (; next < until; ++next) ring[order[next]] = static_cast<int>(r);
  }
  return ring;
}

}  // namespace chaoslab::run_internal
