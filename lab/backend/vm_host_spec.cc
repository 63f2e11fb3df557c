#include "lab/backend/vm_host_spec.h"

#include <filesystem>
#include <utility>

#include "lab/backend/guest_network.h"
#include "lab/common/identifier.h"

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

constexpr int kMinMemoryMib = 32;
constexpr int kMaxMemoryMib = 65536;
constexpr size_t kMaxExtraDisks = 8;
constexpr size_t kMaxTpmSecretDigits = 128;

bool IsFile(const std::string& path) {
  std::error_code ec;
  return !path.empty() && fs::is_regular_file(path, ec);
}

// A word of the guest's kernel command line: the backends join the words with spaces.
bool IsKernelWord(const std::string& word) {
  if (word.empty()) return false;
  for (unsigned char c : word) {
    if (c < 0x20 || c == 0x7f || c == ' ') return false;
  }
  return true;
}

Status CheckFiles(const HostSpec& spec, const VmSpecRules& rules, const std::string& where) {
  std::pair<const std::string*, const char*> files[] = {
      {&spec.kernel, "kernel"}, {&spec.initrd, "initrd"}, {&spec.base_disk, "base disk"}};
  for (const auto& [file, what] : files) {
    if (!rules.boots_kernel && file != &spec.base_disk) continue;  // UEFI boots the disk
    if (!IsFile(*file)) {
      return Status::NotFound(where + ": " + what + " '" + *file + "' is not a file");
    }
  }
  return Status::Ok();
}

Status CheckExtraDisks(const HostSpec& spec, const std::string& where) {
  if (spec.extra_disks.size() > kMaxExtraDisks) {
    return Status::InvalidArgument(where + ": at most " + std::to_string(kMaxExtraDisks) +
                                   " extra disks");
  }
  for (const auto& disk : spec.extra_disks) {
    if (!IsFile(disk.path)) {
      return Status::NotFound(where + ": extra disk '" + disk.path + "' is not a file");
    }
    if (disk.format != "raw" && disk.format != "qcow2") {
      return Status::InvalidArgument(where + ": extra disk '" + disk.path + "' has format '" +
                                     disk.format + "' (raw or qcow2)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckHostId(std::string_view id) { return CheckIdentifier("host name", id); }

Status CheckVmHostSpec(const HostSpec& spec, const VmSpecRules& rules) {
  const std::string where = "host '" + spec.id + "'";
  RETURN_IF_ERROR(CheckHostId(spec.id));
  RETURN_IF_ERROR(CheckFiles(spec, rules, where));
  if (spec.memory_mib < kMinMemoryMib || spec.memory_mib > kMaxMemoryMib) {
    return Status::InvalidArgument(where + ": memory_mib " + std::to_string(spec.memory_mib) +
                                   " is outside " + std::to_string(kMinMemoryMib) + ".." +
                                   std::to_string(kMaxMemoryMib));
  }
  for (const auto& word : spec.kernel_args) {
    if (!IsKernelWord(word)) {
      return Status::InvalidArgument(where + ": kernel argument '" + word +
                                     "' is empty or contains spaces/control characters");
    }
  }
  RETURN_IF_ERROR(CheckExtraDisks(spec, where));
  // It reaches the guest as a fw_cfg file the guest reads as hex: hex only, and short.
  if (spec.tpm_secret.size() > kMaxTpmSecretDigits ||
      spec.tpm_secret.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Status::InvalidArgument(where + ": tpm_secret must be at most " +
                                   std::to_string(kMaxTpmSecretDigits) + " hex digits");
  }
  if (spec.network.online) {
    if (rules.relay.empty()) {
      return Status::FailedPrecondition(
          where + " is online but the backend has no content relay" +
          (rules.relay_option.empty() ? "" : " (" + rules.relay_option + ")"));
    }
    RETURN_IF_ERROR(GuestfwdNetdev(rules.relay, spec.network).status().WithContext(where));
  }
  return Status::Ok();
}

HostSpec WithAbsolutePaths(HostSpec spec) {
  auto absolute = [](std::string* path) {
    if (!path->empty()) *path = fs::absolute(*path).string();
  };
  absolute(&spec.kernel);
  absolute(&spec.initrd);
  absolute(&spec.base_disk);
  for (auto& disk : spec.extra_disks) absolute(&disk.path);
  return spec;
}

}  // namespace chaoslab
