// The guest's only network path, as both VM backends give it to QEMU: user-mode networking,
// restricted, with one guestfwd (10.0.2.100:80) to chaoslab-relay, which carries the link's delays
// and loss and, when the host has one, presents its escrow credential to the content server
// (lab/content_server/host_credential.h). One builder, so QEMU and libvirt guests get the same
// link.
#pragma once

#include <string>

#include "lab/backend/backend.h"
#include "lab/common/status.h"

namespace chaoslab {

// QEMU option values ("file=...,if=none"): a comma inside a value is doubled. The one escaping
// both backends give what they pass in QEMU's option syntax (file paths, the guestfwd cmd).
std::string QemuOptEscape(const std::string& value);

// The relay's path becomes a word of the guestfwd cmd: Ok, or InvalidArgument if it holds anything
// but letters, digits and / . _ - +.
Status CheckRelayPath(const std::string& relay);

// OK if `link`'s figures are in range (port 1..65535, loss 0..100 %, delay and jitter >= 0) and its
// credential file path, if any, is a plain path; InvalidArgument saying which otherwise.
Status CheckNetworkLink(const NetworkLink& link);

// The `-netdev` value for an online host: "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:
// <relay> --port P [...]". libslirp splits the cmd: into words itself (no shell), so every word is
// checked: InvalidArgument if the relay or the credential file path holds anything but letters,
// digits and / . _ - +, or the port is out of range.
Result<std::string> GuestfwdNetdev(const std::string& relay, const NetworkLink& link);

}  // namespace chaoslab
