#include "lab/backend/task_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace chaoslab {
namespace {

TEST(TaskThreadTest, RunsTasksInOrderOnOneThread) {
  TaskThread worker;
  std::vector<int> order;
  std::thread::id first;
  for (int i = 0; i < 5; ++i) {
    worker.Post([&, i] {
      if (i == 0) first = std::this_thread::get_id();
      EXPECT_EQ(std::this_thread::get_id(), first);
      order.push_back(i);
    });
  }
  const std::thread::id ran_on = worker.Run([] { return std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, first);
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(TaskThreadTest, StopRunsWhatIsQueuedThenDropsLaterPosts) {
  std::atomic<int> ran{0};
  TaskThread worker;
  for (int i = 0; i < 3; ++i) worker.Post([&] { ++ran; });
  worker.Stop();
  EXPECT_EQ(ran, 3);
  worker.Post([&] { ++ran; });
  worker.Stop();  // idempotent
  EXPECT_EQ(ran, 3);
}

}  // namespace
}  // namespace chaoslab
