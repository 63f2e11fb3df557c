#include "lab/content_server/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>

#include "lab/content_server/host_credential.h"

namespace chaoslab {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBufferCap = 64 * 1024;
// After the guest half-closes, how long the service may stay silent before the relay leaves
// (capped by the idle timeout).
constexpr std::chrono::milliseconds kHalfCloseLinger{5000};

Result<int64_t> ParseInt(std::string_view flag, std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return Status::InvalidArgument(std::string(flag) + ": expected an integer in " +
                                   std::to_string(min) + ".." + std::to_string(max) + ", got '" +
                                   std::string(text) + "'");
  }
  return value;
}

// Parsed loopback address ready for connect().
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

Result<Endpoint> ResolveLoopback(std::string_view host, int port) {
  RETURN_IF_ERROR(CheckLoopbackHost(host));
  Endpoint ep;
  std::string text = host == "localhost" ? "127.0.0.1" : std::string(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    ep.len = sizeof(sockaddr_in);
    ep.family = AF_INET;
  } else {
    inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    ep.len = sizeof(sockaddr_in6);
    ep.family = AF_INET6;
  }
  return ep;
}

// Reads what is available; returns bytes read, 0 at end of stream, -1 if nothing now (EAGAIN).
// Errors other than EAGAIN/EINTR count as end of stream: the peer is gone either way.
ssize_t ReadSome(int fd, char* data, size_t size) {
  for (;;) {
    ssize_t n = read(fd, data, size);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    return 0;
  }
}

// Writes without blocking when `fd` is a socket (MSG_DONTWAIT), with write() otherwise (pipes,
// only after poll said POLLOUT). Returns bytes written, -1 if nothing now, -2 if the peer is gone.
ssize_t WriteSome(int fd, const char* data, size_t size) {
  for (;;) {
    ssize_t n = send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd, data, size);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    return -2;
  }
}

// Tells the reader of `fd` that no more data comes: a socket is half-closed, anything else closed.
void EndOutput(int fd) {
  if (shutdown(fd, SHUT_WR) != 0 && errno == ENOTSOCK) close(fd);
}

// One direction of the copy: bytes from `src` held by `gate`, then written to `dst`.
struct Direction {
  int src = -1;
  int dst = -1;
  FirstByteDelay gate{std::chrono::milliseconds(0)};
  std::string buffer;
  bool src_done = false;

  bool Released(Clock::time_point now) const { return gate.Released(now); }
};

// Writes everything still buffered in `dir`, waiting up to `limit` for the reader.
void Drain(Direction& dir, Clock::time_point limit) {
  while (!dir.buffer.empty()) {
    auto now = Clock::now();
    if (now >= limit) return;
    if (!dir.Released(now)) {
      pollfd none{};
      poll(&none, 0,
           static_cast<int>(
               std::chrono::ceil<std::chrono::milliseconds>(dir.gate.release_at() - now).count()));
      continue;
    }
    pollfd p{dir.dst, POLLOUT, 0};
    int left = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(limit - now).count());
    if (poll(&p, 1, left) <= 0) continue;
    ssize_t n = WriteSome(dir.dst, dir.buffer.data(), dir.buffer.size());
    if (n == -2) return;
    if (n > 0) dir.buffer.erase(0, static_cast<size_t>(n));
  }
}

}  // namespace

std::string RelayUsage() {
  return "usage: chaoslab-relay --port N [--host 127.0.0.1] [--delay-ms D] [--jitter-ms J] "
         "[--loss-percent P] [--seed S] [--idle-timeout-ms T] [--credential-file F]\n"
         "Copies stdin to a loopback TCP service and its replies to stdout (QEMU guestfwd "
         "helper).\n";
}

Status CheckLoopbackHost(std::string_view host) {
  std::string text(host);
  in_addr v4{};
  in6_addr v6{};
  if (host == "localhost") return Status::Ok();
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) == 127) return Status::Ok();
  } else if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return Status::Ok();
  } else {
    return Status::InvalidArgument("--host '" + text +
                                   "': not an IP address; the relay resolves no names and "
                                   "only connects to loopback (127.0.0.0/8, ::1, localhost)");
  }
  return Status::InvalidArgument("--host '" + text +
                                 "': refusing a non-loopback address; lab guests may only reach "
                                 "the lab's loopback services (127.0.0.0/8, ::1)");
}

