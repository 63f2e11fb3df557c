#include "lab/report/results.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "lab/report/stats.h"

namespace chaoslab {
namespace {

// What one group needs beyond its counters: the samples its statistics are taken from, each with
// the number of hosts it stands for (HostResult::weight).
using Weighted = std::vector<std::pair<double, long long>>;
struct Samples {
  Weighted recover_s;       // time_to_recover_s of recovered hosts
  Weighted healthy_from_s;  // per host: healthy for good from then on (inf: never)
};

// Seconds after release from which the host stays healthy: 0 without an outage, infinity when it
// never came back.
double HealthyFrom(const HostResult& host) {
  std::optional<Outage> outage = HostOutage(host);
  if (!outage) return 0;
  return outage->until_s.value_or(std::numeric_limits<double>::infinity());
}

// Adds one host row to a group's counters; rates and statistics are derived afterwards.
void Count(const HostResult& host, GroupResult* group, Samples* samples) {
  const long long w = std::max(1LL, host.weight);
  const int n = static_cast<int>(w);
  group->hosts += n;
  if (host.exposed) group->exposed += n;
  if (host.crashes > 0) group->crashed += n;
  if (host.boot_loop) group->boot_looped += n;
  if (host.recovered) group->recovered += n;
  if (host.final_state == "failed") group->failed += n;
  if (host.final_state == "lost") group->lost += n;
  if (host.recovered && host.time_to_recover_s)
    samples->recover_s.push_back({*host.time_to_recover_s, w});
  samples->healthy_from_s.push_back({HealthyFrom(host), w});
  group->technician_s += host.technician_s * static_cast<double>(w);
  group->keys_fetched += host.keys_fetched * n;
  if (!host.data_lost.empty()) group->data_lost_hosts += n;
  if (host.escalations > 0) group->escalated += n;
  group->data_lost_s += host.data_lost_s * static_cast<double>(w);
}

long long TotalWeight(const Weighted& v) {
  long long n = 0;
  for (const auto& [value, w] : v) n += w;
  return n;
}

// The value at 0-based position `i` of the sorted samples, each repeated `weight` times.
double At(const Weighted& sorted, long long i) {
  for (const auto& [value, w] : sorted) {
    if (i < w) return value;
    i -= w;
  }
  return sorted.back().first;
}

// stats.h's Percentile (linear between order statistics) over weighted samples: the same figure
// as if each sample were listed `weight` times.
std::optional<double> WeightedPercentile(Weighted v, double q) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const long long n = TotalWeight(v);
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(n - 1);
  const long long below = static_cast<long long>(std::floor(rank));
  const long long above = std::min(below + 1, n - 1);
  const double lo = At(v, below), hi = At(v, above);
  return lo + (rank - static_cast<double>(below)) * (hi - lo);
}

// The time by which `share` of the hosts are healthy for good: the ceil(share * n)-th smallest
// healthy-from time. Empty when that host never came back.
std::optional<double> TimeUntilHealthy(Weighted healthy_from, double share) {
  if (healthy_from.empty()) return std::nullopt;
  std::sort(healthy_from.begin(), healthy_from.end());
  const long long n = TotalWeight(healthy_from);
  // The epsilon keeps 0.9 * 10 from rounding up to 10 hosts.
  double needed = std::ceil(share * static_cast<double>(n) - 1e-9);
  long long index = static_cast<long long>(std::max(1.0, needed)) - 1;
  double t = At(healthy_from, std::min(index, n - 1));
  return std::isfinite(t) ? std::optional<double>(t) : std::nullopt;
}

void Finish(GroupResult* group, const Samples& samples) {
  group->crash_rate = group->exposed > 0 ? double(group->crashed) / group->exposed : 0.0;
  group->boot_loop_rate = group->exposed > 0 ? double(group->boot_looped) / group->exposed : 0.0;
  const Weighted& r = samples.recover_s;
  double sum = 0;
  for (const auto& [v, w] : r) sum += v * static_cast<double>(w);
  const long long n = TotalWeight(r);
  group->mttr_s = r.empty() ? std::nullopt : std::optional<double>(sum / static_cast<double>(n));
  group->recovery.p50_s = WeightedPercentile(r, 0.50);
  group->recovery.p90_s = WeightedPercentile(r, 0.90);
  group->recovery.p99_s = WeightedPercentile(r, 0.99);
  group->recovery.healthy_50_s = TimeUntilHealthy(samples.healthy_from_s, 0.50);
  group->recovery.healthy_90_s = TimeUntilHealthy(samples.healthy_from_s, 0.90);
  group->recovery.healthy_99_s = TimeUntilHealthy(samples.healthy_from_s, 0.99);
}

}  // namespace

std::optional<Outage> HostOutage(const HostResult& host) {
  const bool crashed = host.crashes > 0 || host.first_crash_s.has_value();
  if (!crashed) {
    if (host.final_state == "failed" || host.final_state == "lost") return Outage{0, std::nullopt};
    return std::nullopt;
  }
  Outage outage{host.first_crash_s.value_or(0), std::nullopt};
  if (host.recovered) {
    if (host.recovered_at_s) {
      outage.until_s = *host.recovered_at_s;
    } else if (host.time_to_recover_s) {  // journals from before recovered_at_s was recorded
      outage.until_s = outage.from_s + *host.time_to_recover_s;
    } else {
      outage.until_s = outage.from_s;
    }
  }
  return outage;
}

void Summarize(RunResult* run) {
  run->groups.clear();
  run->fleet = GroupResult{.name = "fleet"};
  std::vector<Samples> samples;
  Samples fleet;
  for (const HostResult& host : run->hosts) {
    size_t i = 0;
    while (i < run->groups.size() && run->groups[i].name != host.group) ++i;
    if (i == run->groups.size()) {
      run->groups.push_back(GroupResult{.name = host.group});
      samples.emplace_back();
    }
    Count(host, &run->groups[i], &samples[i]);
    Count(host, &run->fleet, &fleet);
  }
  for (size_t i = 0; i < run->groups.size(); ++i) Finish(&run->groups[i], samples[i]);
  Finish(&run->fleet, fleet);
}

}  // namespace chaoslab
