#include "lab/backend/clock.h"

#include <thread>

namespace chaoslab {

namespace {

class SteadyClock final : public Clock {
 public:
  WallClock::time_point Now() const override { return WallClock::now(); }
  void SleepFor(WallClock::duration d) override { std::this_thread::sleep_for(d); }
};

}  // namespace

Clock& SystemClock() {
  static SteadyClock clock;
  return clock;
}

}  // namespace chaoslab
