// The Windows platform layer (platform_win32.cc), run under Wine: files, directory listing, the
// durable write, the guard page, the clock and a refused TCP connection. The critical-process
// flag is not set here (on real Windows with administrator rights it would make any failure of
// this test a bugcheck); csagent_wine_test.sh exercises it under Wine, where it is refused.
#include <gtest/gtest.h>
#include <windows.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "agents/sensor/channel_file.h"
#include "agents/sensor/platform.h"

namespace chaoslab::content::platform {
namespace {

// A new, empty folder under %TEMP%, with '/' separators as the sensor writes its paths. Unique
// also when the prefix keeps the folders of an earlier run (Wine reuses small process ids).
std::string NewDir(const std::string& name) {
  char temp[MAX_PATH] = {};
  GetTempPathA(sizeof temp, temp);
  for (unsigned n = 0; n < 10000; ++n) {
    std::string dir = std::string(temp) + "chaoslab-" + name + "-" +
                      std::to_string(GetCurrentProcessId()) + "-" + std::to_string(n);
    std::replace(dir.begin(), dir.end(), '\\', '/');
    if (CreateDirectoryA(dir.c_str(), nullptr)) return dir;
  }
  std::abort();  // %TEMP% is unusable: nothing below can be tested
}

TEST(Win32PlatformTest, WritesDurablyCreatingFoldersAndReadsBack) {
  const std::string dir = NewDir("write") + "/Windows/System32/drivers/CrowdStrike";
  const std::string name = ChannelFileName(7);
  const std::string bytes = MakeChannelFile(ChannelFileKind::kChannel291, 7);
  ASSERT_TRUE(WriteFileDurably(dir, name, bytes).ok());
  EXPECT_TRUE(IsDirectory(dir));
  EXPECT_FALSE(IsDirectory(dir + "/" + name));
  auto back = ReadWholeFile(dir + "/" + name);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, bytes);  // binary: no CR/LF translation
  // A second write replaces the file; the temporary file is gone.
  ASSERT_TRUE(WriteFileDurably(dir, name, "x").ok());
  EXPECT_EQ(ReadWholeFile(dir + "/" + name).value(), "x");
  EXPECT_EQ(ListDirectory(dir), std::vector<std::string>{name});
  RemoveFile(dir + "/" + name);
  EXPECT_TRUE(ListDirectory(dir).empty());
}

// The cloud's quarantine renames a cached file aside (agent.cc): replacing an older one, and
// NotFound when there is nothing to move.
TEST(Win32PlatformTest, RenameMovesAFileAsideAndSaysNotFoundForNothing) {
  const std::string dir = NewDir("rename");
  const std::string from = dir + "/" + ChannelFileName(2), to = from + ".quarantined";
  ASSERT_TRUE(WriteFileDurably(dir, ChannelFileName(2), "bad").ok());
  ASSERT_TRUE(WriteFileDurably(dir, ChannelFileName(2) + ".quarantined", "older").ok());
  ASSERT_TRUE(RenameFile(from, to).ok());
  EXPECT_EQ(ReadWholeFile(to).value(), "bad");
  EXPECT_EQ(ListDirectory(dir), std::vector<std::string>{ChannelFileName(2) + ".quarantined"});
  EXPECT_EQ(RenameFile(from, to).code(), ErrorCode::kNotFound);
}

TEST(Win32PlatformTest, MissingFilesAreIoErrorsThatNameThePath) {
  const std::string dir = NewDir("missing");
  auto missing = ReadWholeFile(dir + "/nothing.sys");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kIoError);
  EXPECT_NE(missing.status().message().find("nothing.sys"), std::string::npos);
  EXPECT_TRUE(ListDirectory(dir + "/absent").empty());
  EXPECT_TRUE(ListDirectory(dir).empty());
}

TEST(Win32PlatformTest, TouchCreatesAnEmptyFile) {
  const std::string dir = NewDir("touch");
  ASSERT_TRUE(TouchFile(dir + "/csagent.ready").ok());
  EXPECT_EQ(ReadWholeFile(dir + "/csagent.ready").value(), "");
  EXPECT_FALSE(TouchFile(dir + "/no/such/folder/ready").ok());
}

TEST(Win32PlatformTest, GuardPageFollowsTheWritablePage) {
  auto page = MapGuardedPage();
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->page_size, PageSize());
  EXPECT_EQ(page->guard, static_cast<char*>(page->mapping) + PageSize());
  MEMORY_BASIC_INFORMATION info{};
  ASSERT_NE(VirtualQuery(page->guard, &info, sizeof info), 0u);
  EXPECT_EQ(info.Protect, static_cast<DWORD>(PAGE_NOACCESS));
  page->guard[-1] = 'x';  // the last byte before the guard is writable
  UnmapGuardedPage(*page);
}

TEST(Win32PlatformTest, UptimeIsSecondsSinceBoot) {
  const std::string field = UptimeField();
  ASSERT_TRUE(field.starts_with(" uptime=")) << field;
  EXPECT_EQ(field.find_first_not_of("0123456789.", 8), std::string::npos) << field;
}

TEST(Win32PlatformTest, RefusedConnectionIsUnavailable) {
  // Port 1 on the loopback: nothing listens there, so the connect is refused at once.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto answer = TcpExchange("127.0.0.1", 1, "GET / HTTP/1.0\r\n\r\n", deadline, "test", 1024);
  ASSERT_FALSE(answer.ok());
  EXPECT_TRUE(answer.status().code() == ErrorCode::kUnavailable ||
              answer.status().code() == ErrorCode::kTimeout)
      << answer.status().ToString();
  EXPECT_EQ(TcpExchange("not-an-ip", 80, "", deadline, "test", 1024).status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace chaoslab::content::platform
