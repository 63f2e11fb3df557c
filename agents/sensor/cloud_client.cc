#include "agents/sensor/cloud_client.h"

#include <cctype>
#include <charconv>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/platform.h"

namespace chaoslab::content {
namespace {

using Clock = std::chrono::steady_clock;

bool ParseU32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 10) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// A dotted IPv4 literal as inet_pton(AF_INET) takes it: four decimal numbers 0..255, no leading
// zeros, nothing else. Written out so that Linux and Windows accept exactly the same text.
bool IsIpv4Literal(std::string_view text) {
  for (int part = 0; part < 4; ++part) {
    const size_t dot = text.find('.');
    if ((part < 3) == (dot == std::string_view::npos)) return false;
    const std::string_view number = text.substr(0, dot);
    uint32_t value = 0;
    if (number.size() > 3 || (number.size() > 1 && number[0] == '0') || !ParseU32(number, &value) ||
        value > 255) {
      return false;
    }
    text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  }
  return true;
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  uint32_t port = 0;
  Endpoint ep;
  if (colon != std::string_view::npos) ep.ip = std::string(text.substr(0, colon));
  if (colon == std::string_view::npos || !ParseU32(text.substr(colon + 1), &port) || port == 0 ||
      port > 65535 || !IsIpv4Literal(ep.ip)) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not an IPv4 endpoint like 10.0.2.100:80");
  }
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

Result<HttpResponse> HttpGet(const Endpoint& server, std::string_view target,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = "GET http://" + server.ToString() + std::string(target);
  const std::string request = "GET " + std::string(target) +
                              " HTTP/1.0\r\nHost: " + server.ToString() +
                              "\r\nUser-Agent: csagent\r\n\r\n";
  ASSIGN_OR_RETURN(const std::string raw,
                   platform::TcpExchange(server.ip, server.port, request, deadline, where,
                                         kMaxHttpResponseBytes));
  // Status line "HTTP/1.x NNN reason", headers, blank line, body.
  size_t header_end = raw.find("\r\n\r\n");
  size_t body_at = header_end + 4;
  if (header_end == std::string::npos) {
    header_end = raw.find("\n\n");
    body_at = header_end + 2;
  }
  uint32_t code = 0;
  if (header_end == std::string::npos || !raw.starts_with("HTTP/1.") || raw.size() < 12 ||
      raw[8] != ' ' || !ParseU32(std::string_view(raw).substr(9, 3), &code)) {
    return Status::Corruption(where + ": malformed HTTP response (" + std::to_string(raw.size()) +
                              " bytes)");
  }
  HttpResponse response{static_cast<int>(code), raw.substr(body_at)};
  // A Content-Length that the body does not reach means the connection was cut.
  std::string headers = raw.substr(0, header_end);
  for (char& c : headers) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  const size_t cl = headers.find("\ncontent-length:");
  if (cl != std::string::npos) {
    size_t at = cl + 16;
    while (at < headers.size() && headers[at] == ' ') ++at;
    const size_t stop = headers.find_first_of("\r\n", at);
    uint32_t length = 0;
    if (!ParseU32(std::string_view(headers).substr(at, stop - at), &length)) {
      return Status::Corruption(where + ": bad Content-Length header");
    }
    if (response.body.size() != length) {
      return Status::Corruption(where + ": body has " + std::to_string(response.body.size()) +
                                " bytes, Content-Length says " + std::to_string(length));
    }
  }
  return response;
}

Result<std::vector<ManifestEntry>> ParseManifest(std::string_view body) {
  std::vector<ManifestEntry> entries;
  int line_number = 0;
  while (!body.empty()) {
    ++line_number;
    const size_t eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    body = eol == std::string_view::npos ? std::string_view() : body.substr(eol + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto bad = [&](std::string_view why) {
      return Status::Corruption("manifest line " + std::to_string(line_number) + ": " +
                                std::string(why) + ": '" + std::string(line.substr(0, 120)) + "'");
    };
    const size_t s1 = line.find(' ');
    const size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
    if (s2 == std::string_view::npos || line.find(' ', s2 + 1) != std::string_view::npos) {
      return bad("expected '<channel> <version> <file-name>'");
    }
    ManifestEntry e;
    if (line.substr(0, s1) == "quarantine") {
      e.quarantine = true;
      auto id = ParseChannelFileName(line.substr(s2 + 1));
      if (!ParseU32(line.substr(s1 + 1, s2 - s1 - 1), &e.channel) || !id.ok() ||
          id->channel != e.channel) {
        return bad("expected 'quarantine <channel> <file-name of that channel>'");
      }
      e.content_version = id->content_version;
      e.file_name = ChannelFileName(e.content_version, e.channel);
      entries.push_back(std::move(e));
      continue;
    }
    if (!ParseU32(line.substr(0, s1), &e.channel) ||
        !ParseU32(line.substr(s1 + 1, s2 - s1 - 1), &e.content_version)) {
      return bad("channel and version must be numbers");
    }
    e.file_name = std::string(line.substr(s2 + 1));
    if (e.file_name != ChannelFileName(e.content_version, e.channel)) {
      return bad("file name does not match channel and version");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

bool IsValidHostId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

}  // namespace chaoslab::content
