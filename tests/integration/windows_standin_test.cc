// The libvirt backend's Windows host end to end, on a real libvirt domain (q35, UEFI/OVMF, swtpm,
// SATA, COM1 = EMS console, COM2 = agent) booted from a STAND-IN golden image
// (tests/integration/windows_standin/make_standin.sh): no Windows exists here, so the disk boots
// Debian's kernel whose /init paints the boot manager, F8's "Advanced Boot Options", BitLocker's
// recovery screen and SAC on COM1 and runs the real sensor (csagent) on COM2. The channel 291 file
// is on its "C:", so the host bugchecks on every normal boot; `chaoslab run` with the
// safe-mode-delete runbook must get it into safe mode through the F8 menu (WindowsConsole), type
// the BitLocker key where there is one, delete the file in a SAC cmd channel, restart, and see it
// healthy (`@@winsim ready` on COM2). What the stand-in cannot tell: whether real Windows says
// the same things (docs/WINDOWS.md).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include "tests/integration/lab_harness.h"
#include "tests/integration/libvirt_hypervisors.h"

namespace chaoslab::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Keeps the last contents of every *.log in a host's runtime folder while the run goes on: the
// lab removes the folder when the run ends.
class LogKeeper {
 public:
  explicit LogKeeper(fs::path dir) : dir_(std::move(dir)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Copy();
        std::this_thread::sleep_for(250ms);
      }
    });
  }
  ~LogKeeper() {
    stop_ = true;
    thread_.join();
  }
  std::map<std::string, std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }

 private:
  void Copy() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      if (e.path().extension() != ".log") continue;
      std::string text = ReadAll(e.path());
      std::lock_guard lock(mu_);
      std::string& kept = logs_[e.path().filename().string()];
      if (text.size() >= kept.size()) kept = std::move(text);
    }
  }
  fs::path dir_;
  std::mutex mu_;
  std::map<std::string, std::string> logs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class WindowsStandinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Hypervisors::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    for (const char* tool : {"swtpm", "swtpm_setup", "mkfs.vfat", "mcopy", "qemu-img", "cpio"}) {
      if (system((std::string("command -v ") + tool + " >/dev/null").c_str()) != 0) {
        GTEST_SKIP() << tool << " not installed (make setup)";
      }
    }
    if (!fs::exists("/usr/share/OVMF/OVMF_CODE_4M.fd")) GTEST_SKIP() << "ovmf not installed";
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "busybox-static not installed";
    hvs_ = std::make_unique<Hypervisors>(lab_.dir() / "hv", 1);
    ASSERT_TRUE(hvs_->ok()) << hvs_->error();
  }
  void TearDown() override {
    hvs_.reset();
    unsetenv("CHAOSLAB_WINDOWS_DIR");
  }

  // The stand-in golden folder, made by the script as a user would run it.
  fs::path MakeGolden(bool bitlocker) {
    const fs::path golden = lab_.dir() / "golden";
    const fs::path csagent = fs::path(lab_.chaoslab()).parent_path() / "csagent";
    std::string cmd = lab_.source_dir() + "/tests/integration/windows_standin/make_standin.sh " +
                      golden.string() + " --csagent " + csagent.string() + " --chaoslab " +
                      lab_.chaoslab() + (bitlocker ? " --bitlocker" : "") + " >/dev/null";
    EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
    return golden;
  }

  void RunSafeModeDelete(bool bitlocker);

  LabHarness lab_;
  std::unique_ptr<Hypervisors> hvs_;
};

