// Ranged assumptions: a figure of a playbook nobody has a source for, written with the range it
// could plausibly take, `{assume: 0.20, range: [0.10, 0.30]}` (durations `{assume: 2h, range:
// [1h, 4h]}`, counts `{assume: 8, range: [4, 12]}`). The strict reader (yaml_file.h) accepts this
// form wherever it reads a number, an integer, a duration or a percentage, and resolves it
// through the Assumptions of the current thread (AssumptionScope): it records the assumption and
// returns its nominal value, or the value a draw gives it. `chaoslab run --uncertainty N` loads
// the scenario once per draw (docs/UNCERTAINTY.md). Without a scope the nominal value is used.
//
// Not thread-safe: one Assumptions per loading thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::config {

enum class AssumptionKind { kNumber, kInteger, kDuration, kPercent };

struct Assumption {
  std::string id;    // where it is written: "setups/hospital.yaml:8:18", stable across loads
  std::string name;  // what the reader calls it: "technicians", "archetypes[2] share"
  SourceLocation where;
  AssumptionKind kind = AssumptionKind::kNumber;
  double nominal = 0, low = 0, high = 0;
};

// The value at quantile `u` (0..1) of the assumption's range: uniform between low and high;
// integers uniform over the whole numbers low..high.
double ValueAt(const Assumption& a, double u);

// "8", "2h", "0.2", "20%": a value of the assumption as a playbook would write it.
std::string FormatAssumed(const Assumption& a, double value);

// What one load of the playbooks assumed, and the draw it takes its values from.
class Assumptions {
 public:
  Assumptions() = default;
  // Values by quantile of each assumption's range, by id; ids not in `draw` stay nominal.
  explicit Assumptions(std::map<std::string, double> draw) : draw_(std::move(draw)) {}

  // Records `a` (once per id: a file read twice, e.g. a setup of several archetypes, is one
  // assumption) and returns the value to use.
  double Resolve(const Assumption& a);

  bool drawing() const { return !draw_.empty(); }
  const std::vector<Assumption>& list() const { return list_; }

 private:
  std::map<std::string, double> draw_;
  std::vector<Assumption> list_;
  std::map<std::string, size_t> index_;
};

// While alive, the strict reader on this thread resolves ranged scalars through `assumptions`.
class AssumptionScope {
 public:
  explicit AssumptionScope(Assumptions* assumptions);
  ~AssumptionScope();
  AssumptionScope(const AssumptionScope&) = delete;
  AssumptionScope& operator=(const AssumptionScope&) = delete;

 private:
  Assumptions* previous_;
};

// While alive, what the reader resolves on this thread counts whole things (people in a
// distribution of how many arrive), whatever the reader it goes through: recorded and drawn as
// integers, shown without a unit.
class CountingScope {
 public:
  CountingScope();
  ~CountingScope();
  CountingScope(const CountingScope&) = delete;
  CountingScope& operator=(const CountingScope&) = delete;

 private:
  std::optional<AssumptionKind> previous_;
};

// The current thread's assumptions (null: none, nominal values).
Assumptions* CurrentAssumptions();

// Whether the current load takes drawn values (then sums such as a mix's shares are renormalised
// instead of checked).
bool DrawingAssumptions();

}  // namespace chaoslab::config
