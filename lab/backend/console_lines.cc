#include "lab/backend/console_lines.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace chaoslab {

void ReadConsoleLines(int fd, const std::function<void(std::string)>& emit) {
  auto deliver = [&](std::string line) {
    line.erase(std::remove(line.begin(), line.end(), '\r'), line.end());
    emit(std::move(line));
  };
  std::string pending;
  char chunk[4096];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(chunk, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      deliver(pending.substr(start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
    if (pending.size() > kMaxConsoleLine) {
      deliver(pending);
      pending.clear();
    }
  }
  if (!pending.empty()) deliver(pending);
}

}  // namespace chaoslab
