// A VM's disks as both VM backends keep them: the system disk is a qcow2 overlay (made with
// qemu-img) over the group's base disk, with an internal snapshot taken before the first boot that
// RevertDisk goes back to; recovery media are attached read-only, as qcow2 or raw by their magic.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lab/backend/backend.h"
#include "lab/common/status.h"

namespace chaoslab {

// The name of the snapshot RevertDisk goes back to.
inline constexpr const char* kPreUpdateSnapshot = "pre-update";

// What one launch boots: the target, and for kUsb the media (path and format, read-only).
struct BootChoice {
  BootTarget target = BootTarget::kDisk;
  DiskImage media;  // path empty unless target is kUsb

  bool operator==(const BootChoice&) const = default;
};

// Host::SetBoot's checks for host `host_id`: kUsb needs a media image that is a file (made
// absolute, its format read from it, read-only); the other targets take none. InvalidArgument or
// NotFound "set boot of host <id> to <target>: ...".
Result<BootChoice> ChooseBoot(const std::string& host_id, BootTarget target,
                              const std::string& media);

// "qcow2" if the file starts with qcow2's magic ("QFI\xfb"), "raw" otherwise (also when shorter
// than the magic). NotFound if `path` is not a file, IoError if it cannot be read.
Result<std::string> DiskImageFormat(const std::string& path);

// qemu-img's arguments (without the program): a qcow2 overlay over `base` (of `base_format`);
// take or apply the pre-update snapshot.
std::vector<std::string> OverlayCreateArgs(const std::string& base, const std::string& base_format,
                                           const std::string& overlay);
std::vector<std::string> SnapshotTakeArgs(const std::string& overlay);
std::vector<std::string> SnapshotApplyArgs(const std::string& overlay);

// Whether qemu-img's output says another QEMU holds the image (`Failed to get "write" lock`):
// QEMU's image locks keep a disk from being written by two machines, so a disk still attached to a
// running rescue VM is refused.
bool IsDiskLockConflict(std::string_view tool_output);

// The error for such a refusal: FailedPrecondition, a state of the fleet rather than an I/O fault.
Status DiskInUse(const std::string& what, const std::string& tool_output);

}  // namespace chaoslab
