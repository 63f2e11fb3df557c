// The fleet simulator: the engine's semantics over modelled hosts, for millions of them.
//
// Same scenario, setup, runbook and results model as a VM run (lab/engine): hosts boot, fetch the
// faulty content during the release window, crash by sensor version, boot-loop, are parked until
// a runbook acts, and are remediated step by step with the same resources (technicians per site
// on shift who travel, USB sticks, the key escrow up or down with its hosting group, remote
// consoles, PXE, snapshots), priorities and parallelism; services go down and up with their
// groups. What a real guest decides (did the reverted file win the boot race?) is drawn from the
// calibration (calibration.h); when it counts comes from the image's timing profile, as in the
// engine. See docs/SIMULATOR.md for the engine behaviours modelled and how.
//
// Organisations are independent (each its own technicians, escrow, services), so each is one
// small discrete-event simulation: an event heap ordered by (time, sequence) and compact host
// records, one organisation per thread at a time. Every host has its own random stream seeded
// from (seed, organisation, host), so results are byte-identical for a seed whatever the number
// of threads.
//
// Thread-safe: RunSim may be called from several threads; it uses `threads` workers itself.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lab/common/status.h"
#include "lab/config/config.h"
#include "lab/report/results.h"
#include "lab/sim/calibration.h"
#include "lab/sim/mix.h"

namespace chaoslab::sim {

struct SimOptions {
  const config::ScenarioConfig* scenario = nullptr;
  const Calibration* calibration = nullptr;
  const Mix* mix = nullptr;  // null: one organisation, the scenario's setup and runbook
  std::string run_id, comparison_id;
  int repetition = 0;
  int threads = 0;  // 0: one per hardware thread
  // Up to this many hosts the result has one row per host, named like a VM run's hosts; above it,
  // hosts with the same figures (times in ~5 % bins) share one row whose `weight` says how many.
  int64_t host_rows_limit = 20000;
  std::function<void(const std::string&)> progress;  // optional
};

struct SimStats {
  uint64_t events = 0;  // events processed, all organisations
  int64_t hosts = 0, organisations = 0;
  double wall_s = 0;
};

Result<RunResult> RunSim(const SimOptions& options, SimStats* stats = nullptr);

// The share of the fleet healthy for good at each of `times_s` (seconds after release), from a
// result's (weighted) host rows: the world's recovery curve.
std::vector<double> HealthyShareAt(const RunResult& run, const std::vector<double>& times_s);

// A synthetic event mix on the simulator's event queue (for `make bench`): `events` pops of a
// queue holding about `live` entries, each pop scheduling a successor at a random later time.
// Returns events per second of CPU time on the calling thread. `heap`: on the 4-ary heap the
// simulator used before its calendar queue (event_heap.h), for comparison under the same load.
double SyntheticEventRate(uint64_t events, int live, bool heap = false);

}  // namespace chaoslab::sim