Result<RelayOptions> ParseRelayArgs(const std::vector<std::string>& args) {
  RelayOptions options;
  bool have_port = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    size_t eq = flag.find('=');
    if (flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (flag == "--port" || flag == "--host" || flag == "--delay-ms" ||
               flag == "--jitter-ms" || flag == "--seed" || flag == "--idle-timeout-ms" ||
               flag == "--loss-percent" || flag == "--credential-file") {
      if (i + 1 >= args.size()) return Status::InvalidArgument(flag + ": missing value");
      value = args[++i];
    }
    if (flag == "--port") {
      ASSIGN_OR_RETURN(int64_t port, ParseInt(flag, value, 1, 65535));
      options.port = static_cast<int>(port);
      have_port = true;
    } else if (flag == "--host") {
      options.host = value;
    } else if (flag == "--credential-file") {
      if (value.empty()) return Status::InvalidArgument("--credential-file: empty path");
      options.credential_file = value;
    } else if (flag == "--delay-ms") {
      ASSIGN_OR_RETURN(int64_t ms, ParseInt(flag, value, 0, 600000));
      options.delay_ms = static_cast<int>(ms);
    } else if (flag == "--jitter-ms") {
      ASSIGN_OR_RETURN(int64_t ms, ParseInt(flag, value, 0, 600000));
      options.jitter_ms = static_cast<int>(ms);
    } else if (flag == "--loss-percent") {
      ASSIGN_OR_RETURN(int64_t percent, ParseInt(flag, value, 0, 100));
      options.loss_percent = static_cast<int>(percent);
    } else if (flag == "--idle-timeout-ms") {
      ASSIGN_OR_RETURN(int64_t ms, ParseInt(flag, value, 1, 86400000));
      options.idle_timeout_ms = static_cast<int>(ms);
    } else if (flag == "--seed") {
      uint64_t seed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return Status::InvalidArgument("--seed: expected an unsigned integer, got '" + value + "'");
      }
      options.seed = seed;
    } else {
      return Status::InvalidArgument("unknown argument '" + args[i] + "'");
    }
  }
  if (!have_port) return Status::InvalidArgument("--port is required");
  RETURN_IF_ERROR(CheckLoopbackHost(options.host));
  return options;
}

std::pair<int, int> RelayDelays(const RelayOptions& options) {
  if (options.jitter_ms <= 0) return {options.delay_ms, options.delay_ms};
  std::mt19937_64 rng(options.seed ? *options.seed : std::random_device{}());
  std::uniform_int_distribution<int> pick(std::max(0, options.delay_ms - options.jitter_ms),
                                          options.delay_ms + options.jitter_ms);
  int up = pick(rng);
  int down = pick(rng);
  return {up, down};
}

bool RelayDropsConnection(const RelayOptions& options) {
  if (options.loss_percent <= 0) return false;
  if (options.loss_percent >= 100) return true;
  // A stream apart from the delays' (same seed, different constant) so loss and delay are
  // independent.
  std::mt19937_64 rng((options.seed ? *options.seed : std::random_device{}()) ^ 0x4C4F5353ULL);
  return std::uniform_int_distribution<int>(0, 99)(rng) < options.loss_percent;
}

