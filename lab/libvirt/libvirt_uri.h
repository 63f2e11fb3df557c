// Which libvirt connection URIs an inventory may name. libvirt acts on a URI as the lab's user
// (root): the `ext` transport and `command=` run a program, `tcp` has no authentication,
// `no_verify` skips the host check. So URIs are on an allow-list, documented in
// playbooks/README.md:
//
//   qemu:///system  qemu:///session  qemu+unix:///system?socket=/abs/path
//   qemu+ssh://[user@]host[:port]/system  qemu+tls://host[:port]/system
//
// with the query parameters socket (local only), keyfile, known_hosts, no_tty (ssh), pkipath (tls).
#pragma once

#include <string_view>

#include "lab/common/status.h"
#include "lab/libvirt/inventory.h"

namespace chaoslab::libvirt {

// Ok, or InvalidArgument saying which part of `uri` is not allowed and what is.
Status CheckLibvirtUri(std::string_view uri);

// Every hypervisor's URI of `inventory` (naming the hypervisor on error). An Inventory built in
// code never went through the loader, so whatever connects checks again before it does.
Status CheckInventoryUris(const Inventory& inventory);

}  // namespace chaoslab::libvirt
