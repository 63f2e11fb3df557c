#include "lab/backend/vm_disks.h"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace chaoslab {

namespace fs = std::filesystem;

Result<std::string> DiskImageFormat(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Status::NotFound("'" + path + "' is not a file");
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof(magic)) && !in.eof()) {
    return Status::IoError("cannot read '" + path + "'");
  }
  if (!in) return std::string("raw");  // shorter than the magic
  return std::string(std::memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw");
}

Result<BootChoice> ChooseBoot(const std::string& host_id, BootTarget target,
                              const std::string& media) {
  const std::string what =
      "set boot of host " + host_id + " to " + std::string(BootTargetWord(target));
  BootChoice next;
  next.target = target;
  if (target != BootTarget::kUsb) {
    if (!media.empty()) return Status::InvalidArgument(what + ": only usb takes a media image");
    return next;
  }
  if (media.empty()) return Status::InvalidArgument(what + ": usb needs a media image");
  next.media.path = fs::absolute(media).string();
  auto format = DiskImageFormat(next.media.path);
  if (!format.ok()) return format.status().WithContext(what + ": recovery media");
  next.media.format = *format;
  next.media.read_only = true;
  return next;
}

std::vector<std::string> OverlayCreateArgs(const std::string& base, const std::string& base_format,
                                           const std::string& overlay) {
  return {"create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, overlay};
}

std::vector<std::string> SnapshotTakeArgs(const std::string& overlay) {
  return {"snapshot", "-c", kPreUpdateSnapshot, overlay};
}

std::vector<std::string> SnapshotApplyArgs(const std::string& overlay) {
  return {"snapshot", "-a", kPreUpdateSnapshot, overlay};
}

bool IsDiskLockConflict(std::string_view tool_output) {
  return tool_output.find("Failed to get") != std::string_view::npos &&
         tool_output.find("\" lock") != std::string_view::npos;
}

Status DiskInUse(const std::string& what, const std::string& tool_output) {
  return Status::FailedPrecondition(
      what + ": the disk is in use by another machine (a rescue VM?): " + tool_output);
}

}  // namespace chaoslab
