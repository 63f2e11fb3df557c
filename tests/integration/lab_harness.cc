#include "tests/integration/lab_harness.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace chaoslab::testing {
namespace fs = std::filesystem;

namespace {
std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

LabHarness::LabHarness() {
  char tmpl[] = "/tmp/chaoslab-test-XXXXXX";
  dir_ = mkdtemp(tmpl);
  setenv("CHAOSLAB_JOURNAL", journal().c_str(), 1);
  setenv("CHAOSLAB_RUNTIME_DIR", runtime_root().c_str(), 1);
}

LabHarness::~LabHarness() {
  for (pid_t pid : children_) {
    if (kill(pid, 0) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string LabHarness::source_dir() const {
  const char* s = std::getenv("CHAOSLAB_SOURCE_DIR");
  return s ? s : ".";
}

std::string LabHarness::chaoslab() const {
  const char* b = std::getenv("CHAOSLAB_BUILD_DIR");
  return std::string(b ? b : "build") + "/bin/chaoslab";
}

std::string LabHarness::scenario(const std::string& name) const {
  return source_dir() + "/playbooks/scenarios/" + name + ".yaml";
}

Result<ProcessOutput> LabHarness::Run(const std::vector<std::string>& args,
                                      std::chrono::seconds timeout) {
  std::vector<std::string> argv{chaoslab()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, timeout);
}

pid_t LabHarness::Start(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::string base = (dir_ / std::to_string(getpid())).string();
    int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, 1);
    dup2(err, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    std::string bin = chaoslab();
    std::vector<char*> argv{bin.data()};
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  children_.push_back(pid);
  return pid;
}

std::string LabHarness::StderrOf(pid_t pid) const {
  return Slurp(dir_ / (std::to_string(pid) + ".err"));
}
std::string LabHarness::StdoutOf(pid_t pid) const {
  return Slurp(dir_ / (std::to_string(pid) + ".out"));
}

int LabHarness::Wait(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

bool LabHarness::WaitForStderr(pid_t pid, const std::string& text, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (StderrOf(pid).find(text) != std::string::npos) return true;
    if (kill(pid, 0) != 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::vector<pid_t> LabHarness::Processes(const std::string& exe, const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmd = Slurp(entry.path() / "cmdline");
    const std::string argv0 = cmd.substr(0, cmd.find('\0'));
    if (fs::path(argv0).filename().string().starts_with(exe) &&
        cmd.find(needle) != std::string::npos) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

std::vector<pid_t> LabHarness::LabQemus(const std::string& run_id) {
  return Processes("qemu-system", "chaoslab:" + run_id);
}

std::string LabHarness::RunIdFrom(const std::string& text) {
  std::smatch m;
  static const std::regex re("run ([0-9a-f]{8}):");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

Result<ProcessOutput> LabHarness::DumpDom(const std::string& html) {
  return RunProcess({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                     "--user-data-dir=" + (dir_ / "chromium").string(), "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--dump-dom",
                     "file://" + html},
                    std::chrono::seconds(120));
}

bool LabHarness::ImageBuilt() {
  std::string csagent = fs::path(chaoslab()).parent_path().string() + "/csagent";
  // The kernel image.yaml names (build.sh alone defaults to the stock Debian one).
  auto r = RunProcess({source_dir() + "/images/winsim/build.sh", "--csagent", csagent, "--kernel",
                       "custom", "--check"});
  return r.ok() && r->exit_code == 0;
}

}  // namespace chaoslab::testing
