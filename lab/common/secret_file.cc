#include "lab/common/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace chaoslab {

Status WriteSecretFile(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create secret file " + path, errno);
  // The umask can only take bits away; fchmod makes 0600 exact whatever it is.
  Status status = fchmod(fd, 0600) == 0 ? Status::Ok() : Status::FromErrno("chmod " + path, errno);
  size_t off = 0;
  while (status.ok() && off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = Status::FromErrno("write secret file " + path, errno);
    if (n > 0) off += static_cast<size_t>(n);
  }
  if (close(fd) != 0 && status.ok()) status = Status::FromErrno("close " + path, errno);
  if (!status.ok()) unlink(path.c_str());
  return status;
}

}  // namespace chaoslab
