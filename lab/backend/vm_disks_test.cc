#include "lab/backend/vm_disks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

class VmDisksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaoslab-disks-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST_F(VmDisksTest, FormatComesFromTheQcow2Magic) {
  EXPECT_EQ(*DiskImageFormat(Write("a.qcow2", std::string("QFI\xfb", 4) + "rest")), "qcow2");
  EXPECT_EQ(*DiskImageFormat(Write("b.img", "FAT12 and more")), "raw");
  EXPECT_EQ(*DiskImageFormat(Write("short", "QF")), "raw");
  EXPECT_EQ(DiskImageFormat(dir_ + "/missing").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(DiskImageFormat(dir_).status().code(), ErrorCode::kNotFound);  // a folder
}

TEST_F(VmDisksTest, UsbNeedsMediaAndOnlyUsbTakesIt) {
  const std::string media = Write("stick.img", "raw bytes");
  auto usb = ChooseBoot("ws-01", BootTarget::kUsb, media);
  ASSERT_TRUE(usb.ok()) << usb.status().ToString();
  EXPECT_EQ(usb->target, BootTarget::kUsb);
  EXPECT_EQ(usb->media, (DiskImage{media, "raw", true}));

  Status none = ChooseBoot("ws-01", BootTarget::kUsb, "").status();
  EXPECT_EQ(none.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(none.message(), "set boot of host ws-01 to usb: usb needs a media image");
  Status missing = ChooseBoot("ws-01", BootTarget::kUsb, dir_ + "/no-such.img").status();
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.message().find("no-such.img"), std::string::npos) << missing.ToString();
  Status extra = ChooseBoot("ws-01", BootTarget::kSafeMode, media).status();
  EXPECT_EQ(extra.message(), "set boot of host ws-01 to safe: only usb takes a media image");

  auto safe = ChooseBoot("ws-01", BootTarget::kSafeMode, "");
  ASSERT_TRUE(safe.ok());
  EXPECT_EQ(*safe, (BootChoice{BootTarget::kSafeMode, {}}));
}

TEST(QemuImgArgsTest, OverlayAndSnapshots) {
  EXPECT_EQ(OverlayCreateArgs("/b.img", "raw", "/h/overlay.qcow2"),
            (std::vector<std::string>{"create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/b.img",
                                      "/h/overlay.qcow2"}));
  EXPECT_EQ(SnapshotTakeArgs("/o"),
            (std::vector<std::string>{"snapshot", "-c", "pre-update", "/o"}));
  EXPECT_EQ(SnapshotApplyArgs("/o"),
            (std::vector<std::string>{"snapshot", "-a", "pre-update", "/o"}));
}

TEST(DiskLockTest, QemuImgsLockRefusalIsAPrecondition) {
  const std::string locked =
      "qemu-img: Could not open '/h/overlay.qcow2': Failed to get \"write\" lock\n"
      "Is another process using the image [/h/overlay.qcow2]?";
  EXPECT_TRUE(IsDiskLockConflict(locked));
  EXPECT_FALSE(IsDiskLockConflict("qemu-img: No space left on device"));
  Status s = DiskInUse("revert disk of host h", locked);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("revert disk of host h: the disk is in use by another machine"),
            std::string::npos);
}

}  // namespace
}  // namespace chaoslab
