#include "lab/libvirt/libvirt_uri.h"

#include <set>
#include <string>

namespace chaoslab::libvirt {
namespace {

constexpr char kAllowed[] =
    "allowed: qemu:///system, qemu:///session, qemu+unix:///system?socket=PATH, "
    "qemu+ssh://[user@]host[:port]/system, qemu+tls://host[:port]/system";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool AllOf(std::string_view s, bool (*ok)(char)) {
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

// "[user@]host[:port]" with a DNS name, an IPv4 address or a bracketed IPv6 address.
bool IsAuthority(std::string_view a) {
  if (size_t at = a.find('@'); at != std::string_view::npos) {
    std::string_view user = a.substr(0, at);
    if (user.empty() || !IsAlnum(user[0])) return false;
    if (!AllOf(user, [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; })) {
      return false;
    }
    a = a.substr(at + 1);
  }
  std::string_view host = a, port;
  if (!a.empty() && a[0] == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return false;
    host = a.substr(1, close - 1);
    if (host.empty() || !AllOf(host, [](char c) { return IsAlnum(c) || c == ':' || c == '.'; })) {
      return false;
    }
    port = a.substr(close + 1);
  } else {
    size_t colon = a.find(':');
    if (colon != std::string_view::npos) host = a.substr(0, colon), port = a.substr(colon);
    if (host.empty() || !IsAlnum(host[0])) return false;
    if (!AllOf(host, [](char c) { return IsAlnum(c) || c == '.' || c == '-'; })) return false;
  }
  if (port.empty()) return true;
  return port.size() >= 2 && port.size() <= 6 && port[0] == ':' &&
         AllOf(port.substr(1), [](char c) { return c >= '0' && c <= '9'; });
}

// The query parameters a transport may carry ("" = local, no transport).
Status CheckQuery(std::string_view query, const std::string& transport) {
  const bool local = transport.empty() || transport == "unix";
  std::set<std::string> seen;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const size_t eq = item.find('=');
    const std::string key(item.substr(0, eq));
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    const bool path_value =
        key == "socket" || key == "keyfile" || key == "known_hosts" || key == "pkipath";
    const bool allowed =
        (key == "socket" && local) ||
        ((key == "keyfile" || key == "known_hosts" || key == "no_tty") && transport == "ssh") ||
        (key == "pkipath" && transport == "tls");
    if (key == "command") return Status::InvalidArgument("command= makes libvirt run a program");
    if (!allowed) {
      return Status::InvalidArgument("parameter '" + key +
                                     "' is not allowed here (socket: local; " +
                                     "keyfile, known_hosts, no_tty: ssh; pkipath: tls)");
    }
    if (!seen.insert(key).second) return Status::InvalidArgument("'" + key + "' given twice");
    if (path_value && (value.empty() || value[0] != '/')) {
      return Status::InvalidArgument(key + "= must be an absolute path");
    }
    if (key == "no_tty" && value != "0" && value != "1") {
      return Status::InvalidArgument("no_tty= must be 0 or 1");
    }
  }
  return Status::Ok();
}

// Everything after "qemu[+transport]://": authority, path, query.
Status CheckRest(std::string_view rest, const std::string& transport) {
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return Status::InvalidArgument("no path (/system)");
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = rest.substr(slash), query;
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  if (path != "/system" && path != "/session") {
    return Status::InvalidArgument("path '" + std::string(path) + "' is not /system or /session");
  }
  const bool local = transport.empty() || transport == "unix";
  if (local && !authority.empty()) {
    return Status::InvalidArgument("a local URI names no host, got '" + std::string(authority) +
                                   "' (use qemu+ssh or qemu+tls)");
  }
  if (!local && !IsAuthority(authority)) {
    return Status::InvalidArgument("qemu+" + transport +
                                   " needs a host ([user@]host[:port]), got '" +
                                   std::string(authority) + "'");
  }
  return CheckQuery(query, transport);
}

Status CheckParts(std::string_view uri) {
  for (char c : uri) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '%' || c == '#' || c == '\\' || c == '"' ||
        c == '\'' || c == '`' || c == '<' || c == '>') {
      return Status::InvalidArgument(
          "whitespace, control characters, '%', '#', quotes, '\\', "
          "'`', '<' and '>' are not allowed");
    }
  }
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return Status::InvalidArgument("not a libvirt URI");
  const std::string scheme(uri.substr(0, sep));
  const size_t plus = scheme.find('+');
  const std::string driver = scheme.substr(0, plus);
  const std::string transport = plus == std::string::npos ? "" : scheme.substr(plus + 1);
  if (driver != "qemu") return Status::InvalidArgument("driver '" + driver + "' is not qemu");
  if (transport == "ext") {
    return Status::InvalidArgument("the ext transport makes libvirt run a program");
  }
  if (!transport.empty() && transport != "unix" && transport != "ssh" && transport != "tls") {
    return Status::InvalidArgument("transport '" + transport + "' is not unix, ssh or tls");
  }
  return CheckRest(uri.substr(sep + 3), transport);
}

}  // namespace

Status CheckLibvirtUri(std::string_view uri) {
  Status s = CheckParts(uri);
  if (s.ok()) return s;
  std::string shown;
  for (char c : uri) shown += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  return Status::InvalidArgument("uri '" + shown + "': " + s.message() + "; " + kAllowed);
}

Status CheckInventoryUris(const Inventory& inventory) {
  for (const auto& hv : inventory.hypervisors) {
    Status ok = CheckLibvirtUri(hv.uri);
    if (!ok.ok()) return ok.WithContext("inventory " + inventory.path + ": hypervisor " + hv.name);
  }
  return Status::Ok();
}

}  // namespace chaoslab::libvirt