void WindowsStandinTest::RunSafeModeDelete(bool bitlocker) {
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path golden = MakeGolden(bitlocker);
  ASSERT_TRUE(fs::exists(golden / "windows.qcow2"));
  setenv("CHAOSLAB_WINDOWS_DIR", golden.c_str(), 1);
  fs::create_directories(lab_.dir() / "win");
  std::ofstream(lab_.dir() / "win" / "setup.yaml")
      << "name: win-lab\nimage: windows\nsites:\n  - {name: hq, technicians: 1}\n"
         "groups:\n  - {name: win, role: workstation, count: 1, site: hq, sensor: \"7.11\", "
         "network: offline, bitlocker: "
      << (bitlocker ? "true" : "false") << "}\n";
  // Offline: the stand-in has no network, so no sensor fetches the revert; its "C:" already holds
  // the faulty file (version 2, the scenario's release).
  const std::string scenario = (lab_.dir() / "win" / "s.yaml").string();
  std::ofstream(scenario) << "name: win\nsetup: setup.yaml\nrunbook: " << lab_.source_dir()
                          << "/playbooks/runbooks/safe-mode-delete.yaml\n"
                             "fault: {kind: channel-291}\n";
  const std::string inventory = hvs_->WriteInventory(2);

  pid_t pid = lab_.Start({"run", scenario, "--backend", "libvirt", "--inventory", inventory,
                          "--json", "--max-wall", "780"});
  ASSERT_TRUE(lab_.WaitForStderr(pid, "placed win-01 on hypervisor", 120s)) << lab_.StderrOf(pid);
  const std::string run_id = LabHarness::RunIdFrom(lab_.StderrOf(pid));
  ASSERT_FALSE(run_id.empty()) << lab_.StderrOf(pid);
  const fs::path host_dir = fs::path(lab_.runtime_root()) / run_id / "win-01";
  const std::string tpm_socket = (host_dir / "swtpm.sock").string();
  std::map<std::string, std::string> logs;
  int rc;
  {
    LogKeeper keeper(host_dir);
    rc = lab_.Wait(pid, 840s);
    if (rc == 128 + SIGKILL) kill(pid, SIGKILL);
    logs = keeper.logs();
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("wall_s", std::to_string(wall_s));
  std::cerr << "windows stand-in run (bitlocker=" << bitlocker << "): " << wall_s << " s wall\n";
  const std::string err = lab_.StderrOf(pid);
  // COM1 as libvirt logged it (serial.log), COM2 (agent.log).
  const std::string com1 = logs["serial.log"], com2 = logs["agent.log"];

  ASSERT_EQ(rc, 0) << err << "\nCOM1:\n" << com1 << "\nCOM2:\n" << com2;
  json run = json::parse(lab_.StdoutOf(pid), nullptr, false);
  ASSERT_FALSE(run.is_discarded()) << lab_.StdoutOf(pid);
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["backend"], "libvirt");
  ASSERT_EQ(run["hosts"].size(), 1u) << run.dump();
  const json& h = run["hosts"][0];
  EXPECT_EQ(h["id"], "win-01");
  EXPECT_EQ(h["state"], "recovered") << h.dump();
  EXPECT_TRUE(h["recovered"].get<bool>()) << h.dump();
  EXPECT_GE(h["crashes"].get<int>(), 1) << h.dump();
  EXPECT_TRUE(h["boot_loop"].get<bool>()) << h.dump();
  EXPECT_TRUE(h["exposed"].get<bool>()) << h.dump();  // loaded version 2 from disk
  EXPECT_EQ(h["stop_code"], "PAGE_FAULT_IN_NONPAGED_AREA") << h.dump();
  EXPECT_EQ(h["recovered_by"], "restart") << h.dump();  // the runbook's last step
  EXPECT_EQ(h["bitlocker"].get<bool>(), bitlocker) << h.dump();
  EXPECT_EQ(h["keys_fetched"].get<int>(), bitlocker ? 1 : 0) << h.dump();

  // The journal has the same result.
  auto again = lab_.Run({"report", run_id, "--json"});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->exit_code, 0) << again->err;
  json journal = json::parse(again->out, nullptr, false);
  ASSERT_FALSE(journal.is_discarded()) << again->out;
  ASSERT_EQ(journal["hosts"].size(), 1u);
  EXPECT_EQ(journal["hosts"][0]["state"], "recovered");
  EXPECT_EQ(journal["hosts"][0]["recovered_by"], "restart");
  auto table = lab_.Run({"report", run_id});
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->out.find("recovered"), std::string::npos) << table->out;

  // What happened on the wire. COM2: the real sensor bugchecked on the channel file, and after
  // the repair it came up (the last boot).
  EXPECT_NE(com2.find("@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA"),
            std::string::npos)
      << com2;
  const size_t ready = com2.rfind("@@winsim ready os=windows");
  ASSERT_NE(ready, std::string::npos) << com2;
  EXPECT_EQ(com2.find("@@bugcheck", ready), std::string::npos) << com2;
  // The stand-in's note of each boot's choice: normal boots, then Safe Mode (not "Repair Your
  // Computer", the first entry), then normal again.
  const size_t safe = com2.find("standin: boot=safe");
  EXPECT_NE(safe, std::string::npos) << com2;
  EXPECT_EQ(com2.find("standin: boot=winre"), std::string::npos) << com2;
  EXPECT_LT(safe, ready) << com2;
  // COM1: the F8 menu, (the key,) SAC's cmd channel deleting the file, SAC's restart.
  const size_t menu = com1.find("Advanced Boot Options");
  ASSERT_NE(menu, std::string::npos) << com1;
  if (bitlocker) {
    EXPECT_NE(com1.find("Recovery key ID: ", menu), std::string::npos) << com1;
    EXPECT_NE(com1.find("Windows is loading files", menu), std::string::npos) << com1;
  }
  const std::string del =
      "del /f /q \"C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys\"";
  const size_t del_at = com1.find(del, menu);
  ASSERT_NE(del_at, std::string::npos) << com1;
  // Deleted for real: no "Could Not Find" before the errorlevel, which is 0.
  const size_t rc_at = com1.find("chaoslab-rc=0", del_at);
  ASSERT_NE(rc_at, std::string::npos) << com1;
  EXPECT_EQ(com1.substr(del_at, rc_at - del_at).find("Could Not Find"), std::string::npos) << com1;
  EXPECT_NE(com1.find("restart", rc_at), std::string::npos) << com1;
  // Safe mode came from the one-time menu choice: nothing to undo in BCD.
  EXPECT_EQ(Count(com1, "bcdedit"), 0u) << com1;

  // Nothing left behind: no domain, no QEMU, no swtpm, no runtime folder.
  for (const auto& d : hvs_->Domains(0)) EXPECT_EQ(d.find("chaoslab-" + run_id), std::string::npos);
  EXPECT_TRUE(Eventually(
      [&] { return LabHarness::Processes("qemu-system", "chaoslab-" + run_id).empty(); }, 10s));
  EXPECT_TRUE(Eventually([&] { return LabHarness::Processes("swtpm", tpm_socket).empty(); }, 10s));
  EXPECT_FALSE(fs::exists(fs::path(lab_.runtime_root()) / run_id));
  // The golden image is only read: its channel file is still there for the next run.
  EXPECT_EQ(system(("MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null qemu-img convert -q -O raw " +
                    (golden / "windows.qcow2").string() + " " + (lab_.dir() / "g.raw").string() +
                    " && MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mdir -i " +
                    (lab_.dir() / "g.raw").string() +
                    " ::/Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000002.sys"
                    " >/dev/null")
                       .c_str()),
            0);
}

TEST_F(WindowsStandinTest, SafeModeDeleteThroughTheF8MenuAndSac) { RunSafeModeDelete(false); }

TEST_F(WindowsStandinTest, SafeModeDeleteWithTheBitLockerRecoveryKey) { RunSafeModeDelete(true); }

}  // namespace
}  // namespace chaoslab::testing
