// Helpers shared by the libvirt backend's files (libvirt_backend.cc, libvirt_gc.cc); not an API.
#pragma once

#include <string>

namespace chaoslab::libvirt {

// Starts libvirt's one default event loop thread (once per process), before any connection.
void EnsureEventLoop();
// The message of the calling thread's last libvirt error.
std::string LastError();
// This machine's host name: the orchestrator's "machine" in a domain's ownership metadata.
std::string MachineName();

}  // namespace chaoslab::libvirt
