#include "lab/backend/vm_host_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace chaoslab {
namespace {

namespace fs = std::filesystem;

class VmHostSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chaoslab-spec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* name : {"vmlinuz", "initrd", "base.img", "extra.img"}) {
      std::ofstream(dir_ + "/" + name) << "x";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  HostSpec Good() const {
    HostSpec spec;
    spec.id = "ws711-01";
    spec.kernel = dir_ + "/vmlinuz";
    spec.initrd = dir_ + "/initrd";
    spec.base_disk = dir_ + "/base.img";
    spec.network.online = false;
    return spec;
  }
  // The message of the refusal, or "" when the spec passes.
  static std::string Problem(const HostSpec& spec, const VmSpecRules& rules = {}) {
    Status s = CheckVmHostSpec(spec, rules);
    return s.ok() ? "" : s.message();
  }

  std::string dir_;
};

TEST(HostIdTest, FollowsTheIdentifierRule) {
  EXPECT_TRUE(CheckHostId("ws711-01").ok());
  EXPECT_TRUE(CheckHostId("rescue_2").ok());
  for (const char* bad : {"", "a/b", "..", ".", "-x", "a,b", "a b", "a.b", "x=1"}) {
    Status s = CheckHostId(bad);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("host name"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(CheckHostId(std::string(65, 'a')).ok());
}

TEST_F(VmHostSpecTest, AGoodSpecPasses) { EXPECT_EQ(Problem(Good()), ""); }

TEST_F(VmHostSpecTest, RefusesWhatBothBackendsRefusedWithClearMessages) {
  struct Case {
    std::function<void(HostSpec*)> spoil;
    std::string words;
  };
  const Case cases[] = {
      {[](HostSpec* s) { s->id = "../x"; }, "host name '../x'"},
      {[](HostSpec* s) { s->kernel = "/no/such/vmlinuz"; },
       "kernel '/no/such/vmlinuz' is not a file"},
      {[](HostSpec* s) { s->initrd = ""; }, "initrd '' is not a file"},
      {[](HostSpec* s) { s->base_disk = "/no/such.img"; },
       "base disk '/no/such.img' is not a file"},
      {[](HostSpec* s) { s->memory_mib = 16; }, "memory_mib 16 is outside 32..65536"},
      {[](HostSpec* s) { s->memory_mib = 70000; }, "memory_mib 70000 is outside 32..65536"},
      {[](HostSpec* s) { s->kernel_args = {"a b"}; }, "kernel argument 'a b' is empty or contains"},
      {[](HostSpec* s) { s->kernel_args = {""}; }, "kernel argument '' is empty"},
      {[](HostSpec* s) { s->kernel_args = {"x\n"}; }, "control characters"},
      {[](HostSpec* s) { s->extra_disks.resize(9); }, "at most 8 extra disks"},
      {[](HostSpec* s) {
         s->extra_disks = {{"/no/disk", "raw"}};
       },
       "extra disk '/no/disk' is not a file"},
      {[](HostSpec* s) { s->tpm_secret = "xyz"; }, "tpm_secret must be at most 128 hex digits"},
      {[](HostSpec* s) { s->tpm_secret = std::string(129, 'a'); }, "at most 128 hex digits"},
  };
  for (const Case& c : cases) {
    HostSpec spec = Good();
    c.spoil(&spec);
    const std::string problem = Problem(spec);
    EXPECT_NE(problem.find(c.words), std::string::npos)
        << "wanted: " << c.words << "\ngot: " << problem;
  }
  HostSpec vmdk = Good();
  vmdk.extra_disks = {{dir_ + "/extra.img", "vmdk"}};
  EXPECT_NE(Problem(vmdk).find("has format 'vmdk' (raw or qcow2)"), std::string::npos);
  vmdk.extra_disks[0].format = "qcow2";
  EXPECT_EQ(Problem(vmdk), "");
}

TEST_F(VmHostSpecTest, MissingFilesAreNotFoundOtherProblemsInvalidArgument) {
  HostSpec spec = Good();
  spec.kernel = "/no/such";
  EXPECT_EQ(CheckVmHostSpec(spec, {}).code(), ErrorCode::kNotFound);
  spec = Good();
  spec.memory_mib = 1;
  EXPECT_EQ(CheckVmHostSpec(spec, {}).code(), ErrorCode::kInvalidArgument);
}

TEST_F(VmHostSpecTest, UefiGuestsNeedNoKernelOrInitrd) {
  HostSpec spec = Good();
  spec.kernel.clear();
  spec.initrd.clear();
  EXPECT_NE(Problem(spec), "");
  VmSpecRules uefi;
  uefi.boots_kernel = false;
  EXPECT_EQ(Problem(spec, uefi), "");
  spec.base_disk = "/no/such.qcow2";
  EXPECT_NE(Problem(spec, uefi).find("base disk"), std::string::npos);
}

TEST_F(VmHostSpecTest, AnOnlineHostNeedsTheRelayAndAGoodLink) {
  HostSpec spec = Good();
  spec.network.online = true;
  spec.network.content_port = 8080;
  VmSpecRules rules;
  rules.relay_option = "QemuOptions.relay";
  Status s = CheckVmHostSpec(spec, rules);
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "host 'ws711-01' is online but the backend has no content relay (QemuOptions.relay)");
  rules.relay = "/usr/bin/chaoslab-relay";
  EXPECT_EQ(Problem(spec, rules), "");
  spec.network.content_port = 0;
  EXPECT_NE(Problem(spec, rules).find("host 'ws711-01': content_port 0"), std::string::npos);
  spec.network.content_port = 8080;
  spec.network.delay_ms = -1;
  EXPECT_NE(Problem(spec, rules).find("must not be negative"), std::string::npos);
  spec.network.delay_ms = 0;
  rules.relay = "/bin/relay --evil";
  EXPECT_NE(Problem(spec, rules).find("relay path"), std::string::npos);
}

TEST(WithAbsolutePathsTest, MakesSetPathsAbsoluteAndLeavesEmptyOnesEmpty) {
  HostSpec spec;
  spec.base_disk = "disks/base.img";
  spec.extra_disks = {{"other.qcow2", "qcow2"}};
  HostSpec out = WithAbsolutePaths(spec);
  EXPECT_EQ(out.base_disk, (fs::current_path() / "disks/base.img").string());
  EXPECT_EQ(out.extra_disks[0].path, (fs::current_path() / "other.qcow2").string());
  EXPECT_EQ(out.kernel, "");
  EXPECT_EQ(out.initrd, "");
}

}  // namespace
}  // namespace chaoslab
