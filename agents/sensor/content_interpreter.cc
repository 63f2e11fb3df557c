#include "agents/sensor/content_interpreter.h"

#include <utility>

#include "agents/sensor/platform.h"

namespace chaoslab::content {

Result<IpcNotification> IpcNotification::Create(std::vector<std::string> values) {
  const size_t array_bytes = values.size() * sizeof(InputValue);
  if (array_bytes > platform::PageSize()) {
    return Status::InvalidArgument("too many inputs for one page: " +
                                   std::to_string(values.size()));
  }
  ASSIGN_OR_RETURN(const platform::GuardedPage page, platform::MapGuardedPage());
  IpcNotification n;
  n.mapping_ = page.mapping;
  n.mapping_size_ = page.mapping_size;
  n.values_ = std::move(values);
  n.inputs_ = reinterpret_cast<InputValue*>(page.guard - array_bytes);
  for (size_t i = 0; i < n.values_.size(); ++i) {
    n.inputs_[i] = InputValue{n.values_[i].data(), n.values_[i].size()};
  }
  return n;
}

Result<IpcNotification> IpcNotification::Sample() {
  return Create({
      "\\\\.\\pipe\\spoolss",                // 1 pipe_name
      "C:\\Windows\\System32\\spoolsv.exe",  // 2 server_image
      "C:\\Windows\\explorer.exe",           // 3 client_image
      "2412",
      "5120",
      "0x0012019f",
      "duplex",
      "byte",
      "255",
      "NT AUTHORITY\\SYSTEM",
      "CORP\\alice",
      "0",
      "1",
      "system",
      "medium",
      "C:\\Windows\\System32\\spoolsv.exe",
      "C:\\Windows\\explorer.exe",
      "C:\\Windows\\System32\\userinit.exe",
      "WS-0001",
      "0",  // 20 remote_flag
  });
}

IpcNotification::IpcNotification(IpcNotification&& other) noexcept { *this = std::move(other); }

IpcNotification& IpcNotification::operator=(IpcNotification&& other) noexcept {
  if (this != &other) {
    platform::UnmapGuardedPage({mapping_, mapping_size_});
    // Moving the vector keeps its buffer, so the inputs' pointers into it stay valid.
    values_ = std::move(other.values_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    inputs_ = std::exchange(other.inputs_, nullptr);
  }
  return *this;
}

IpcNotification::~IpcNotification() { platform::UnmapGuardedPage({mapping_, mapping_size_}); }

bool GlobMatch(std::string_view glob, std::string_view text) {
  // Greedy matching with backtracking to the last '*'.
  size_t g = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      resume = t;
    } else if (g < glob.size() && glob[g] == text[t]) {
      ++g;
      ++t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

Result<InterpretOutcome> Interpret(const SensorVersion& sensor, const ChannelFile& file,
                                   const IpcNotification& notification) {
  InterpretOutcome outcome;
  if (!sensor.Supports(file.template_type)) return outcome;  // content this build ignores
  for (const TemplateInstance& instance : file.instances) {
    ++outcome.instances_evaluated;
    // Every criterion is evaluated (no short-circuit), as the real interpreter's regex pass did.
    bool matched = true;
    for (const Criterion& c : instance.criteria) {
      if (c.wildcard) continue;  // never touches its input: why April's files were harmless
      const InputValue* input =
          sensor.fetch->Fetch(notification.inputs(), notification.size(), c.field);
      if (input == nullptr) {
        return Status::Corruption("instance " + std::to_string(instance.id) + " reads input " +
                                  std::to_string(c.field) + " but the notification supplies " +
                                  std::to_string(notification.size()));
      }
      matched = GlobMatch(c.value, input->view()) && matched;
    }
    if (matched) ++outcome.instances_matched;
  }
  return outcome;
}

}  // namespace chaoslab::content
