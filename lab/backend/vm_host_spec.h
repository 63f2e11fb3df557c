// What both VM backends check in a HostSpec before they make anything for it, so that a playbook
// a backend refuses is refused by the other one too, with the same words.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>

#include "lab/backend/backend.h"
#include "lab/common/status.h"

namespace chaoslab {

// The host-id rule: the id names the host's folder, QEMU's `-name` and the libvirt domain, so it
// follows lab/common/identifier.h. Ok, or InvalidArgument "host name '<id>' ...".
Status CheckHostId(std::string_view id);

// What differs between the backends' checks.
struct VmSpecRules {
  // False when the firmware boots the disk (a Windows domain): kernel and initrd are not used.
  bool boots_kernel = true;
  // The backend's content relay (empty: none, so no host may be online) and the option that sets
  // it, named in the message that says it is missing ("QemuOptions.relay").
  std::string relay;
  std::string relay_option;
};

// Ok, or the first problem, "host '<id>': ...": the id (CheckHostId); kernel, initrd (if
// `boots_kernel`) and base disk must be files (NotFound); memory 32..65536 MiB; kernel arguments
// non-empty without spaces or control characters; at most 8 extra disks, each a file of format
// raw or qcow2; tpm_secret at most 128 hex digits (it becomes a fw_cfg file); an online host needs
// the relay (FailedPrecondition) and a link GuestfwdNetdev accepts (guest_network.h).
Status CheckVmHostSpec(const HostSpec& spec, const VmSpecRules& rules);

// `spec` with every path made absolute (kernel and initrd only when set): the machine may be
// started from another working directory, and libvirt resolves nothing relative.
HostSpec WithAbsolutePaths(HostSpec spec);

}  // namespace chaoslab
