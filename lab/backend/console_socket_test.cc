#include "lab/backend/console_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

TEST(ConsoleSocketTest, PathsOver107BytesAreRefused) {
  EXPECT_EQ(kMaxSocketPath, 107u);
  EXPECT_TRUE(CheckSocketPath(std::string(107, 'a')).ok());
  Status s = CheckSocketPath("/" + std::string(107, 'a'));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("longer than 107 bytes"), std::string::npos) << s.message();
  EXPECT_EQ(ConnectUnixSocket("/" + std::string(200, 'a')).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(ConsoleSocketTest, ConnectsSendsAndSaysWhyNot) {
  char tmpl[] = "/tmp/chaoslab-sock-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/console.sock";
  Result<int> refused = ConnectUnixSocket(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("connect to " + path), std::string::npos);
  EXPECT_FALSE(ConnectUnixSocketBy(path, WallClock::now() + std::chrono::milliseconds(60)).ok());

  const int server = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 1), 0);
  Result<int> fd = ConnectUnixSocketBy(path, WallClock::now() + std::chrono::seconds(2));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  const int peer = accept(server, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  ASSERT_TRUE(SendAll(*fd, "dir C:\\\r", "console of host h").ok());
  char buf[16] = {};
  EXPECT_EQ(read(peer, buf, sizeof(buf)), 8);
  EXPECT_EQ(std::string(buf), "dir C:\\\r");
  close(peer);
  Status gone;
  for (int i = 0; i < 100 && gone.ok(); ++i) gone = SendAll(*fd, "x", "console of host h");
  EXPECT_EQ(gone.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(gone.message().rfind("console of host h: ", 0), 0u) << gone.message();
  close(*fd);
  close(server);
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace chaoslab
