// Which accelerator QEMU really runs on this machine: what both VM backends give their guests
// (the libvirt backend decides it here, for the hypervisors on this machine, as the QEMU backend
// does). QEMU-specific: it boots a probe under QEMU.
#pragma once

#include <string>

#include "lab/common/status.h"

namespace chaoslab::vm {

// "kvm" or "tcg". "auto" boots a 512-byte boot sector under KVM and takes KVM only if it runs to
// the end within a few seconds (on nested machines KVM exists but hangs); the answer is cached per
// process and QEMU binary. Explicit "kvm"/"tcg" are returned as they are; anything else is
// InvalidArgument.
Result<std::string> ResolveAccel(const std::string& qemu, const std::string& accel);

}  // namespace chaoslab::vm
