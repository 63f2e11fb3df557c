#include "lab/backend/console_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace chaoslab {

const size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

Status CheckSocketPath(const std::string& path) {
  if (path.size() <= kMaxSocketPath) return Status::Ok();
  return Status::InvalidArgument("socket path " + path + " is longer than " +
                                 std::to_string(kMaxSocketPath) +
                                 " bytes: use a shorter runtime root, run id or host id");
}

Result<int> ConnectUnixSocket(const std::string& path) {
  RETURN_IF_ERROR(CheckSocketPath(path));
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket()", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    return Status::FromErrno("connect to " + path, err);
  }
  return fd;
}

Result<int> ConnectUnixSocketBy(const std::string& path, WallClock::time_point deadline) {
  Result<int> fd = Status::Timeout("connect to " + path + ": no time to try");
  while (WallClock::now() < deadline) {
    fd = ConnectUnixSocket(path);
    if (fd.ok() || fd.status().code() == ErrorCode::kInvalidArgument) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fd;
}

Status SendAll(int fd, std::string_view text, const std::string& what) {
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(what + ": " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace chaoslab
