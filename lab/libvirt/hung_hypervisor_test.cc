// A hypervisor that hangs: its daemon accepts connections and never answers (a libvirtd stopped
// with SIGSTOP, as the fault soak does, tests/soak). virConnectOpen has no timeout of its own, so
// whatever opened a connection to it waited without end: a `chaoslab run` whose hypervisor hung
// never exited after its last figures (Destroy joined a reconnect stuck in virConnectOpen), and
// the preflight and `gc --inventory` hung the same way. Here the daemon is a unix socket that
// listens and never accepts; every open of it must give up.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "lab/libvirt/libvirt_backend.h"

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A listening unix socket nobody accepts on: connect() succeeds, nothing ever answers.
class HungDaemon {
 public:
  HungDaemon() {
    char tmpl[] = "/tmp/hung-hv-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/libvirt-sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(fd_, 16) == 0;
  }
  ~HungDaemon() {
    if (fd_ >= 0) ::close(fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  Inventory inventory() const {
    Inventory inv;
    inv.path = dir_ + "/inventory.yaml";
    HypervisorConfig hv;
    hv.name = "hung";
    hv.uri = "qemu:///system?socket=" + path_;
    hv.capacity_guests = 4;
    hv.capacity_memory_mib = 4096;
    inv.hypervisors.push_back(hv);
    return inv;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, path_;
  int fd_ = -1;
  bool ok_ = false;
};

// Runs `call` on a thread of its own and waits up to `within` for its status; nullopt when it is
// still blocked then (left behind, detached: the test process ends it when it exits).
std::optional<Status> Bounded(std::function<Status()> call, std::chrono::seconds within) {
  auto done = std::make_shared<std::promise<Status>>();
  std::future<Status> result = done->get_future();
  std::thread([call = std::move(call), done] { done->set_value(call()); }).detach();
  if (result.wait_for(within) != std::future_status::ready) return std::nullopt;
  return result.get();
}

TEST(HungHypervisorTest, ThePreflightAndGcGiveUpOnADaemonThatNeverAnswers) {
  HungDaemon daemon;
  ASSERT_TRUE(daemon.ok());
  const Inventory inv = daemon.inventory();
  const std::string root = daemon.dir() + "/rt";  // gc removes nothing there (it does not exist)
  // Both at once: each gives up after the lab's own bound, well inside this test's.
  auto gc_log = std::make_shared<std::ostringstream>();
  auto gc = std::async(std::launch::async, [&] {
    return Bounded([inv, root, gc_log] { return CollectLibvirtGarbage(inv, root, *gc_log); }, 60s);
  });
  std::optional<Status> reachable = Bounded([inv] { return CheckReachable(inv); }, 60s);
  ASSERT_TRUE(reachable) << "CheckReachable still waits after 60 s";
  EXPECT_FALSE(reachable->ok());
  EXPECT_NE(reachable->message().find("hung"), std::string::npos) << reachable->ToString();
  EXPECT_NE(reachable->message().find("did not answer"), std::string::npos)
      << reachable->ToString();
  std::optional<Status> collected = gc.get();
  ASSERT_TRUE(collected) << "gc still waits after 60 s";
  EXPECT_FALSE(collected->ok()) << "a hypervisor gc could not reach makes gc an error";
}

}  // namespace
}  // namespace chaoslab::libvirt
