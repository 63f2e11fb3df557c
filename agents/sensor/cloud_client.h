// The sensor's side of the content server protocol (docs/GUEST-PROTOCOL.md): plain HTTP/1.0 GETs
// to an IPv4 literal (no DNS in the guest) with a deadline, and the manifest format.
// Free functions, no shared state: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::content {

struct Endpoint {
  std::string ip;  // dotted IPv4 literal
  uint16_t port = 0;
  std::string ToString() const { return ip + ":" + std::to_string(port); }
};
// "10.0.2.100:80" → Endpoint; InvalidArgument for anything else (names are not resolved).
Result<Endpoint> ParseEndpoint(std::string_view text);

struct HttpResponse {
  int status = 0;
  std::string body;
};
inline constexpr size_t kMaxHttpResponseBytes = 8 << 20;

// GET `target` (path and query) with HTTP/1.0, reading until the server closes. Connecting and
// reading share one deadline of `timeout`. Unavailable/Timeout/IoError on network failure,
// Corruption on a malformed or over-long response. Any status code is returned, not judged.
Result<HttpResponse> HttpGet(const Endpoint& server, std::string_view target,
                             std::chrono::milliseconds timeout);

struct ManifestEntry {
  uint32_t channel = 0;
  uint32_t content_version = 0;
  std::string file_name;  // always ChannelFileName(content_version, channel)
  // "quarantine <channel> <file-name>": the vendor's cloud remediation asks the sensor to move
  // that cached file aside (docs/GUEST-PROTOCOL.md); content_version is the file name's.
  bool quarantine = false;
};
// One "<channel> <version> <file-name>" or "quarantine <channel> <file-name>" per line; blank
// lines are skipped. Corruption names the line. The file name must be exactly the canonical one
// (of that channel), so it is safe to use as a path component: a quarantine can name no file
// outside the sensor's content folder.
Result<std::vector<ManifestEntry>> ParseManifest(std::string_view body);

// Letters, digits, '-' and '_', 1..64 characters (the protocol's host id).
bool IsValidHostId(std::string_view id);

}  // namespace chaoslab::content
