// The content interpreter: evaluates a channel file's template instances against the inputs of an
// IPC (named-pipe) notification.
//
// The inputs live in an array whose last entry ends exactly where an inaccessible guard page
// begins (platform.h), so an interpreter that reads one input too many (sensor 7.11 on the Channel
// File 291 content) takes a real, deterministic fault (Linux: SIGSEGV; Windows: an access
// violation, 0xC0000005) instead of reading whatever happens to follow.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/sensor_version.h"
#include "lab/common/status.h"

namespace chaoslab::content {

// The inputs of one IPC notification, in a guard-paged array. Movable, not copyable; read-only
// after Create, so concurrent readers are safe.
class IpcNotification {
 public:
  // `values[i]` becomes input i + 1. Fails if the mapping cannot be made or there are too many.
  static Result<IpcNotification> Create(std::vector<std::string> values);
  // A plausible notification with kIpcSuppliedInputs inputs (a client opening a pipe).
  static Result<IpcNotification> Sample();

  IpcNotification(IpcNotification&& other) noexcept;
  IpcNotification& operator=(IpcNotification&& other) noexcept;
  IpcNotification(const IpcNotification&) = delete;
  IpcNotification& operator=(const IpcNotification&) = delete;
  ~IpcNotification();

  const InputValue* inputs() const { return inputs_; }
  size_t size() const { return values_.size(); }
  // The first byte after the array: the start of the guard page.
  const void* guard() const { return inputs_ + values_.size(); }

 private:
  IpcNotification() = default;
  std::vector<std::string> values_;  // owns the bytes the inputs point to
  void* mapping_ = nullptr;          // two pages: the array's page and the guard page
  size_t mapping_size_ = 0;
  InputValue* inputs_ = nullptr;
};

struct InterpretOutcome {
  size_t instances_evaluated = 0;
  size_t instances_matched = 0;
};

// Evaluates every instance of `file` (every non-wildcard criterion reads its input through the
// sensor's InputFetch; wildcards read nothing). A bounds-checked fetch that finds a criterion on an
// input the notification lacks fails with Corruption; the 7.11 fetch faults instead.
// Allocates nothing unless it fails, so it may run in a child created by fork().
Result<InterpretOutcome> Interpret(const SensorVersion& sensor, const ChannelFile& file,
                                   const IpcNotification& notification);

// Glob match where '*' matches any run of bytes (including none); no other metacharacters.
bool GlobMatch(std::string_view glob, std::string_view text);

}  // namespace chaoslab::content
