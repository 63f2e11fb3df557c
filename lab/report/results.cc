#include "lab/report/results.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "lab/report/stats.h"

namespace chaoslab {
namespace {

// What one group needs beyond its counters: the samples its statistics are taken from.
struct Samples {
  std::vector<double> recover_s;       // time_to_recover_s of recovered hosts
  std::vector<double> healthy_from_s;  // per host: healthy for good from then on (inf: never)
};

// Seconds after release from which the host stays healthy: 0 without an outage, infinity when it
// never came back.
double HealthyFrom(const HostResult& host) {
  std::optional<Outage> outage = HostOutage(host);
  if (!outage) return 0;
  return outage->until_s.value_or(std::numeric_limits<double>::infinity());
}

// Adds one host to a group's counters; rates and statistics are derived afterwards.
void Count(const HostResult& host, GroupResult* group, Samples* samples) {
  ++group->hosts;
  if (host.exposed) ++group->exposed;
  if (host.crashes > 0) ++group->crashed;
  if (host.boot_loop) ++group->boot_looped;
  if (host.recovered) ++group->recovered;
  if (host.final_state == "failed") ++group->failed;
  if (host.final_state == "lost") ++group->lost;
  if (host.recovered && host.time_to_recover_s)
    samples->recover_s.push_back(*host.time_to_recover_s);
  samples->healthy_from_s.push_back(HealthyFrom(host));
  group->technician_s += host.technician_s;
  group->keys_fetched += host.keys_fetched;
  if (!host.data_lost.empty()) ++group->data_lost_hosts;
  group->data_lost_s += host.data_lost_s;
}

// The time by which `share` of the hosts are healthy for good: the ceil(share * n)-th smallest
// healthy-from time. Empty when that host never came back.
std::optional<double> TimeUntilHealthy(std::vector<double> healthy_from, double share) {
  if (healthy_from.empty()) return std::nullopt;
  std::sort(healthy_from.begin(), healthy_from.end());
  // The epsilon keeps 0.9 * 10 from rounding up to 10 hosts.
  double needed = std::ceil(share * healthy_from.size() - 1e-9);
  size_t index = static_cast<size_t>(std::max(1.0, needed)) - 1;
  double t = healthy_from[std::min(index, healthy_from.size() - 1)];
  return std::isfinite(t) ? std::optional<double>(t) : std::nullopt;
}

void Finish(GroupResult* group, const Samples& samples) {
  group->crash_rate = group->exposed > 0 ? double(group->crashed) / group->exposed : 0.0;
  group->boot_loop_rate = group->exposed > 0 ? double(group->boot_looped) / group->exposed : 0.0;
  const std::vector<double>& r = samples.recover_s;
  double sum = 0;
  for (double v : r) sum += v;
  group->mttr_s = r.empty() ? std::nullopt : std::optional<double>(sum / r.size());
  group->recovery.p50_s = Percentile(r, 0.50);
  group->recovery.p90_s = Percentile(r, 0.90);
  group->recovery.p99_s = Percentile(r, 0.99);
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