namespace {

// A connected, non-blocking socket to the service, after the host's credential (if any) went
// first, before any byte of the guest's.
Result<int> ConnectToService(const RelayOptions& options, const std::string& where) {
  std::string identify;
  if (!options.credential_file.empty()) {
    ASSIGN_OR_RETURN(std::string credential, ReadCredentialFile(options.credential_file));
    identify = RelayIdentifyRequest(credential);
  }
  ASSIGN_OR_RETURN(Endpoint ep, ResolveLoopback(options.host, options.port));
  int sock = socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Status::FromErrno("socket", errno);
  auto fail = [&](Status s) {
    close(sock);
    return s;
  };
  if (connect(sock, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0)
    return fail(Status::Unavailable("connect " + where + ": " + std::strerror(errno)));
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (size_t sent = 0; sent < identify.size();) {  // still a blocking socket here
    ssize_t n = send(sock, identify.data() + sent, identify.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Status::FromErrno("relay: presenting the host credential", errno));
    sent += static_cast<size_t>(n);
  }
  fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
  return sock;
}

// Bytes both ways between the guest's stdio and the service until one side ends or nothing moves
// for the idle timeout; each direction's first byte held back by its delay.
class RelayPump {
 public:
  RelayPump(const RelayOptions& options, int in_fd, int out_fd, int sock, std::string where)
      : options_(options), out_fd_(out_fd), sock_(sock), where_(std::move(where)) {
    auto [up_ms, down_ms] = RelayDelays(options);
    up_ = Direction{in_fd, sock, FirstByteDelay(std::chrono::milliseconds(up_ms))};
    down_ = Direction{sock, out_fd, FirstByteDelay(std::chrono::milliseconds(down_ms))};
    idle_ = std::chrono::milliseconds(options.idle_timeout_ms);
    linger_ = std::min<std::chrono::milliseconds>(idle_, kHalfCloseLinger);
  }

  Status Run() {
    last_activity_ = Clock::now();
    for (;;) {
      const auto now = Clock::now();
      if (std::optional<Status> end = Ended(now)) return *end;
      pollfd fds[4];
      int nfds = 0;
      const Clock::time_point wake = Watch(now, fds, &nfds);
      int timeout_ms = static_cast<int>(
          std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(wake - now).count()));
      int ready = poll(fds, static_cast<nfds_t>(nfds), timeout_ms);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("relay: poll", errno);
      }
      if (ready > 0 && !Move(fds)) return Status::Ok();  // a direction's reader is gone: so are we
    }
  }

 private:
  // Whether the relay is done at `now`, and how.
  std::optional<Status> Ended(Clock::time_point now) {
    // The service closed: hand over what it said, then tell the guest and leave.
    if (down_.src_done) {
      Drain(down_, now + std::max(idle_, down_.gate.delay() + kHalfCloseLinger));
      EndOutput(out_fd_);
      return Status::Ok();
    }
    // The guest finished sending: pass the half-close on and wait (briefly) for the answer.
    if (up_.src_done && up_.buffer.empty() && !up_shut_) {
      shutdown(sock_, SHUT_WR);
      up_shut_ = true;
      up_shut_at_ = now;
    }
    if (up_shut_ && down_.buffer.empty() &&
        now - std::max(up_shut_at_, last_activity_) >= linger_) {
      EndOutput(out_fd_);
      return Status::Ok();
    }
    if (now - last_activity_ >= idle_) {
      return Status::Timeout("relay to " + where_ + ": nothing moved for " +
                             std::to_string(options_.idle_timeout_ms) + " ms");
    }
    return std::nullopt;
  }

  // The descriptors to poll (reads with room, writes whose delay has passed); returns when to wake
  // at the latest.
  Clock::time_point Watch(Clock::time_point now, pollfd* fds, int* nfds) {
    Clock::time_point wake = last_activity_ + idle_;
    if (up_shut_) wake = std::min(wake, std::max(up_shut_at_, last_activity_) + linger_);
    Direction* dirs[2] = {&up_, &down_};
    for (int d = 0; d < 2; ++d) {
      Direction& dir = *dirs[d];
      read_slot_[d] = write_slot_[d] = -1;
      if (!dir.src_done && dir.buffer.size() < kBufferCap) {
        read_slot_[d] = *nfds;
        fds[(*nfds)++] = {dir.src, POLLIN, 0};
      }
      if (dir.buffer.empty()) continue;
      if (dir.Released(now)) {
        write_slot_[d] = *nfds;
        fds[(*nfds)++] = {dir.dst, POLLOUT, 0};
      } else {
        wake = std::min(wake, dir.gate.release_at());
      }
    }
    return wake;
  }

