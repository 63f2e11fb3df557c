// WaitQueue against std::set, the structure whose behaviour it must have, under the operations
// the model performs: join at a rank's end, leave at the front and join again, leave from the
// middle (a host whose runbook ends while it waits), several ranks.
#include "lab/recovery/wait_queue.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace chaoslab::recovery {
namespace {

void ExpectSame(const std::set<WaitKey>& want, const WaitQueue& got) {
  ASSERT_EQ(want.size(), got.size());
  ASSERT_EQ(want.empty(), got.empty());
  if (!want.empty()) {
    EXPECT_EQ(want.begin()->host, got.front().host);
    EXPECT_EQ(want.begin()->queued_at, got.front().queued_at);
    EXPECT_EQ(want.begin()->rank, got.front().rank);
  }
}

TEST(WaitQueue, BehavesAsASetUnderTheModelsOperations) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::set<WaitKey> want;
    WaitQueue got;
    double now = 0;
    std::vector<WaitKey> joined;
    for (int op = 0; op < 20000; ++op) {
      const int what = static_cast<int>(rng() % 100);
      if (what < 40) {  // a host joins at the current time, mostly of the common rank
        if (rng() % 4 == 0) now += 1.0;
        const WaitKey k{rng() % 10 == 0 ? static_cast<int>(rng() % 3) : 5, now,
                        static_cast<uint32_t>(rng() % 5000)};
        want.insert(k);
        got.insert(k);
        joined.push_back(k);
      } else if (what < 75) {  // the first is served and often joins again with its key
        if (!want.empty()) {
          const WaitKey k = *want.begin();
          want.erase(want.begin());
          got.pop_front();
          if (rng() % 2 == 0) {
            want.insert(k);
            got.insert(k);
          }
        }
      } else if (what < 90 && !joined.empty()) {  // a host leaves wherever it is (or is gone)
        const WaitKey k = joined[rng() % joined.size()];
        want.erase(k);
        got.erase(k);
      } else if (!joined.empty()) {  // a key that is there already: no second copy
        const WaitKey k = joined[rng() % joined.size()];
        want.insert(k);
        got.insert(k);
      }
      ExpectSame(want, got);
      if (::testing::Test::HasFailure()) return;
    }
    while (!want.empty()) {  // drains in the same order
      ExpectSame(want, got);
      want.erase(want.begin());
      got.pop_front();
    }
    EXPECT_TRUE(got.empty());
  }
}

TEST(WaitQueue, ALongQueueServedAtTheFrontDoesNotGrowWithoutBound) {
  WaitQueue q;
  for (uint32_t i = 0; i < 1000; ++i) q.insert({0, static_cast<double>(i), i});
  for (uint32_t i = 1000; i < 200000; ++i) {
    EXPECT_EQ(q.front().host, i - 1000);
    q.pop_front();
    q.insert({0, static_cast<double>(i), i});
  }
  EXPECT_EQ(q.size(), 1000u);
  EXPECT_EQ(q.front().host, 199000u);
}

TEST(WaitQueue, ForEachVisitsEveryKeyInOrder) {
  std::set<WaitKey> want;
  WaitQueue got;
  for (uint32_t h = 0; h < 50; ++h) {
    const WaitKey k{static_cast<int>(h % 3), static_cast<double>(h / 7), h};
    want.insert(k);
    got.insert(k);
  }
  got.pop_front();
  want.erase(want.begin());
  got.erase(WaitKey{1, 3.0, 22});
  want.erase(WaitKey{1, 3.0, 22});
  std::vector<uint32_t> seen;
  got.ForEach([&](const WaitKey& k) { seen.push_back(k.host); });
  std::vector<uint32_t> expected;
  for (const WaitKey& k : want) expected.push_back(k.host);
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace chaoslab::recovery
