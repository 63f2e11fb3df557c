// What a run yields: one organisation's host rows and services, merged across organisations.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "lab/sim/sim.h"
#include "lab/sim/sim_internal.h"

namespace chaoslab::sim {
namespace internal {
namespace {

int64_t Ms(double s) { return std::llround(s * 1000.0); }
uint16_t TimeBin(double t) {
  if (t <= 0) return 0;
  return static_cast<uint16_t>(1 + std::floor(std::log1p(t / 60.0) / std::log(1.05)));
}

const char* DataLostName(uint8_t d) { return d == 1 ? "since-snapshot" : d == 2 ? "all" : ""; }
using recovery::RecoveredByName;

}  // namespace

void OrgSim::Figures(const Host& h, size_t index, bool per_host, Aggregator* agg,
                     OrgOut* out) const {
  const double release = sc_.rollout.release;
  const uint32_t i = static_cast<uint32_t>(index);
  const recovery::HostRecord& r = model_.host(i);
  const GroupPlan& g = (*plan_.groups)[h.group];
  const bool recovered = r.recovered_at >= 0;
  const bool has_ring = sc_.rollout.policy == config::RolloutPolicy::kRings && h.ring != 255 &&
                        h.ring < ring_names_.size();
  if (r.first_crash < 0 || (recovered && r.recovered_at - release <= 86400.0)) out->healthy_24h++;
  if (per_host) {
    const OutGroup& og = out_groups_[g.out];
    HostResult row;
    size_t within = index;
    for (size_t k = 0; k < h.group; ++k) within -= static_cast<size_t>((*plan_.groups)[k].g->count);
    row.id = fmt::format("{}{}-{:02}", plan_.prefix, g.g->name, within + 1);
    row.group = og.name;
    model_.FillResult(i, release, now_, &row);
    row.exposed = h.exposed;
    if (r.crashes > 0) row.stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
    row.site = og.site;
    row.role = og.role;
    row.bitlocker = og.bitlocker;
    row.keys_fetched = h.keys;
    row.data_lost = DataLostName(h.data_lost);
    row.data_lost_s = h.data_lost_s;
    if (has_ring) row.ring = ring_names_[h.ring];
    if (g.pinned) row.ring = "pinned";
    row.network = og.network;
    out->hosts.push_back(std::move(row));
    return;
  }
  const recovery::WaitFigures w = model_.Waits(i, now_);
  RowKey k{};
  k.group = static_cast<uint32_t>(g.out);
  k.crashes = static_cast<uint16_t>(r.crashes);
  k.reboots = static_cast<uint16_t>(r.reboots);
  k.fc_bin = r.first_crash >= 0 ? TimeBin(r.first_crash - release) : 0;
  k.ra_bin = recovered ? TimeBin(r.recovered_at - release) : 0;
  k.failed = agg->Failed(w.failed_why);
  k.state = static_cast<uint8_t>(r.state);
  k.waited_for = static_cast<uint8_t>(w.longest + 1);
  k.recovered_by = r.recovered_by;
  k.escalations = r.level;
  k.data_lost = h.data_lost;
  k.keys = static_cast<uint8_t>(std::min<int>(h.keys, 255));
  k.ring = g.pinned ? 254 : has_ring ? h.ring : 255;
  k.flags = static_cast<uint8_t>((h.exposed ? 1 : 0) | (r.boot_loop ? 2 : 0) | (recovered ? 4 : 0) |
                                 (r.first_crash >= 0 ? 8 : 0));
  RowAcc& a = agg->rows[k];
  a.weight++;
  if (r.first_crash >= 0) a.first_crash_ms += Ms(r.first_crash - release);
  if (recovered) {
    a.recovered_at_ms += Ms(r.recovered_at - release);
    a.ttr_ms += Ms(r.recovered_at - r.first_crash);
  }
  a.technician_ms += Ms(w.technician_s);
  a.waited_ms += Ms(w.waited_s);
  a.data_lost_ms += Ms(h.data_lost_s);
}

void AggregatedRows(const World& w, const std::vector<Aggregator>& aggs,
                    std::vector<HostResult>* hosts) {
  // Merge the workers' rows; integer sums make the result independent of the thread count.
  struct FinalKey {
    uint32_t group;
    uint8_t state;
    std::string failed;
    RowKey key;
    bool operator<(const FinalKey& o) const {
      if (group != o.group) return group < o.group;
      if (state != o.state) return state < o.state;
      if (failed != o.failed) return failed < o.failed;
      RowKey a = key, b = o.key;
      a.failed = b.failed = 0;
      return std::memcmp(&a, &b, sizeof(RowKey)) < 0;
    }
  };
  std::map<FinalKey, RowAcc> rows;
  for (const auto& agg : aggs) {
    for (const auto& [k, acc] : agg.rows) {
      FinalKey fk{k.group, k.state, agg.failed_texts[k.failed], k};
      fk.key.failed = 0;
      RowAcc& r = rows[fk];
      r.weight += acc.weight;
      r.first_crash_ms += acc.first_crash_ms;
      r.recovered_at_ms += acc.recovered_at_ms;
      r.ttr_ms += acc.ttr_ms;
      r.technician_ms += acc.technician_ms;
      r.waited_ms += acc.waited_ms;
      r.data_lost_ms += acc.data_lost_ms;
    }
  }
  std::vector<int> row_of_group(w.out_groups.size(), 0);
  for (const auto& [fk, acc] : rows) {
    const RowKey& k = fk.key;
    const OutGroup& og = w.out_groups[k.group];
    const double n = static_cast<double>(acc.weight);
    HostResult r;
    r.weight = acc.weight;
    r.id = fmt::format("{}#{}", og.name, ++row_of_group[k.group]);
    r.group = og.name;
    r.final_state = std::string(HostStateName(static_cast<HostState>(k.state)));
    r.exposed = k.flags & 1;
    r.boot_loop = k.flags & 2;
    r.recovered = k.flags & 4;
    r.crashes = k.crashes;
    r.reboots = k.reboots;
    if (k.flags & 8) r.first_crash_s = acc.first_crash_ms / 1000.0 / n;
    if (r.recovered) {
      r.recovered_at_s = acc.recovered_at_ms / 1000.0 / n;
      if (k.flags & 8) r.time_to_recover_s = acc.ttr_ms / 1000.0 / n;
    }
    if (k.crashes > 0) r.stop_code = "PAGE_FAULT_IN_NONPAGED_AREA";
    r.site = og.site;
    r.role = og.role;
    r.bitlocker = og.bitlocker;
    r.recovered_by = RecoveredByName(k.recovered_by);
    r.escalations = k.escalations;
    r.technician_s = acc.technician_ms / 1000.0 / n;
    r.waited_s = acc.waited_ms / 1000.0 / n;
    if (k.waited_for > 0)
      r.waited_for = recovery::WaitName(static_cast<recovery::Wait>(k.waited_for - 1));
    r.keys_fetched = k.keys;
    r.data_lost = DataLostName(k.data_lost);
    r.data_lost_s = acc.data_lost_ms / 1000.0 / n;
    r.failed_why = fk.failed;
    if (k.ring == 254) r.ring = "pinned";
    if (k.ring < w.ring_names.size()) r.ring = w.ring_names[k.ring];
    r.network = og.network;
    hosts->push_back(std::move(r));
  }
}

// Services: one organisation: as measured; a world: per archetype's service, the mean downtime
// of its organisations, the first outage, the last return, up at the end only if all are.
std::vector<ServiceResult> MergeServices(const World& w, const std::vector<OrgOut>& outs) {
  std::vector<ServiceResult> services(w.service_names.size());
  std::vector<int64_t> service_orgs(w.service_names.size(), 0);
  for (size_t s = 0; s < services.size(); ++s) services[s].name = w.service_names[s];
  for (size_t i = 0; i < outs.size(); ++i) {
    const size_t base = w.service_base[static_cast<size_t>(w.orgs[i].archetype)];
    for (size_t s = 0; s < outs[i].services.size(); ++s) {
      const ServiceOut& so = outs[i].services[s];
      ServiceResult& r = services[base + s];
      service_orgs[base + s]++;
      r.downtime_s += so.downtime_s;
      r.catching_up_s += so.catching_up_s;
      if (so.down_at_s)
        r.down_at_s = r.down_at_s ? std::min(*r.down_at_s, *so.down_at_s) : *so.down_at_s;
      if (so.up_again_s)
        r.up_again_s = r.up_again_s ? std::max(*r.up_again_s, *so.up_again_s) : *so.up_again_s;
      r.up_at_end = r.up_at_end && so.up_at_end;
    }
  }
  for (size_t s = 0; s < services.size(); ++s) {
    if (service_orgs[s] > 1) {
      services[s].downtime_s /= static_cast<double>(service_orgs[s]);
      services[s].catching_up_s /= static_cast<double>(service_orgs[s]);
      services[s].name += fmt::format(" (mean of {} organisations)", service_orgs[s]);
    }
    if (!services[s].up_at_end) services[s].up_again_s.reset();
  }
  return services;
}

}  // namespace internal

using namespace internal;  // NOLINT: what the simulator's files share (sim_internal.h)

std::vector<double> HealthyShareAt(const RunResult& run, const std::vector<double>& times_s) {
  std::vector<std::pair<double, double>> from;  // healthy-from, weight
  double total = 0;
  for (const auto& h : run.hosts) {
    const double weight = static_cast<double>(h.weight);
    total += weight;
    std::optional<Outage> outage = HostOutage(h);
    double t = !outage ? 0 : outage->until_s.value_or(kInf);
    from.push_back({t, weight});
  }
  std::sort(from.begin(), from.end());
  std::vector<double> share;
  for (double t : times_s) {
    double healthy = 0;
    for (const auto& [f, wgt] : from) {
      if (f > t) break;
      healthy += wgt;
    }
    share.push_back(total > 0 ? healthy / total : 0);
  }
  return share;
}

}  // namespace chaoslab::sim
