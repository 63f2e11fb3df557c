// Test-only: the recovery model on a scripted driver (no machines, no clock, only scenario time),
// a one-site world to build setups on, and a boot loop in a line. recovery_test and
// service_backlog_test share it.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lab/recovery/recovery.h"

namespace chaoslab::recovery {

// A driver that records what the model asks and runs its agenda in scenario-time order.
class ScriptedDriver : public MachineDriver {
 public:
  void Schedule(double at, const Signal& s) override {
    agenda.insert({{at, seq++}, s});
    if (s.kind == Signal::kBacklog) backlog_plans++;
  }
  double HumanSeconds(uint32_t, const config::StepConfig& step, bool new_visit) override {
    return step.takes.a + (new_visit ? travel : 0);
  }
  void StartMachine(uint32_t host, const config::StepConfig& step, double at) override {
    started.push_back({host, step.kind, at});
  }
  void ContinueMachine(uint32_t host, const config::StepConfig& step, double at) override {
    continued.push_back({host, step.kind, at});
  }
  void StopMachine(uint32_t host) override { stopped.push_back(host); }
  double DecisionSeconds(uint32_t, const config::Distribution& after) override { return after.a; }
  void Escalated(uint32_t host, const config::RunbookConfig& next, double at,
                 double starts_at) override {
    escalated.push_back({host, next.name, at, starts_at});
  }
  void WaitsFor(uint32_t host, const config::StepConfig&, Wait w, double) override {
    waits[host].push_back(w);
  }
  void EscrowChanged(bool up, double at) override { escrow.push_back({up, at}); }
  void ServiceChanged(size_t s, ServiceState state, double at) override {
    services.push_back({s, state, at});
  }

  // Runs the agenda up to `until`.
  void RunUntil(Model* m, double until) {
    while (!agenda.empty() && agenda.begin()->first.first <= until) {
      auto [key, s] = *agenda.begin();
      agenda.erase(agenda.begin());
      m->Handle(key.first, s);
    }
  }

  struct Call {
    uint32_t host;
    config::StepKind kind;
    double at;
  };
  std::map<std::pair<double, uint64_t>, Signal> agenda;
  uint64_t seq = 0;
  int backlog_plans = 0;  // kBacklog signals scheduled
  double travel = 0;
  std::vector<Call> started, continued;
  std::vector<uint32_t> stopped;
  std::map<uint32_t, std::vector<Wait>> waits;
  std::vector<std::pair<bool, double>> escrow;
  struct ServiceCall {
    size_t service;
    ServiceState state;
    double at;
  };
  std::vector<ServiceCall> services;
  struct Escalation {
    uint32_t host;
    std::string runbook;
    double at, starts_at;
  };
  std::vector<Escalation> escalated;
};

inline config::StepConfig Step(config::StepKind kind, double takes,
                               std::vector<config::Resource> needs = {}) {
  config::StepConfig s;
  s.kind = kind;
  s.takes.a = takes;
  s.needs = std::move(needs);
  return s;
}

struct World {
  config::SetupConfig setup;
  config::RunbookConfig runbook;
  std::vector<Profile> profiles;
  World() {
    config::SiteConfig site;
    site.name = "hq";
    site.technicians = 1;
    setup.sites.push_back(site);
    config::GroupConfig g;
    g.name = "ws";
    g.site = "hq";
    setup.groups.push_back(g);
    runbook.name = "manual";
    runbook.starts = config::RunbookStart::kAtDetection;
  }
  Profile Default() {
    Profile p;
    p.site = 0;
    p.group = 0;
    for (const auto& s : runbook.steps) p.steps.push_back(&s);
    return p;
  }
};

// Boots a host and crashes it twice: a boot loop.
inline void CrashTwice(Model* m, uint32_t i, double at) {
  m->Move(i, HostState::kBooting, at);
  m->Crashed(i, at + 10, false, "PAGE_FAULT_IN_NONPAGED_AREA");
  if (!m->ShouldPark(i)) m->Rebooting(i, at + 20);
  m->Crashed(i, at + 30, false, "PAGE_FAULT_IN_NONPAGED_AREA");
}

}  // namespace chaoslab::recovery