  // Writes and reads what poll said is ready; false when a direction's reader has gone.
  bool Move(const pollfd* fds) {
    const auto now = Clock::now();
    Direction* dirs[2] = {&up_, &down_};
    for (int d = 0; d < 2; ++d) {
      Direction& dir = *dirs[d];
      if (write_slot_[d] >= 0 && (fds[write_slot_[d]].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t n = WriteSome(dir.dst, dir.buffer.data(), dir.buffer.size());
        if (n == -2) return false;
        if (n > 0) {
          dir.buffer.erase(0, static_cast<size_t>(n));
          last_activity_ = now;
        }
      }
      if (read_slot_[d] >= 0 && (fds[read_slot_[d]].revents & (POLLIN | POLLERR | POLLHUP))) {
        size_t room = std::min(sizeof(chunk_), kBufferCap - dir.buffer.size());
        ssize_t n = ReadSome(dir.src, chunk_, room);
        if (n == 0) {
          dir.src_done = true;
        } else if (n > 0) {
          dir.gate.OnBytes(now);
          dir.buffer.append(chunk_, static_cast<size_t>(n));
          last_activity_ = now;
        }
      }
    }
    return true;
  }

  const RelayOptions& options_;
  int out_fd_, sock_;
  std::string where_;
  Direction up_, down_;  // guest -> service, service -> guest
  std::chrono::milliseconds idle_{0}, linger_{0};
  Clock::time_point last_activity_, up_shut_at_;
  bool up_shut_ = false;
  int read_slot_[2] = {-1, -1}, write_slot_[2] = {-1, -1};
  char chunk_[16 * 1024];
};

}  // namespace

Status RunRelay(const RelayOptions& options, int in_fd, int out_fd) {
  const std::string where = options.host + ":" + std::to_string(options.port);
  // A lost connection: the guest sees it close without an answer (as a dropped link would).
  if (RelayDropsConnection(options))
    return Status::Unavailable("connection dropped (simulated loss)");
  ASSIGN_OR_RETURN(int sock, ConnectToService(options, where));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{sock};
  return RelayPump(options, in_fd, out_fd, sock, where).Run();
}

Result<std::string> ReadCredentialFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return Status::NotFound("credential file " + path + " does not exist");
  if (fd < 0) return Status::FromErrno("credential file " + path, errno);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::FromErrno("credential file " + path, errno);
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument("credential file " + path + " is not a file");
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition("credential file " + path +
                                      " may be read by others (it must be mode 0600)");
  }
  char buf[257];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0) return Status::FromErrno("credential file " + path, errno);
  std::string text(buf, static_cast<size_t>(n));
  const size_t begin = text.find_first_not_of(" \t\r\n");
  const size_t end = text.find_last_not_of(" \t\r\n");
  std::string credential = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
  if (credential.empty() || credential.size() > 128 ||
      credential.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Status::InvalidArgument("credential file " + path +
                                   " holds no credential (1-128 hex digits)");
  }
  return credential;
}

Result<std::vector<std::string>> RelayCommand(const std::string& relay_binary,
                                              const RelayOptions& options) {
  if (relay_binary.empty() || relay_binary.find_first_of(" \t\n,'\"\\") != std::string::npos) {
    return Status::InvalidArgument("relay binary path '" + relay_binary +
                                   "' is empty or holds a space, comma, quote or backslash, "
                                   "which QEMU's guestfwd cmd: cannot carry");
  }
  RETURN_IF_ERROR(CheckLoopbackHost(options.host));
  if (options.port < 1 || options.port > 65535) {
    return Status::InvalidArgument("relay port " + std::to_string(options.port) +
                                   " is out of range 1..65535");
  }
  std::vector<std::string> argv = {relay_binary,
                                   "--host",
                                   options.host,
                                   "--port",
                                   std::to_string(options.port),
                                   "--delay-ms",
                                   std::to_string(options.delay_ms),
                                   "--jitter-ms",
                                   std::to_string(options.jitter_ms),
                                   "--idle-timeout-ms",
                                   std::to_string(options.idle_timeout_ms)};
  if (options.loss_percent > 0) {
    argv.push_back("--loss-percent");
    argv.push_back(std::to_string(options.loss_percent));
  }
  if (options.seed) {
    argv.push_back("--seed");
    argv.push_back(std::to_string(*options.seed));
  }
  if (!options.credential_file.empty()) {
    argv.push_back("--credential-file");
    argv.push_back(options.credential_file);
  }
  return argv;
}

}  // namespace chaoslab
