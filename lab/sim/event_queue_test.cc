// The calendar queue must pop in exactly EventHeap's (time, sequence) order, whatever the times:
// the simulator's results (and its golden files) depend on that order.
#include "lab/sim/event_queue.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "lab/recovery/event_heap.h"

namespace chaoslab::sim {
namespace {

struct P {
  uint32_t id = 0, a = 0, b = 0;
};

// Drives both queues with the same operations; every pop must agree on time and payload.
template <typename NextTime>
void Agree(uint64_t seed, int initial, int operations, NextTime next_time) {
  std::mt19937_64 rng(seed);
  EventHeap<P> heap;
  CalendarQueue<P> cal;
  uint32_t id = 0;
  double now = 0;
  auto push = [&](double t) {
    heap.Push(t, P{id, 0, 0});
    cal.Push(t, P{id, 0, 0});
    ++id;
  };
  for (int i = 0; i < initial; ++i) push(next_time(rng, now));
  for (int i = 0; i < operations; ++i) {
    ASSERT_EQ(heap.size(), cal.size());
    if (heap.empty() || rng() % 3 != 0) {
      if (!heap.empty()) {
        ASSERT_EQ(heap.next_time(), cal.next_time());
        auto a = heap.Pop();
        auto b = cal.Pop();
        ASSERT_EQ(a.time, b.time) << "operation " << i;
        ASSERT_EQ(a.payload.id, b.payload.id) << "operation " << i << " at " << a.time;
        if (std::isfinite(a.time)) now = a.time;
      }
      int children = static_cast<int>(rng() % 3);
      for (int c = 0; c < children; ++c) push(next_time(rng, now));
    } else {
      push(next_time(rng, now));
    }
  }
  while (!heap.empty()) {
    auto a = heap.Pop();
    auto b = cal.Pop();
    ASSERT_EQ(a.payload.id, b.payload.id);
  }
  EXPECT_TRUE(cal.empty());
  EXPECT_EQ(cal.next_time(), std::numeric_limits<double>::infinity());
}

TEST(CalendarQueue, SameOrderAsTheHeapOnSpreadTimes) {
  Agree(1, 150000, 200000, [](std::mt19937_64& r, double now) {
    return now + 1.0 + 120.0 * std::uniform_real_distribution<>(0, 1)(r);
  });
}

TEST(CalendarQueue, SameOrderWithManyEqualTimesAndPushesAtNow) {
  // The simulator schedules many events at the current time and at a few fixed times (boots of
  // a whole fleet at start + driver_load): equal times must leave in push order.
  Agree(2, 20000, 200000, [](std::mt19937_64& r, double now) {
    switch (r() % 5) {
      case 0:
        return now;
      case 1:
        return 15000.0;
      case 2:
        return now + 45.0;
      case 3:
        return std::floor(now) + static_cast<double>(r() % 4);
      default:
        return now + 3600.0 * 12;
    }
  });
}

TEST(CalendarQueue, SameOrderWithHeavyTailsPastTimesAndInfinity) {
  Agree(3, 40000, 100000, [](std::mt19937_64& r, double now) {
    switch (r() % 6) {
      case 0:
        return now - 10.0;  // before the current bucket
      case 1:
        return std::numeric_limits<double>::infinity();
      case 2:
        return now + std::exp(std::uniform_real_distribution<>(0, 15)(r));
      case 3:
        return now + 1e-9;
      default:
        return now + std::uniform_real_distribution<>(0, 1)(r);
    }
  });
}

// A fleet booting at once: hundreds of thousands of entries at one time (and a few a hair later)
// land in one bucket; they must come out in push order without a quadratic sort.
TEST(CalendarQueue, OneHugeSameTimeBucket) {
  CalendarQueue<P> q;
  q.Push(1e6, P{0, 0, 0});  // a far event first, so the clump is not the first window
  q.Pop();
  const uint32_t n = 300000;
  for (uint32_t i = 0; i < n; ++i) q.Push(i % 7 == 0 ? 900.000000001 : 900.0, P{i, 0, 0});
  q.Push(2e6, P{n, 0, 0});
  uint32_t last_plain = 0, plain = 0, late = 0;
  bool first = true;
  while (q.size() > 1) {
    auto e = q.Pop();
    if (e.time == 900.0) {
      ASSERT_EQ(late, 0u) << "a later time came out first";
      if (!first) {
        ASSERT_GT(e.payload.id, last_plain);
      }
      first = false;
      last_plain = e.payload.id;
      plain++;
    } else {
      late++;
    }
  }
  EXPECT_EQ(plain + late, n);
  EXPECT_EQ(q.Pop().payload.id, n);
}

// Small queues are one heap; past 131,072 entries they spill into buckets, mid-run.
TEST(CalendarQueue, SameOrderFromHeapToBuckets) {
  Agree(4, 100, 450000, [](std::mt19937_64& r, double now) {
    return now + (r() % 4 == 0 ? 0.0 : 600.0 * std::uniform_real_distribution<>(0, 1)(r));
  });
}

TEST(CalendarQueue, FewEntriesAndRefillAfterEmpty) {
  CalendarQueue<P> q;
  EXPECT_TRUE(q.empty());
  q.Push(5, P{1, 0, 0});
  q.Push(5, P{2, 0, 0});
  q.Push(1, P{3, 0, 0});
  EXPECT_EQ(q.next_time(), 1);
  EXPECT_EQ(q.Pop().payload.id, 3u);
  EXPECT_EQ(q.Pop().payload.id, 1u);
  EXPECT_EQ(q.Pop().payload.id, 2u);
  EXPECT_TRUE(q.empty());
  // Scheduled again after running dry, earlier than anything before.
  q.Push(0.5, P{4, 0, 0});
  q.Push(1e6, P{5, 0, 0});
  q.Push(0.25, P{6, 0, 0});
  EXPECT_EQ(q.Pop().payload.id, 6u);
  EXPECT_EQ(q.Pop().payload.id, 4u);
  EXPECT_EQ(q.Pop().payload.id, 5u);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace chaoslab::sim
