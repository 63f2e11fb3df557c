#include "lab/backend/guest_network.h"

#include <algorithm>
#include <cctype>

namespace chaoslab {
namespace {

// What may stand as one word of the guestfwd cmd: (libslirp splits on spaces; QEMU on commas).
bool IsPlainPath(const std::string& path) {
  return !path.empty() && std::all_of(path.begin(), path.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' ||
           c == '-' || c == '+';
  });
}

}  // namespace

std::string QemuOptEscape(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

Status CheckRelayPath(const std::string& relay) {
  if (IsPlainPath(relay)) return Status::Ok();
  return Status::InvalidArgument("relay path '" + relay +
                                 "' may only hold letters, digits and / . _ - +");
}

Status CheckNetworkLink(const NetworkLink& link) {
  if (link.content_port < 1 || link.content_port > 65535) {
    return Status::InvalidArgument("content_port " + std::to_string(link.content_port) +
                                   " is not a TCP port (1..65535)");
  }
  if (link.loss_percent < 0 || link.loss_percent > 100) {
    return Status::InvalidArgument("network loss " + std::to_string(link.loss_percent) +
                                   " % is outside 0..100 %");
  }
  if (link.delay_ms < 0 || link.jitter_ms < 0) {
    return Status::InvalidArgument("network delay and jitter must not be negative");
  }
  if (!link.credential_file.empty() && !IsPlainPath(link.credential_file)) {
    return Status::InvalidArgument("credential file path '" + link.credential_file +
                                   "' may only hold letters, digits and / . _ - +");
  }
  return Status::Ok();
}

Result<std::string> GuestfwdNetdev(const std::string& relay, const NetworkLink& link) {
  RETURN_IF_ERROR(CheckRelayPath(relay));
  RETURN_IF_ERROR(CheckNetworkLink(link));
  std::string cmd = relay + " --port " + std::to_string(link.content_port);
  if (link.loss_percent > 0) cmd += " --loss-percent " + std::to_string(link.loss_percent);
  if (link.delay_ms > 0 || link.jitter_ms > 0) {
    cmd += " --delay-ms " + std::to_string(link.delay_ms) + " --jitter-ms " +
           std::to_string(link.jitter_ms);
  }
  if (!link.credential_file.empty()) cmd += " --credential-file " + link.credential_file;
  return "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:" + QemuOptEscape(cmd);
}

}  // namespace chaoslab
