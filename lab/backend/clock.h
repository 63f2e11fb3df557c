// Wall time as the lab reads it: the system's steady clock, or a fake one that tests move on.
#pragma once

#include <atomic>
#include <chrono>

#include "lab/backend/backend.h"

namespace chaoslab {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallClock::time_point Now() const = 0;
  // Waits `d` of this clock's time.
  virtual void SleepFor(WallClock::duration d) = 0;
  // Whether waiting costs no real time (a fake clock): a backend's poll returns at once.
  virtual bool IsFake() const { return false; }
};

// The steady clock; SleepFor sleeps.
Clock& SystemClock();

// Stands still until moved: SleepFor and Advance move it on at once. Thread-safe.
class FakeClock final : public Clock {
 public:
  WallClock::time_point Now() const override {
    return WallClock::time_point(WallClock::duration(ticks_.load()));
  }
  void SleepFor(WallClock::duration d) override { Advance(d); }
  bool IsFake() const override { return true; }
  void Advance(WallClock::duration d) { ticks_ += d.count(); }

 private:
  // Starts far from zero, as a steady clock does, so nothing mistakes it for "unset".
  std::atomic<WallClock::rep> ticks_{
      std::chrono::duration_cast<WallClock::duration>(std::chrono::hours(1000)).count()};
};

}  // namespace chaoslab
