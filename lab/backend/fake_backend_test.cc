#include "lab/backend/fake_backend.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace chaoslab {
namespace {

using std::chrono::milliseconds;

HostSpec Spec(const std::string& id) {
  HostSpec spec;
  spec.id = id;
  spec.group = "workstations";
  return spec;
}

std::vector<HostEvent> Poll(Backend& backend, milliseconds timeout = milliseconds(0)) {
  std::vector<HostEvent> out;
  EXPECT_TRUE(backend.PollEvents(timeout, &out).ok());
  return out;
}

TEST(HostEventKindNameTest, NamesEveryKind) {
  EXPECT_EQ(HostEventKindName(HostEventKind::kStarted), "started");
  EXPECT_EQ(HostEventKindName(HostEventKind::kConsoleLine), "console");
  EXPECT_EQ(HostEventKindName(HostEventKind::kPanicked), "panicked");
  EXPECT_EQ(HostEventKindName(HostEventKind::kReset), "reset");
  EXPECT_EQ(HostEventKindName(HostEventKind::kStopped), "stopped");
  EXPECT_EQ(HostEventKindName(HostEventKind::kResumed), "resumed");
  EXPECT_EQ(HostEventKindName(HostEventKind::kShutdown), "shutdown");
  EXPECT_EQ(HostEventKindName(HostEventKind::kLost), "lost");
}

TEST(FakeBackendTest, LifecycleEmitsEventsInOrder) {
  FakeBackend backend;
  auto host = backend.CreateHost(Spec("ws-01"));
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  ASSERT_TRUE((*host)->Start().ok());
  ASSERT_TRUE((*host)->Reset().ok());
  ASSERT_TRUE((*host)->Pause().ok());
  ASSERT_TRUE((*host)->Resume().ok());
  ASSERT_TRUE((*host)->PowerOff().ok());
  auto events = Poll(backend);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].kind, HostEventKind::kStarted);
  EXPECT_EQ(events[1].kind, HostEventKind::kReset);
  EXPECT_EQ(events[1].detail, "host");
  EXPECT_EQ(events[2].kind, HostEventKind::kStopped);
  EXPECT_EQ(events[3].kind, HostEventKind::kResumed);
  EXPECT_EQ(events[4].kind, HostEventKind::kShutdown);
  for (const auto& e : events) EXPECT_EQ(e.host_id, "ws-01");
  EXPECT_EQ(backend.host("ws-01")->calls(),
            (std::vector<FakeOp>{FakeOp::kStart, FakeOp::kReset, FakeOp::kPause, FakeOp::kResume,
                                 FakeOp::kPowerOff}));
}

TEST(FakeBackendTest, LifecycleMisuseFails) {
  FakeBackend backend;
  Host* host = *backend.CreateHost(Spec("a"));
  EXPECT_EQ(host->Reset().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(host->SendConsole("x").code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(host->Start().ok());
  EXPECT_EQ(host->Start().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(backend.CreateHost(Spec("a")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(backend.CreateHost(Spec("")).status().code(), ErrorCode::kInvalidArgument);
}

TEST(FakeBackendTest, InjectedFailuresApplyOnceInOrder) {
  FakeBackend backend;
  Host* host = *backend.CreateHost(Spec("a"));
  backend.FailNext("a", FakeOp::kStart, Status::Unavailable("hypervisor gone"));
  backend.FailNext("a", FakeOp::kStart, Status::Timeout("slow"));
  EXPECT_EQ(host->Start().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(host->Start().code(), ErrorCode::kTimeout);
  EXPECT_TRUE(host->Start().ok());
  EXPECT_EQ(backend.host("a")->power(), FakeHost::Power::kRunning);
  // Failed calls emitted nothing; only the successful Start did.
  auto events = Poll(backend);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, HostEventKind::kStarted);
}

TEST(FakeBackendTest, ReactionScriptsAGuest) {
  FakeBackend backend(/*auto_events=*/false);
  backend.SetReaction([&](FakeHost& host, FakeOp op) {
    if (op == FakeOp::kStart) {
      backend.Emit(host.spec().id, HostEventKind::kConsoleLine,
                   "@@winsim phase=bootmgr mode=normal");
      backend.Emit(host.spec().id, HostEventKind::kPanicked, "{}");
    }
  });
  Host* host = *backend.CreateHost(Spec("a"));
  ASSERT_TRUE(host->Start().ok());
  ASSERT_TRUE(host->SendConsole("del C-00000291*.sys\n").ok());
  auto events = Poll(backend);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, HostEventKind::kConsoleLine);
  EXPECT_EQ(events[0].detail, "@@winsim phase=bootmgr mode=normal");
  EXPECT_EQ(events[1].kind, HostEventKind::kPanicked);
  EXPECT_EQ(backend.host("a")->console_input(), "del C-00000291*.sys\n");
}

TEST(FakeBackendTest, PollWaitsForAnEventFromAnotherThread) {
  FakeBackend backend;
  // The poll may wait 2 minutes; only the event can end it within the 60 s this test waits.
  auto polled =
      std::async(std::launch::async, [&] { return Poll(backend, std::chrono::minutes(2)); });
  // Not a wait for anything: it makes the interesting order (poll first, then the event) likely.
  // Either order must give the event.
  std::this_thread::sleep_for(milliseconds(20));
  backend.Emit("x", HostEventKind::kLost, "gone");
  ASSERT_EQ(polled.wait_for(std::chrono::seconds(60)), std::future_status::ready)
      << "PollEvents did not wake for the event (waited 60 s)";
  auto events = polled.get();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, HostEventKind::kLost);
}

TEST(FakeBackendTest, PollTimesOutWithNothing) {
  FakeBackend backend;
  EXPECT_TRUE(Poll(backend, milliseconds(30)).empty());
}

TEST(FakeBackendTest, DestroyIsIdempotentAndForgetsHosts) {
  FakeBackend backend;
  ASSERT_TRUE(backend.CreateHost(Spec("a")).ok());
  EXPECT_TRUE(backend.Destroy().ok());
  EXPECT_TRUE(backend.Destroy().ok());
  EXPECT_TRUE(backend.destroyed());
  EXPECT_EQ(backend.host("a"), nullptr);
  EXPECT_EQ(backend.CreateHost(Spec("b")).status().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace chaoslab
