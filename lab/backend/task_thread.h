// One long-lived thread that runs posted tasks in order: the worker both VM backends keep. The
// QEMU backend forks every QEMU from it (PR_SET_PDEATHSIG follows the thread that forked, so a
// short-lived caller's thread would take its guests with it); the libvirt backend restarts domains
// on it (not on libvirt's event-loop thread, which must keep delivering events meanwhile).
//
// Thread-safe. Tasks run one at a time, in the order they were posted.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace chaoslab {

class TaskThread {
 public:
  TaskThread();
  ~TaskThread();  // Stop()
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // Queues `task`. After Stop() it is dropped: nobody would run it.
  void Post(std::function<void()> task);

  // Runs `task` on the thread and waits for its result. Not after Stop() (it would wait forever).
  template <typename F>
  std::invoke_result_t<F&> Run(F task) {
    std::packaged_task<std::invoke_result_t<F&>()> packaged(std::move(task));
    auto result = packaged.get_future();
    Post([&packaged] { packaged(); });
    return result.get();
  }

  // Runs what is queued already, then ends the thread. Idempotent; not from a task.
  void Stop();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;  // last: it starts once the rest is ready
};

}  // namespace chaoslab
