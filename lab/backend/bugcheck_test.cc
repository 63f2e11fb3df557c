#include "lab/backend/bugcheck.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "lab/backend/host_event_inbox.h"

namespace chaoslab {
namespace {

// A QMP GUEST_PANICKED event as QEMU 7.2 sends it for a Windows guest with hv-crash (libvirt's
// <panic model='hyperv'/>): PAGE_FAULT_IN_NONPAGED_AREA reading an invalid kernel address, as
// csagent.sys did in July 2024 (parameters: address, read, faulting IP, reserved).
constexpr char kPageFaultEvent[] = R"({"timestamp": {"seconds": 1721362140, "microseconds": 512034},
  "event": "GUEST_PANICKED",
  "data": {"action": "pause", "info": {"type": "hyper-v", "arg1": 80,
           "arg2": 18446708889337462784, "arg3": 0, "arg4": 18446735277616529472, "arg5": 2}}})";

TEST(StopCodeName, KnowsThe2024StopCodes) {
  // FACTS.md: PAGE_FAULT_IN_NONPAGED_AREA (most), SYSTEM_THREAD_EXCEPTION_NOT_HANDLED,
  // CRITICAL_PROCESS_DIED.
  EXPECT_EQ(StopCodeName(0x50), "PAGE_FAULT_IN_NONPAGED_AREA");
  EXPECT_EQ(StopCodeName(0x7E), "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED");
  EXPECT_EQ(StopCodeName(0x1000007E), "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M");
  EXPECT_EQ(StopCodeName(0xEF), "CRITICAL_PROCESS_DIED");
  EXPECT_EQ(StopCodeName(0x1E), "KMODE_EXCEPTION_NOT_HANDLED");
  EXPECT_EQ(StopCodeName(0x7B), "INACCESSIBLE_BOOT_DEVICE");
  EXPECT_EQ(StopCodeName(0x12345), "");
}

TEST(DecodeGuestPanicked, WholeQmpEventWithHyperVArguments) {
  std::optional<Bugcheck> b = DecodeGuestPanicked(kPageFaultEvent);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->code, 0x50u);
  EXPECT_EQ(b->name, "PAGE_FAULT_IN_NONPAGED_AREA");
  EXPECT_EQ(b->params[0], 0xFFFFE00000000000ull);  // beyond 2^63: read as unsigned, not clipped
  EXPECT_EQ(b->params[1], 0u);
  EXPECT_EQ(b->params[2], 0xFFFFF80000000040ull);
  EXPECT_EQ(b->params[3], 2u);
  EXPECT_EQ(BugcheckSignalLine(*b),
            "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA p1=0xFFFFE00000000000 "
            "p2=0x0 p3=0xFFFFF80000000040 p4=0x2 via=hyperv");
}

TEST(DecodeGuestPanicked, DataObjectAsTheBackendsPassIt) {
  // CRITICAL_PROCESS_DIED: what csagent.exe as a critical process gives when it dies.
  std::optional<Bugcheck> b = DecodeGuestPanicked(
      R"({"action":"run","info":{"type":"hyper-v","arg1":239,"arg2":18446625876209565824,)"
      R"("arg3":0,"arg4":0,"arg5":0}})");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "CRITICAL_PROCESS_DIED");
  EXPECT_EQ(b->params[0], 0xFFFF948000000080ull);
  // An unknown code still gets a name the journal can hold.
  b = DecodeGuestPanicked(
      R"({"info":{"type":"hyper-v","arg1":4660,"arg2":1,"arg3":2,"arg4":3,"arg5":4}})");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "BUGCHECK_0x00001234");
}

TEST(DecodeGuestPanicked, NothingForOtherPanics) {
  EXPECT_FALSE(DecodeGuestPanicked(R"({"action":"run"})"));  // pvpanic from winsim
  EXPECT_FALSE(DecodeGuestPanicked(
      R"({"action":"pause","info":{"type":"s390","core":0,"psw-mask":0,"psw-addr":0,)"
      R"("reason":"disabled-wait"}})"));
  EXPECT_FALSE(DecodeGuestPanicked(R"({"info":{"type":"hyper-v","arg1":80}})"));  // truncated
  EXPECT_FALSE(DecodeGuestPanicked("not json"));
  EXPECT_FALSE(DecodeGuestPanicked(""));
}

TEST(DecodeLibvirtPanicLog, TheDomainLogLine) {
  std::optional<Bugcheck> b = DecodeLibvirtPanicLog(
      "2024-07-19 04:09:33.512+0000: panic hyper-v: arg1='0x7e', arg2='0xffffffffc0000005', "
      "arg3='0xfffff80612341234', arg4='0xffffc30c5ab16918', arg5='0xffffc30c5ab16150'");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED");
  EXPECT_EQ(b->params[0], 0xFFFFFFFFC0000005ull);  // STATUS_ACCESS_VIOLATION, sign-extended
  EXPECT_EQ(b->params[3], 0xFFFFC30C5AB16150ull);
  EXPECT_FALSE(DecodeLibvirtPanicLog("panic s390: core='0'"));
}

// The inbox puts the stop code in front of the panic, as a winsim guest's console would.
TEST(HostEventInbox, HyperVPanicIsPrecededByItsBugcheckLine) {
  HostEventInbox inbox;
  inbox.Push("ws-01", HostEventKind::kPanicked, R"({"action":"run"})");
  inbox.Push("win-01", HostEventKind::kPanicked, kPageFaultEvent);
  std::vector<HostEvent> out;
  inbox.PopAll(std::chrono::milliseconds(0), &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].host_id, "ws-01");
  EXPECT_EQ(out[0].kind, HostEventKind::kPanicked);
  EXPECT_EQ(out[1].host_id, "win-01");
  EXPECT_EQ(out[1].kind, HostEventKind::kConsoleLine);
  EXPECT_EQ(out[1].detail.rfind("@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA", 0),
            0u);
  EXPECT_EQ(out[2].kind, HostEventKind::kPanicked);
  EXPECT_EQ(out[2].detail, kPageFaultEvent);  // the raw event is kept for whoever wants it
}

}  // namespace
}  // namespace chaoslab
