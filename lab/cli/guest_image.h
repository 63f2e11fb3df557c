// The guest image a run boots: found built (`images/<name>/build.sh --check`, cached by content
// hash) or built. A Windows image is the golden image the user made from an ISO (windows_golden.h).
#pragma once

#include <ostream>
#include <string>

#include "lab/cli/lab_paths.h"
#include "lab/common/status.h"
#include "lab/config/config.h"

namespace chaoslab {

// The folder of a built guest image and its kernel and initramfs (empty for a Windows image).
struct GuestImage {
  std::string dir, kernel, initrd;
};

// The built image of `image`, or FailedPrecondition saying how to build it.
Result<GuestImage> FindBuiltImage(const LabPaths& paths, const config::ImageConfig& image);
// Builds (or finds cached) the guest image; progress goes to `err`.
Result<GuestImage> BuildImage(const LabPaths& paths, const std::string& name, std::ostream& err);

}  // namespace chaoslab
