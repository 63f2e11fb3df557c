#include "lab/common/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <sstream>

namespace chaoslab {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(SubprocessTest, ArgumentsAreNotParsedByAShell) {
  auto r = RunProcess({"echo", "a; rm -rf /nonexistent", "$HOME"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "a; rm -rf /nonexistent $HOME\n");
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  auto r = RunProcess({"/nonexistent/program"});
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST(SubprocessTest, TimeoutKillsTheChild) {
  auto r = RunProcess({"sleep", "30"}, std::chrono::seconds(1));
  EXPECT_EQ(r.status().code(), ErrorCode::kTimeout);
}

// The lab's own descriptors (a listening socket as the dashboard and content server have, a file
// opened without O_CLOEXEC) stay with the lab (issue 15). Before: the child got both.
TEST(SubprocessTest, ChildInheritsNoDescriptorBeyondStdio) {
  int file = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(file, 3);
  int listener = socket(AF_INET, SOCK_STREAM, 0);  // as Boost.Asio opens it: no SOCK_CLOEXEC
  ASSERT_GE(listener, 3);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  // The shell lists its own descriptors with builtins only (the glob's directory is closed again
  // before the loop runs).
  auto r = RunProcess({"sh", "-c", "for f in /proc/$$/fd/*; do echo ${f##*/}; done"});
  close(file);
  close(listener);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<int> fds;
  std::istringstream lines(r->out);
  for (int fd; lines >> fd;) fds.insert(fd);
  EXPECT_FALSE(fds.empty()) << r->out;
  for (int fd : fds)
    EXPECT_LE(fd, 2) << "the child inherited descriptor " << fd << "; all: " << r->out;
}

}  // namespace
}  // namespace chaoslab
