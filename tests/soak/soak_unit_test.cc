// The fault soak's pieces that need no guest: the seeded schedule, and the checks that match what
// the lab acknowledged against its journal (tests/soak/soak_test.cc runs them on real runs).
#include <gtest/gtest.h>

#include <map>

#include "tests/soak/fault_schedule.h"
#include "tests/soak/soak_checks.h"

namespace chaoslab::soak {
namespace {

using namespace std::chrono_literals;

TEST(FaultSchedule, IsSeededSortedAndEachFaultEndsBeforeTheNext) {
  for (bool libvirt : {false, true}) {
    const ScheduleOptions o = DefaultOptions(libvirt, 780s, 15);
    const std::vector<Fault> a = MakeSchedule(o), b = MakeSchedule(o);
    ASSERT_EQ(a.size(), libvirt ? 11u : 8u);
    std::map<FaultKind, int> kinds;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].at, b[i].at);
      EXPECT_EQ(a[i].kind, b[i].kind);
      EXPECT_EQ(a[i].pick, b[i].pick);
      EXPECT_GE(a[i].at, std::chrono::milliseconds(o.warmup));
      EXPECT_LT(a[i].at, std::chrono::milliseconds(o.length - o.tail));
      if (i + 1 < a.size()) {
        EXPECT_LE(a[i].at + a[i].hold, a[i + 1].at) << i;
      }
      EXPECT_LT(a[i].target, 2);
      kinds[a[i].kind]++;
    }
    EXPECT_EQ(kinds[FaultKind::kKillQemu], 2);
    EXPECT_EQ(kinds[FaultKind::kFillDisk], libvirt ? 2 : 3);
    EXPECT_EQ(kinds[FaultKind::kLockJournal], libvirt ? 2 : 3);
    EXPECT_EQ(kinds[FaultKind::kStopLibvirtd], libvirt ? 5 : 0);
    EXPECT_NE(MakeSchedule(DefaultOptions(libvirt, 780s, 16))[0].at, a[0].at);
  }
}

TEST(FaultSchedule, HoldsStayInsideOrPastTheKeepaliveAsPlanned) {
  const std::vector<Fault> s = MakeSchedule(DefaultOptions(true, 780s, 15));
  ASSERT_GE(s.size(), 2u);
  EXPECT_TRUE(s.back().until_end) << "the hang comes last";
  const Fault& long_stop = s[s.size() - 2];
  EXPECT_TRUE(long_stop.past_keepalive && !long_stop.until_end) << "then the long stop";
  EXPECT_EQ(s.back().target, long_stop.target) << "on the hypervisor the long stop emptied";
  for (const Fault& f : s) {
    if (f.until_end) continue;
    if (f.kind == FaultKind::kStopLibvirtd && f.past_keepalive) {
      EXPECT_GE(f.hold, 20s);  // the lab gives up after 2 s x 5 unanswered keepalives
    } else if (f.kind == FaultKind::kStopLibvirtd) {
      EXPECT_LE(f.hold, 6s);
    } else if (f.kind == FaultKind::kLockJournal) {
      EXPECT_LE(f.hold, 60s);  // well inside the journal's 120 s wait
      EXPECT_GE(f.hold, 10s);
    }
  }
  EXPECT_TRUE(MakeSchedule(DefaultOptions(false, 100s, 15)).empty()) << "no room: no faults";
}

TEST(SoakChecks, ProgressLinesAreMatchedToJournalEventsOneForOne) {
  const std::string progress =
      "journal: /tmp/j.db\n"
      "04:09:56  ws-711-02      healthy -> crashed: PAGE_FAULT_IN_NONPAGED_AREA\n"
      "04:18:51  ws-711-02      crashed again (reboot 17 of 1000)\n"
      "04:18:51  ws-711-02      crashed again (reboot 17 of 1000)\n"
      "d+1 02:00:00  ws-711-03      remediating -> lost: QEMU killed by signal 9 (Killed); "
      "qemu.log: qemu-system-x86_64: terminating\n"
      "on signal 15\n"
      "04:10:00  somebody-else  healthy -> crashed\n"
      "04:10:00  placed ws-711-01 on hypervisor hv1\n";
  const auto acks = ParseProgress(progress, {"ws-711-02", "ws-711-03"});
  ASSERT_EQ(acks.size(), 4u);
  EXPECT_EQ(acks[0].kind, "state");
  EXPECT_EQ(acks[1].kind, "crash");
  EXPECT_EQ(acks[1].key, "04:18:51");
  EXPECT_EQ(acks[3].host, "ws-711-03");

  std::vector<JournalRow> events = {
      {1, 4 * 3600 + 9 * 60 + 56, 10, "ws-711-02", "state",
       "healthy -> crashed: PAGE_FAULT_IN_NONPAGED_AREA"},
      {2, 4 * 3600 + 18 * 60 + 51.2, 20, "ws-711-02", "crash", "PAGE_FAULT_IN_NONPAGED_AREA"},
      {3, 86400 + 2 * 3600, 30, "ws-711-03", "state",
       "remediating -> lost: QEMU killed by signal 9 (Killed); qemu.log: qemu-system-x86_64: "
       "terminating\non signal 15"}};
  auto missing = UnjournaledProgress(acks, events);
  ASSERT_EQ(missing.size(), 1u) << "two crash lines, one crash event";
  EXPECT_EQ(missing[0].kind, "crash");
  events.push_back({4, 4 * 3600 + 18 * 60 + 50.6, 40, "ws-711-02", "crash", "x"});
  EXPECT_TRUE(UnjournaledProgress(acks, events).empty());
}

TEST(SoakChecks, PushedEventsAreMatchedByHostKindAndWallTime) {
  const std::vector<JournalRow> events = {{1, 100, 5000, "a", "crash", "stop \xc3"},
                                          {2, 100, 5001, "", "release", "v2"}};
  std::set<PushedEvent> pushed = {{5000, "a", "crash", "stop \xEF\xBF\xBD"},
                                  {5001, "", "release", "v2"}};
  EXPECT_TRUE(UnjournaledPushes(pushed, events).empty()) << "the feed's text is made UTF-8";
  pushed.insert({5002, "a", "state", "booting -> crashed"});
  ASSERT_EQ(UnjournaledPushes(pushed, events).size(), 1u);
  EXPECT_EQ(ClockText(86400 + 61), "d+1 00:01:01");
}

}  // namespace
}  // namespace chaoslab::soak
