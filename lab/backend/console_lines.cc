#include "lab/backend/console_lines.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace chaoslab {
namespace {

void Deliver(std::string line, const LineSink& emit) {
  line.erase(std::remove(line.begin(), line.end(), '\r'), line.end());
  emit(std::move(line));
}

}  // namespace

void ConsoleLineSplitter::Feed(std::string_view bytes, const LineSink& emit) {
  pending_.append(bytes);
  size_t start = 0, nl;
  while ((nl = pending_.find('\n', start)) != std::string::npos) {
    Deliver(pending_.substr(start, nl - start), emit);
    start = nl + 1;
  }
  pending_.erase(0, start);
  if (pending_.size() > kMaxConsoleLine) {
    Deliver(std::move(pending_), emit);
    pending_.clear();
  }
}

void ConsoleLineSplitter::Flush(const LineSink& emit) {
  if (!pending_.empty()) Deliver(std::move(pending_), emit);
  pending_.clear();
}

void ReadConsoleChunks(int fd, const std::function<void(std::string_view)>& on_bytes) {
  char chunk[4096];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    on_bytes(std::string_view(chunk, static_cast<size_t>(n)));
  }
}

void ReadConsoleLines(int fd, const LineSink& emit) {
  ConsoleLineSplitter lines;
  ReadConsoleChunks(fd, [&](std::string_view bytes) { lines.Feed(bytes, emit); });
  lines.Flush(emit);
}

}  // namespace chaoslab
