#include "lab/config/assumptions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lab/config/config_loader.h"

namespace chaoslab::config {

namespace {
thread_local Assumptions* g_current = nullptr;
thread_local std::optional<AssumptionKind> g_counting;
}  // namespace

double ValueAt(const Assumption& a, double u) {
  u = std::clamp(u, 0.0, 1.0);
  if (a.kind == AssumptionKind::kInteger) {
    // Each whole number of [low, high] gets an equal slice of [0, 1].
    const double v = std::floor(a.low + u * (a.high - a.low + 1));
    return std::min(v, a.high);
  }
  return a.low + u * (a.high - a.low);
}

std::string FormatAssumed(const Assumption& a, double value) {
  switch (a.kind) {
    case AssumptionKind::kInteger:
      return fmt::format("{}", static_cast<int64_t>(value));
    case AssumptionKind::kDuration:
      return FormatDuration(std::round(value));
    case AssumptionKind::kPercent:
      return fmt::format("{:.3g}%", value);
    case AssumptionKind::kNumber:
      break;
  }
  return fmt::format("{:.3g}", value);
}

double Assumptions::Resolve(const Assumption& assumed) {
  Assumption a = assumed;
  if (g_counting) a.kind = *g_counting;
  if (index_.emplace(a.id, list_.size()).second) list_.push_back(a);
  auto it = draw_.find(a.id);
  return it == draw_.end() ? a.nominal : ValueAt(a, it->second);
}

CountingScope::CountingScope() : previous_(g_counting) { g_counting = AssumptionKind::kInteger; }

CountingScope::~CountingScope() { g_counting = previous_; }

AssumptionScope::AssumptionScope(Assumptions* assumptions) : previous_(g_current) {
  g_current = assumptions;
}

AssumptionScope::~AssumptionScope() { g_current = previous_; }

Assumptions* CurrentAssumptions() { return g_current; }

bool DrawingAssumptions() { return g_current != nullptr && g_current->drawing(); }

}  // namespace chaoslab::config
