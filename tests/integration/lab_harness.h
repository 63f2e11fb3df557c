// One harness for integration tests that drive the real `chaoslab` binary, as a user would: its own
// journal and runtime folder per test, helpers to start it in the background, find its QEMUs by
// their tag, and kill it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lab/common/subprocess.h"

namespace chaoslab::testing {

class LabHarness {
 public:
  // Creates a private temp folder and points CHAOSLAB_JOURNAL / CHAOSLAB_RUNTIME_DIR into it.
  LabHarness();
  ~LabHarness();  // kills anything still running that it started, removes the folder

  std::string chaoslab() const;                         // path of the built binary
  std::string source_dir() const;                       // the repository
  std::string scenario(const std::string& name) const;  // playbooks/scenarios/<name>.yaml
  const std::filesystem::path& dir() const { return dir_; }
  std::string runtime_root() const { return (dir_ / "rt").string(); }
  std::string journal() const { return (dir_ / "journal.db").string(); }

  // Runs chaoslab to completion.
  Result<ProcessOutput> Run(const std::vector<std::string>& args,
                            std::chrono::seconds timeout = std::chrono::seconds(900));
  // Starts chaoslab in the background; stdout/stderr go to files in dir(). Returns its pid.
  pid_t Start(const std::vector<std::string>& args);
  std::string StderrOf(pid_t pid) const;
  std::string StdoutOf(pid_t pid) const;
  // Waits for the child to exit; returns its exit code, or 128+signal.
  int Wait(pid_t pid, std::chrono::seconds timeout);
  // Waits until the child's stderr contains `text` (true) or the timeout passes (false).
  bool WaitForStderr(pid_t pid, const std::string& text, std::chrono::seconds timeout);

  // Pids of live QEMU processes whose command line carries the lab tag of `run_id` ("" = any run).
  static std::vector<pid_t> LabQemus(const std::string& run_id);
  // Pids of live processes whose executable's name starts with `exe` ("qemu-system", "swtpm") and
  // whose command line contains `needle`.
  static std::vector<pid_t> Processes(const std::string& exe, const std::string& needle);
  // The run id that `chaoslab run` printed on stderr ("run <id>: ...").
  static std::string RunIdFrom(const std::string& stderr_text);
  // The DOM of the page `html` (a file) once its scripts ran, from headless Chromium with a
  // profile in dir() (`chromium --dump-dom`).
  Result<ProcessOutput> DumpDom(const std::string& html);
  // True when the guest image is built (so VM tests can run).
  bool ImageBuilt();

 private:
  std::filesystem::path dir_;
  std::vector<pid_t> children_;
};

}  // namespace chaoslab::testing
