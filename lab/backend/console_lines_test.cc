#include "lab/backend/console_lines.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

namespace chaoslab {
namespace {

// Writes `bytes` into a pipe from another thread and returns what ReadConsoleLines delivered.
std::vector<std::string> Lines(const std::string& bytes) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    // Small pieces, so lines arrive split across reads.
    for (size_t at = 0; at < bytes.size(); at += 7) {
      size_t n = std::min<size_t>(7, bytes.size() - at);
      EXPECT_EQ(write(fds[1], bytes.data() + at, n), static_cast<ssize_t>(n));
    }
    close(fds[1]);
  });
  std::vector<std::string> lines;
  ReadConsoleLines(fds[0], [&](std::string line) { lines.push_back(std::move(line)); });
  writer.join();
  close(fds[0]);
  return lines;
}

TEST(ReadConsoleLines, SplitsDropsCarriageReturnsAndKeepsTheLastPartialLine) {
  EXPECT_EQ(Lines("@@winsim ready\r\nsecond\n\nlast without newline"),
            (std::vector<std::string>{"@@winsim ready", "second", "", "last without newline"}));
  EXPECT_TRUE(Lines("").empty());
}

TEST(ReadConsoleLines, AnEndlessLineComesInBoundedPieces) {
  std::vector<std::string> lines = Lines(std::string(3 * kMaxConsoleLine, 'x') + "\n");
  ASSERT_GE(lines.size(), 3u);
  size_t total = 0;
  for (const auto& l : lines) {
    EXPECT_LE(l.size(), kMaxConsoleLine + 4096);
    total += l.size();
  }
  EXPECT_EQ(total, 3 * kMaxConsoleLine);
}

}  // namespace
}  // namespace chaoslab
