// The fleet simulator's driver: planning the world, running its organisations on threads, RunSim.
#include "lab/sim/sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <thread>

#include "lab/common/clock_text.h"
#include "lab/config/config_loader.h"
#include "lab/recovery/event_heap.h"
#include "lab/sim/event_queue.h"
#include "lab/sim/sim_internal.h"

namespace chaoslab::sim {

using namespace internal;  // NOLINT: what the simulator's files share (sim_internal.h)

namespace {

// --- Planning the world --------------------------------------------------------------------------

// An archetype's groups: as the machines see them, and their recovery profiles (world->profiles).
Result<std::vector<GroupPlan>> PlanGroups(const config::ScenarioConfig& sc, const Calibration& cal,
                                          const config::SetupConfig& setup,
                                          const config::RunbookConfig& runbook,
                                          const std::string& prefix, World* world) {
  ASSIGN_OR_RETURN(auto ranks, config::PriorityRanks(runbook, setup));
  std::vector<GroupPlan> out;
  std::vector<recovery::Profile> profiles;
  for (const auto& g : setup.groups) {
    GroupPlan p;
    recovery::Profile profile;
    p.g = &g;
    profile.site = 0;
    for (size_t s = 0; s < setup.sites.size(); ++s)
      if (setup.sites[s].name == g.site) profile.site = static_cast<int>(s);
    profile.group = static_cast<int>(out.size());
    profile.bitlocker = g.bitlocker;
    profile.oob_console = g.oob_console;
    auto timing = sc.image.timing.find(g.role);
    if (timing != sc.image.timing.end()) p.timing = timing->second;
    p.online = g.online_in_window && g.network != config::Network::kOffline;
    for (const auto& pinned : sc.rollout.pinned) p.pinned |= pinned == g.name;
    p.crashes_on_fault =
        g.sensor_version == "7.11" && sc.fault.kind == config::FaultKind::kChannel291;
    if (p.online && p.crashes_on_fault) {
      auto race = cal.race.find(g.network);
      if (race == cal.race.end()) {
        return Status::FailedPrecondition(fmt::format(
            "calibration {} has no race figures for network profile '{}' (group {} of {}); run "
            "`chaoslab calibrate`",
            cal.file, config::NetworkName(g.network), g.name, setup.name));
      }
      p.race_p = race->second.WinProbability();
      if (sc.vendor_remediation.enabled) {
        auto remediation = cal.remediation.find(g.network);
        if (remediation == cal.remediation.end()) {
          return Status::FailedPrecondition(fmt::format(
              "the scenario has vendor_remediation ({}), but calibration {} has no remediation "
              "figures for network profile '{}' (group {} of {}); run `chaoslab calibrate`, "
              "which measures them on real guests",
              sc.vendor_remediation.where.ToString(), cal.file, config::NetworkName(g.network),
              g.name, setup.name));
        }
        p.remediation_p = remediation->second.WinProbability();
      }
    }
    auto rank = ranks.find(g.name);
    if (rank != ranks.end()) profile.rank = rank->second;
    profile.watched = !setup.key_escrow.hosted_on.empty() && setup.key_escrow.hosted_on == g.name;
    for (const auto& svc : setup.services)
      for (const auto& need : svc.needs) profile.watched |= need.group == g.name;
    recovery::AssignSteps(runbook, g, &profile);
    profiles.push_back(std::move(profile));
    p.out = static_cast<int>(world->out_groups.size());
    world->out_groups.push_back(OutGroup{prefix + g.name, g.site,
                                         std::string(config::RoleName(g.role)),
                                         std::string(config::NetworkName(g.network)), g.bitlocker});
    out.push_back(p);
  }
  world->profiles.push_back(std::move(profiles));
  return out;
}

// With a mix's regions: each archetype's setup once per region, every site in its time zone.
void PlanRegions(const Mix* mix, World* w) {
  if (!mix || mix->regions.empty()) return;
  for (const Region& r : mix->regions) w->region_names.push_back(r.name);
  w->regional_setups.reserve(w->setups.size() * mix->regions.size());
  for (const auto& setup : w->setups) {
    for (const Region& r : mix->regions) {
      config::SetupConfig copy = setup;
      for (auto& site : copy.sites) site.utc_offset = r.utc_offset;
      w->regional_setups.push_back(std::move(copy));
    }
  }
}

// One progress line per region: its hosts and the share healthy at release + 24 h.
void ReportRegions(const World& w, const std::vector<OrgOut>& outs,
                   const std::function<void(const std::string&)>& progress) {
  if (!progress || w.region_names.empty()) return;
  std::vector<int64_t> hosts(w.region_names.size(), 0), healthy(w.region_names.size(), 0);
  for (size_t i = 0; i < w.orgs.size(); ++i) {
    hosts[static_cast<size_t>(w.orgs[i].region)] += w.orgs[i].hosts;
    healthy[static_cast<size_t>(w.orgs[i].region)] += outs[i].healthy_24h;
  }
  for (size_t r = 0; r < hosts.size(); ++r) {
    progress(fmt::format("sim: region {}: {} hosts, {:.1f} % healthy at +24 h", w.region_names[r],
                         hosts[r],
                         100.0 * static_cast<double>(healthy[r]) /
                             static_cast<double>(std::max<int64_t>(1, hosts[r]))));
  }
}

Result<World> PlanWorld(const SimOptions& o) {
  const config::ScenarioConfig& sc = *o.scenario;
  World w;
  for (const auto& r : sc.rollout.rings) w.ring_names.push_back(r.name);
  if (o.mix) {
    for (const auto& a : o.mix->archetypes) {
      w.setups.push_back(a.setup);
      w.runbooks.push_back(a.runbook);
      w.archetype_names.push_back(a.name);
    }
  } else {
    w.setups.push_back(sc.setup);
    w.runbooks.push_back(sc.runbook);
    w.archetype_names.push_back("");
  }
  for (size_t a = 0; a < w.setups.size(); ++a) {
    const std::string prefix = o.mix ? w.archetype_names[a] + "/" : "";
    ASSIGN_OR_RETURN(auto groups,
                     PlanGroups(sc, *o.calibration, w.setups[a], w.runbooks[a], prefix, &w));
    w.groups.push_back(std::move(groups));
    w.service_base.push_back(w.service_names.size());
    for (const auto& svc : w.setups[a].services) w.service_names.push_back(prefix + svc.name);
  }
  PlanRegions(o.mix, &w);
  const size_t regions = std::max<size_t>(1, w.region_names.size());
  uint64_t org_index = 0;
  for (size_t a = 0; a < w.setups.size(); ++a) {
    const int64_t count = o.mix ? o.mix->archetypes[a].organisations : 1;
    const int64_t per_org = config::TotalHosts(w.setups[a]);
    for (int64_t n = 0; n < count; ++n, ++org_index) {
      OrgPlan p;
      p.region = o.mix ? RegionOf(*o.mix, n, count) : 0;
      p.setup = w.regional_setups.empty()
                    ? &w.setups[a]
                    : &w.regional_setups[a * regions + static_cast<size_t>(p.region)];
      p.runbook = &w.runbooks[a];
      p.hosts = per_org;
      p.archetype = static_cast<int>(a);
      p.number = n;
      p.seed = Mix64(sc.seed * 0x9E3779B97F4A7C15ULL + org_index);
      p.prefix = o.mix ? fmt::format("{}.{}/", w.archetype_names[a], n + 1) : "";
      w.hosts += per_org;
      w.orgs.push_back(std::move(p));
    }
  }
  // Group plans are referenced from the orgs (stable now that w.groups is complete).
  for (auto& p : w.orgs) {
    p.groups = &w.groups[static_cast<size_t>(p.archetype)];
    p.profiles = &w.profiles[static_cast<size_t>(p.archetype)];
  }
  return w;
}

// Runs every organisation on one worker thread per aggregator; each worker adds the rows of
// the organisations it runs to its own aggregator.
void RunOrganisations(const SimOptions& o, const World& w, bool per_host, std::vector<OrgOut>* outs,
                      std::vector<Aggregator>* aggs) {
  const config::ScenarioConfig& sc = *o.scenario;
  const int threads = static_cast<int>(aggs->size());
  // Big organisations first, so the threads finish together.
  std::vector<size_t> order(w.orgs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return w.orgs[a].hosts > w.orgs[b].hosts; });
  std::atomic<size_t> next{0};
  auto worker = [&](int t) {
    while (true) {
      size_t k = next.fetch_add(1);
      if (k >= order.size()) return;
      const size_t i = order[k];
      OrgSim org(sc, *o.calibration, w.orgs[i], w.out_groups, w.ring_names);
      org.Run(per_host, &(*aggs)[static_cast<size_t>(t)], &(*outs)[i]);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
}

}  // namespace

Result<RunResult> RunSim(const SimOptions& o, SimStats* stats) {
  if (!o.scenario || !o.calibration) {
    return Status::InvalidArgument("RunSim needs a scenario and a calibration");
  }
  const auto wall_start = std::chrono::steady_clock::now();
  const config::ScenarioConfig& sc = *o.scenario;
  ASSIGN_OR_RETURN(World w, PlanWorld(o));
  if (w.hosts == 0) return Status::InvalidArgument("the fleet has no hosts");
  for (size_t a = 0; a < w.setups.size(); ++a) {
    for (const auto& g : w.setups[a].groups) {
      if (g.count > 0xffff * 64) {
        return Status::InvalidArgument("group " + g.name + " is too large for one organisation");
      }
    }
  }
  const bool per_host = w.hosts <= o.host_rows_limit;
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp<int>(threads, 1, static_cast<int>(std::min<size_t>(64, w.orgs.size())));
  if (o.progress) {
    o.progress(fmt::format("sim: {} hosts in {} organisation(s), {} thread(s), seed {}", w.hosts,
                           w.orgs.size(), threads, sc.seed));
  }

  std::vector<OrgOut> outs(w.orgs.size());
  std::vector<Aggregator> aggs(static_cast<size_t>(threads));
  RunOrganisations(o, w, per_host, &outs, &aggs);

  RunResult result;
  result.run_id = o.run_id;
  result.comparison_id = o.comparison_id;
  result.repetition = o.repetition;
  result.scenario = sc.name;
  result.runbook = o.mix ? "mix" : sc.runbook.name;
  result.setup = o.mix ? o.mix->name : sc.setup.name;
  result.backend = "sim";
  result.seed = sc.seed;
  result.started_at = IsoNowUtc();
  result.release_s = sc.rollout.release;
  uint64_t events = 0;
  bool all_finished = true;
  for (const auto& out : outs) {
    events += out.events;
    result.scenario_end_s = std::max(result.scenario_end_s, out.end_s);
    all_finished &= out.ending == "finished";
  }
  result.status = all_finished ? "finished" : "deadline";

  if (per_host) {
    for (auto& out : outs)
      for (auto& h : out.hosts) result.hosts.push_back(std::move(h));
  } else {
    AggregatedRows(w, aggs, &result.hosts);
  }

  result.services = MergeServices(w, outs);
  ReportRegions(w, outs, o.progress);
  result.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  Summarize(&result);
  if (stats) {
    stats->events = events;
    stats->hosts = w.hosts;
    stats->organisations = static_cast<int64_t>(w.orgs.size());
    stats->wall_s = result.wall_s;
  }
  if (o.progress) {
    o.progress(fmt::format("sim: {} events in {:.2f} s wall ({:.1f} M events/s), {} result rows",
                           events, result.wall_s, events / 1e6 / std::max(result.wall_s, 1e-9),
                           result.hosts.size()));
  }
  return result;
}

namespace {

template <typename Queue>
double EventRate(uint64_t events, int live) {
  Queue q;
  uint64_t state = 291;
  for (int i = 0; i < live; ++i)
    q.Push(Unit(&state) * 3600.0, Ev{static_cast<uint32_t>(i), 0, Ev::kReady});
  // CPU time of this thread: "events per second on one core", also on a machine shared with
  // other work (wall time would count the time other processes had the core).
  timespec t0{}, t1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  uint64_t checksum = 0;
  for (uint64_t n = 0; n < events; ++n) {
    auto e = q.Pop();
    checksum += e.payload.host;
    // A mix of what a host schedules next: a boot (45 s), a crash dump (15 s), a human step
    // (minutes), a poll (seconds): exponential-ish spread around a minute.
    const double dt = 1.0 + 120.0 * Unit(&state) * Unit(&state);
    q.Push(e.time + dt, Ev{e.payload.host, e.payload.token + 1, Ev::kReady});
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  const double s = static_cast<double>(t1.tv_sec - t0.tv_sec) +
                   static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (checksum == 42) std::fputs("", stderr);  // keeps the loop from being optimised away
  return static_cast<double>(events) / std::max(s, 1e-9);
}

}  // namespace

double SyntheticEventRate(uint64_t events, int live, bool heap) {
  return heap ? EventRate<EventHeap<Ev>>(events, live) : EventRate<CalendarQueue<Ev>>(events, live);
}

}  // namespace chaoslab::sim
