// The boot manager's decisions must match images/winsim/init: the words it accepts, the BCD boot
// mode it reads and the sensor's arguments. (The boot itself runs as PID 1 in the VM tests.)
#include "agents/sensor/boot_manager.h"

#include <gtest/gtest.h>

namespace chaoslab::content {
namespace {

TEST(BootWordsTest, DefaultsWithoutWinsimWords) {
  auto w = ParseBootWords("console=ttyS0 quiet panic=-1\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->host, "unknown");
  EXPECT_EQ(w->cloud, "");
  EXPECT_EQ(w->poll_ms, "500");
  EXPECT_EQ(w->ipc_ms, "200");
  EXPECT_EQ(w->boot, "normal");
  EXPECT_EQ(w->tpm, "");
}

TEST(BootWordsTest, ReadsEveryWordAndTheLastRepeatWins) {
  auto w = ParseBootWords(
      "quiet winsim.host=ws-1 winsim.cloud=10.0.2.100:80 winsim.poll_ms=250 winsim.ipc_ms=450 "
      "winsim.tpm=00C0ffee winsim.boot=usb winsim.boot=normal "
      "winsim.link=20000:5000:0:0:300:900\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->host, "ws-1");
  EXPECT_EQ(w->cloud, "10.0.2.100:80");
  EXPECT_EQ(w->poll_ms, "250");
  EXPECT_EQ(w->ipc_ms, "450");
  EXPECT_EQ(w->tpm, "00C0ffee");
  EXPECT_EQ(w->boot, "normal");
  EXPECT_EQ(w->link, "20000:5000:0:0:300:900");
  EXPECT_EQ(ParseBootWords("winsim.boot=rescue")->boot, "rescue");
}

// Whatever the script would complain about goes to the script, which prints the complaint.
TEST(BootWordsTest, WordsTheScriptRejectsAreErrors) {
  for (const char* bad :
       {"winsim.host=", "winsim.host=a.b", "winsim.poll_ms=", "winsim.poll_ms=1x",
        "winsim.ipc_ms=-5", "winsim.cloud=example.com:80", "winsim.tpm=xyz", "winsim.boot=floppy",
        "winsim.boot=", "winsim.link=1:2:3", "winsim.link=5:9:0:0:0:0"}) {
    EXPECT_FALSE(ParseBootWords(std::string("quiet ") + bad).ok()) << bad;
  }
  // Not winsim words, or not key=value: ignored.
  EXPECT_TRUE(ParseBootWords("winsim winsim.unknown=1 xwinsim.host=a.b host=a.b").ok());
}

TEST(BcdTest, LastBootmodeLineWithCarriageReturnsAndSpacesRemoved) {
  EXPECT_EQ(BcdBootMode("bootmode=normal\n", "x"), "normal");
  EXPECT_EQ(BcdBootMode("bootmode= safe \r\n", "normal"), "safe");
  EXPECT_EQ(BcdBootMode("bootmode=safe\r\nother=1\nbootmode=winre\r\n", "normal"), "winre");
  EXPECT_EQ(BcdBootMode("bootmode=floppy\n", "normal"), "floppy");
  EXPECT_EQ(BcdBootMode("", "normal"), "normal");
  EXPECT_EQ(BcdBootMode("mode=safe\n bootmode=safe\n", "normal"), "normal");
  // The script's `while read` never sees an unterminated last line.
  EXPECT_EQ(BcdBootMode("bootmode=safe", "normal"), "normal");
}

TEST(SensorArgsTest, AsTheScriptPassesThem) {
  BootWords w;
  w.host = "ws-1";
  w.poll_ms = "250";
  w.ipc_ms = "450";
  EXPECT_EQ(SensorArgs(w, "/mnt/c"),
            (std::vector<std::string>{"--root", "/mnt/c", "--host", "ws-1", "--poll-ms", "250",
                                      "--ipc-ms", "450"}));
  w.cloud = "10.0.2.100:80";
  EXPECT_EQ(SensorArgs(w, "/mnt/c").back(), "10.0.2.100:80");
  EXPECT_EQ(SensorArgs(w, "/mnt/c").size(), 10u);
  EXPECT_TRUE(ParseAgentArgs(SensorArgs(w, "/mnt/c")).ok());  // csagent accepts them
}

}  // namespace
}  // namespace chaoslab::content
