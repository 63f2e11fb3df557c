#include "lab/libvirt/windows_golden.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace chaoslab::libvirt {
namespace {

namespace fs = std::filesystem;

Status Missing(const std::string& dir, const std::string& path, const std::string& what) {
  return Status::FailedPrecondition(
      "the golden Windows image is not built: " + what + " " + path +
      " is missing; build it from your Windows ISO with `images/windows/build.sh --iso YOUR.iso" +
      (dir == DefaultWindowsGoldenDir() ? std::string() : " --out " + dir) +
      "` (docs/WINDOWS.md; no Windows image is downloaded)");
}

}  // namespace

std::string WindowsGolden::ovmf_code() const {
  return secure_boot ? "/usr/share/OVMF/OVMF_CODE_4M.ms.fd" : "/usr/share/OVMF/OVMF_CODE_4M.fd";
}

std::string WindowsGolden::ovmf_vars_template() const {
  return secure_boot ? "/usr/share/OVMF/OVMF_VARS_4M.ms.fd" : "/usr/share/OVMF/OVMF_VARS_4M.fd";
}

std::string DefaultWindowsGoldenDir() {
  if (const char* dir = std::getenv("CHAOSLAB_WINDOWS_DIR"); dir && *dir) return dir;
  const char* cache = std::getenv("CHAOSLAB_CACHE_DIR");
  const char* home = std::getenv("HOME");
  std::string root =
      cache && *cache ? cache : std::string(home && *home ? home : "/root") + "/.cache/chaoslab";
  return root + "/windows";
}

Result<WindowsGolden> FindWindowsGolden(const std::string& dir) {
  std::error_code ec;
  WindowsGolden g;
  g.dir = fs::absolute(dir, ec).lexically_normal().string();
  if (ec) g.dir = dir;
  while (g.dir.size() > 1 && g.dir.back() == '/') g.dir.pop_back();
  g.disk = g.dir + "/windows.qcow2";
  g.ovmf_vars = g.dir + "/OVMF_VARS.fd";
  g.tpm_state = g.dir + "/tpm";
  g.recovery_password = g.dir + "/recovery-password.txt";
  g.admin_password = g.dir + "/admin-password.txt";
  if (!fs::is_directory(g.dir, ec)) return Missing(dir, g.dir, "the folder");
  if (!fs::is_regular_file(g.disk, ec)) return Missing(dir, g.disk, "its system disk");
  {
    std::ifstream in(g.disk, std::ios::binary);
    char magic[4] = {};
    in.read(magic, sizeof(magic));
    if (!in || std::string(magic, 4) != "QFI\xfb") {
      return Status::FailedPrecondition("the golden Windows image's system disk " + g.disk +
                                        " is not a qcow2 image; rebuild it with "
                                        "`images/windows/build.sh --iso YOUR.iso`");
    }
  }
  if (!fs::is_regular_file(g.ovmf_vars, ec)) return Missing(dir, g.ovmf_vars, "its UEFI variables");
  if (!fs::is_directory(g.tpm_state, ec) || fs::is_empty(g.tpm_state, ec)) {
    return Missing(dir, g.tpm_state, "its TPM state");
  }
  if (!fs::is_regular_file(g.recovery_password, ec)) {
    return Missing(dir, g.recovery_password, "its escrowed recovery password");
  }
  if (!fs::is_regular_file(g.admin_password, ec)) {
    return Missing(dir, g.admin_password, "its administrator password (for SAC's cmd channel)");
  }
  std::ifstream info(g.dir + "/image.json");
  if (info) {
    auto j = nlohmann::json::parse(info, nullptr, false);
    if (j.is_object() && j.contains("secure_boot")) {
      const auto& sb = j["secure_boot"];
      g.secure_boot = sb.is_boolean() ? sb.get<bool>() : !(sb.is_number() && sb.get<int>() == 0);
    }
  }
  for (const auto& fw : {g.ovmf_code(), g.ovmf_vars_template()}) {
    if (!fs::is_regular_file(fw, ec)) {
      return Status::FailedPrecondition("UEFI firmware " + fw +
                                        " is missing: install Debian's ovmf (`make setup`)");
    }
  }
  return g;
}

}  // namespace chaoslab::libvirt
