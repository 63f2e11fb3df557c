#include "lab/report/results.h"

#include <cstddef>

namespace chaoslab {
namespace {

// Adds one host to a group's counters; rates and MTTR are derived afterwards.
void Count(const HostResult& host, GroupResult* group, double* recover_sum, int* recover_n) {
  ++group->hosts;
  if (host.exposed) ++group->exposed;
  if (host.crashes > 0) ++group->crashed;
  if (host.boot_loop) ++group->boot_looped;
  if (host.recovered) ++group->recovered;
  if (host.final_state == "failed") ++group->failed;
  if (host.final_state == "lost") ++group->lost;
  if (host.recovered && host.time_to_recover_s) {
    *recover_sum += *host.time_to_recover_s;
    ++*recover_n;
  }
}

void Finish(GroupResult* group, double recover_sum, int recover_n) {
  group->crash_rate = group->exposed > 0 ? double(group->crashed) / group->exposed : 0.0;
  group->boot_loop_rate = group->exposed > 0 ? double(group->boot_looped) / group->exposed : 0.0;
  group->mttr_s = recover_n > 0 ? std::optional<double>(recover_sum / recover_n) : std::nullopt;
}

}  // namespace

void Summarize(RunResult* run) {
  run->groups.clear();
  run->fleet = GroupResult{.name = "fleet"};
  std::vector<double> sums;
  std::vector<int> counts;
  double fleet_sum = 0;
  int fleet_n = 0;
  for (const HostResult& host : run->hosts) {
    size_t i = 0;
    while (i < run->groups.size() && run->groups[i].name != host.group) ++i;
    if (i == run->groups.size()) {
      run->groups.push_back(GroupResult{.name = host.group});
      sums.push_back(0);
      counts.push_back(0);
    }
    Count(host, &run->groups[i], &sums[i], &counts[i]);
    Count(host, &run->fleet, &fleet_sum, &fleet_n);
  }
  for (size_t i = 0; i < run->groups.size(); ++i) Finish(&run->groups[i], sums[i], counts[i]);
  Finish(&run->fleet, fleet_sum, fleet_n);
}

}  // namespace chaoslab
