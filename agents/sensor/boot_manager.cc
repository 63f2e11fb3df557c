#include "agents/sensor/boot_manager.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "agents/sensor/link_shaper.h"

namespace chaoslab::content {
namespace {

constexpr char kScript[] = "/lib/winsim/init";  // images/winsim/init: every other boot
constexpr char kSystemDisk[] = "/dev/vda";
constexpr char kRoot[] = "/mnt/c";
constexpr char kReadyFile[] = "/run/csagent.ready";

void Say(std::string line) {
  line.push_back('\n');
  const char* p = line.data();
  size_t n = line.size();
  while (n > 0) {
    const ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Up to 64 KiB of a file ("" when it cannot be read).
std::string ReadSmallFile(const char* path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buf[4096];
  while (text.size() < 65536) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

// The first field of /proc/uptime, as the script prints it ("" when unreadable).
std::string Uptime() {
  const std::string text = ReadSmallFile("/proc/uptime");
  return text.substr(0, text.find_first_of(" \n"));
}

void Phase(const std::string& what) {
  const std::string up = Uptime();
  Say("@@winsim phase=" + what + (up.empty() ? "" : " uptime=" + up));
}

// The script takes over, with the pseudo file systems mounted and the console open. (/sys and
// the tmpfs on /run are only mounted now: the normal boot does without them.)
[[noreturn]] void HandOver(const std::string& kernel_uptime) {
  mount("sysfs", "/sys", "sysfs", 0, nullptr);
  mount("tmpfs", "/run", "tmpfs", 0, "mode=0755");
  setenv("WINSIM_KERNEL_UPTIME", kernel_uptime.c_str(), 1);
  execl("/bin/sh", "sh", kScript, static_cast<char*>(nullptr));
  Say(std::string("winsim: cannot start ") + kScript + ": " + strerror(errno));
  for (;;) pause();  // PID 1 must not exit: the kernel would panic
}

void Sleep10ms() {
  timespec t{0, 10'000'000};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

// What `ip link set NAME up` does; false when there is no such interface.
bool LinkUp(int sock, const char* name) {
  ifreq req{};
  strncpy(req.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(sock, SIOCGIFFLAGS, &req) != 0) return false;
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  ioctl(sock, SIOCSIFFLAGS, &req);
  return true;
}

sockaddr Ipv4(const char* dotted) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, dotted, &in.sin_addr);
  sockaddr out{};
  memcpy(&out, &in, sizeof in);
  return out;
}

// The lab's network profile on eth0 (link_shaper.h), said on the console either way: a guest whose
// link is not shaped must not pass unnoticed.
void ApplyLinkProfile(const std::string& word) {
  if (word.empty()) return;
  const std::string outcome = ShapeLinkOutcome(word, "eth0");
  if (!outcome.empty()) Say(outcome);
}

// The script's network_up, with ioctls instead of four `ip` processes: loopback up; with a cloud
// and a network adapter also eth0 up, 10.0.2.15/24 and the default route via 10.0.2.2 (QEMU's
// user-mode network). Like the script it does not judge the outcome of each step. (The script
// asks /sys/class/net/eth0 whether there is an adapter; the ioctl tells without sysfs.)
void NetworkUp(const BootWords& words) {
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock >= 0) LinkUp(sock, "lo");
  if (!words.cloud.empty() && sock >= 0 && LinkUp(sock, "eth0")) {
    ApplyLinkProfile(words.link);  // before the address and route: no packet leaves unshaped
    ifreq req{};
    strncpy(req.ifr_name, "eth0", IFNAMSIZ - 1);
    req.ifr_addr = Ipv4("10.0.2.15");
    ioctl(sock, SIOCSIFADDR, &req);
    req.ifr_netmask = Ipv4("255.255.255.0");
    ioctl(sock, SIOCSIFNETMASK, &req);
    rtentry route{};
    route.rt_dst = Ipv4("0.0.0.0");
    route.rt_genmask = Ipv4("0.0.0.0");
    route.rt_gateway = Ipv4("10.0.2.2");
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    ioctl(sock, SIOCADDRT, &route);
    Phase("network state=up");
  } else {
    if (!words.cloud.empty()) Say("winsim: no network adapter (eth0), staying offline");
    Phase("network state=offline");
  }
  if (sock >= 0) close(sock);
}

// NetworkUp once the profile's link-up delay has passed (a Wi-Fi association, a VPN that waits for
// a logon), counted from the sensor's start, where the boot race begins: at once when there is
// none, else from a child process, so that the boot goes on meanwhile (PID 1 reaps it).
void NetworkUpAfterDelay(const BootWords& words) {
  auto profile = ParseLinkWord(words.link);
  const uint32_t up_ms = profile.ok() ? DrawLinkUpDelay(*profile) : 0;
  if (up_ms == 0) return NetworkUp(words);
  const pid_t child = fork();
  if (child < 0) return NetworkUp(words);  // no process to wait in: the link comes up now
  if (child > 0) return;
  timespec t{static_cast<time_t>(up_ms / 1000), static_cast<long>(up_ms % 1000) * 1'000'000};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
  NetworkUp(words);
  _exit(0);
}

bool OnlyChars(std::string_view text, std::string_view allowed) {
  return text.find_first_not_of(allowed) == std::string_view::npos;
}

constexpr std::string_view kDigits = "0123456789";

}  // namespace

Result<BootWords> ParseBootWords(std::string_view cmdline) {
  BootWords w;
  size_t at = 0;
  while (at < cmdline.size()) {
    const size_t begin = cmdline.find_first_not_of(" \t\n", at);
    if (begin == std::string_view::npos) break;
    size_t end = cmdline.find_first_of(" \t\n", begin);
    if (end == std::string_view::npos) end = cmdline.size();
    const std::string_view word = cmdline.substr(begin, end - begin);
    at = end;
    const size_t eq = word.find('=');
    if (!word.starts_with("winsim.") || eq == std::string_view::npos) continue;
    const std::string_view key = word.substr(0, eq);
    const std::string value(word.substr(eq + 1));
    if (key == "winsim.host") w.host = value;
    if (key == "winsim.cloud") w.cloud = value;
    if (key == "winsim.poll_ms") w.poll_ms = value;
    if (key == "winsim.ipc_ms") w.ipc_ms = value;
    if (key == "winsim.boot") w.boot = value;
    if (key == "winsim.tpm") w.tpm = value;
    if (key == "winsim.link") w.link = value;
  }
  // The script's checks (each failure is a console complaint there).
  const std::string_view host_chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  if (w.host.empty() || !OnlyChars(w.host, host_chars)) {
    return Status::InvalidArgument("winsim.host");
  }
  if (w.poll_ms.empty() || !OnlyChars(w.poll_ms, kDigits)) {
    return Status::InvalidArgument("winsim.poll_ms");
  }
  if (w.ipc_ms.empty() || !OnlyChars(w.ipc_ms, kDigits)) {
    return Status::InvalidArgument("winsim.ipc_ms");
  }
  if (!OnlyChars(w.cloud, "0123456789.:")) return Status::InvalidArgument("winsim.cloud");
  if (!OnlyChars(w.tpm, "0123456789abcdefABCDEF")) return Status::InvalidArgument("winsim.tpm");
  if (!w.link.empty() && !ParseLinkWord(w.link).ok()) return Status::InvalidArgument("winsim.link");
  if (w.boot != "normal" && w.boot != "safe" && w.boot != "winre" && w.boot != "usb" &&
      w.boot != "pxe" && w.boot != "rescue") {
    return Status::InvalidArgument("winsim.boot");
  }
  return w;
}

std::string BcdBootMode(std::string_view bcd, std::string_view fallback) {
  std::string mode(fallback);
  // Only newline-terminated lines count: the script's `while read` drops an unterminated last one.
  for (size_t end; (end = bcd.find('\n')) != std::string_view::npos; bcd.remove_prefix(end + 1)) {
    const std::string_view line = bcd.substr(0, end);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || line.substr(0, eq) != "bootmode") continue;
    mode.clear();
    for (char c : line.substr(eq + 1)) {
      if (c != '\r' && c != ' ') mode.push_back(c);
    }
  }
  return mode;
}

std::vector<std::string> SensorArgs(const BootWords& words, const std::string& root) {
  std::vector<std::string> args = {"--root",    root,          "--host",   words.host,
                                   "--poll-ms", words.poll_ms, "--ipc-ms", words.ipc_ms};
  if (!words.cloud.empty()) args.insert(args.end(), {"--cloud", words.cloud});
  return args;
}

void RunBootManager(int (*sensor_main)(const std::vector<std::string>& args)) {
  // /proc and /dev, then the console on 0, 1 and 2. The normal boot needs neither /sys nor a
  // tmpfs on /run (the ready file goes to the initramfs's own /run): each mount is cold kernel
  // code, so HandOver mounts them for the script only.
  mount("proc", "/proc", "proc", 0, nullptr);
  mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  const int in = open("/dev/console", O_RDONLY);
  const int out = open("/dev/console", O_WRONLY);
  if (in >= 0 && in != STDIN_FILENO) dup2(in, STDIN_FILENO);
  if (out >= 0) {
    if (out != STDOUT_FILENO) dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
  }
  const std::string kernel_uptime = Uptime();  // when the kernel handed over to us

  auto words = ParseBootWords(ReadSmallFile("/proc/cmdline"));
  if (!words.ok() || words->boot != "normal") HandOver(kernel_uptime);
  if (access("/lib/modules/order", F_OK) == 0) HandOver(kernel_uptime);  // stock kernel: modules
  sethostname(words->host.data(), words->host.size());

  struct stat disk {};
  if (stat(kSystemDisk, &disk) != 0 || !S_ISBLK(disk.st_mode)) HandOver(kernel_uptime);
  // A BitLocker disk starts with its header's text line, never with a FAT boot sector, so the
  // mount tells the two apart: the script then reads the header itself (reading it here too cost
  // the block device's page-cache read path, ~400 translated blocks). MS_SILENT (busybox mount
  // passes it as well) keeps FAT's complaints about a non-FAT volume off the console.
  if (mount(kSystemDisk, kRoot, "vfat", MS_SILENT, nullptr) != 0) HandOver(kernel_uptime);
  const std::string bcd = ReadSmallFile("/mnt/c/BCD");
  if (BcdBootMode(bcd, "normal") != "normal") {
    umount(kRoot);  // the script mounts it again and shows safe mode, WinRE or its complaint
    HandOver(kernel_uptime);
  }

  // The normal boot, line for line as the script prints it.
  Say("Windows Boot Manager");
  Phase("bootmgr mode=normal");
  Say("Starting Windows (kernel up after " + kernel_uptime + " s)");
  Phase("kernel");
  Say("Loading boot-start drivers...");
  Phase("drivers");
  const pid_t sensor = fork();
  if (sensor == 0) {
    prctl(PR_SET_NAME, "csagent");
    _exit(sensor_main(SensorArgs(*words, kRoot)));
  }
  // The sensor's cloud fetch needs the network at once; an offline guest brings up only its
  // loopback, which nothing needs before the sensor is up, so that waits (one vCPU).
  const bool online = !words->cloud.empty();
  if (online) NetworkUpAfterDelay(*words);
  int status = 0;
  while (access(kReadyFile, F_OK) != 0) {
    if (sensor < 0 || waitpid(sensor, &status, WNOHANG) == sensor) {
      const int code = sensor < 0            ? 127
                       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                             : WEXITSTATUS(status);
      Say("winsim: the CrowdStrike sensor service stopped (exit status " + std::to_string(code) +
          "); this host is not protected.");
      break;
    }
    Sleep10ms();
  }
  if (!online) NetworkUp(*words);
  if (access(kReadyFile, F_OK) == 0) {
    Say("Welcome (boot took " + Uptime() + " s of guest uptime)");
    Say("@@winsim ready");
  }
  // Stay up (PID 1 must never exit); reap whatever ends.
  for (;;) {
    if (waitpid(-1, nullptr, 0) < 0 && errno == ECHILD) sleep(3600);
  }
}

}  // namespace chaoslab::content
