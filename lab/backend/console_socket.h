// The unix sockets both VM backends talk to a guest's QEMU through (its serial consoles; QEMU
// binds them, the lab connects), and typing into them.
//
// Thread-safety: plain functions; writers to one socket serialise themselves.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lab/backend/backend.h"
#include "lab/common/status.h"

namespace chaoslab {

// The longest path a unix socket can have (sockaddr_un::sun_path less its NUL): 107 on Linux.
extern const size_t kMaxSocketPath;

// Ok, or InvalidArgument "socket path <path> is longer than 107 bytes: use a shorter runtime root,
// run id or host id".
Status CheckSocketPath(const std::string& path);

// One connect to `path`: the descriptor (close-on-exec; the caller closes it), or the errno as
// "connect to <path>: ...".
Result<int> ConnectUnixSocket(const std::string& path);

// Connects to `path`, retrying every 20 ms until `deadline` (QEMU creates the socket as it
// starts): the descriptor, or the last attempt's error.
Result<int> ConnectUnixSocketBy(const std::string& path, WallClock::time_point deadline);

// Writes all of `text` to the socket `fd` (no SIGPIPE). Unavailable "<what>: <errno text>" if the
// other side is gone.
Status SendAll(int fd, std::string_view text, const std::string& what);

}  // namespace chaoslab
