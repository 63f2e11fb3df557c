// The guest's own side of its network link: the lab's network profile (round trip, jitter, loss,
// bandwidth, and when the link becomes usable after boot) applied by the guest kernel's netem
// queue on eth0, so every delay runs on the guest's clock. Under QEMU's instruction counting that
// clock does not depend on how busy the lab machine is (docs/TIME-BASE.md); a delay applied on
// the host (chaoslab-relay) would be stretched against it by a loaded machine.
//
// The profile arrives as one kernel command-line word, `winsim.link=RTT_US:JITTER_US:LOSS_PPM:
// RATE_KBIT:UP_MIN_MS:UP_MAX_MS` (docs/GUEST-PROTOCOL.md). The whole round trip is put on the way
// out (every packet the guest sends waits RTT, jitter uniform in +-JITTER): the guest's only peer
// is the lab, so a request/answer exchange costs one RTT as on a real link, and TCP's own timers
// handle the lost packets (a lost SYN costs Linux's 1 s initial retransmission timeout). The
// bandwidth, too, shapes what the guest sends; what it receives is not shaped (the content it
// fetches is small).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lab/common/status.h"

namespace chaoslab::content {

struct LinkProfile {
  uint32_t rtt_us = 0;
  uint32_t jitter_us = 0;
  uint32_t loss_ppm = 0;   // lost packets per million sent, 0..1'000'000
  uint32_t rate_kbit = 0;  // 0: not limited
  // From the sensor's start until the link is usable (association, logon): drawn uniformly in
  // [up_min_ms, up_max_ms] at each boot.
  uint32_t up_min_ms = 0;
  uint32_t up_max_ms = 0;

  bool operator==(const LinkProfile&) const = default;
  // Nothing to shape: no queue is installed.
  bool unshaped() const { return rtt_us == 0 && jitter_us == 0 && loss_ppm == 0 && rate_kbit == 0; }
};

// Parses the value of `winsim.link=` (six unsigned decimal fields separated by ':').
// InvalidArgument naming the field for anything else, for jitter above the round trip, loss above
// 1'000'000 or a link-up range whose minimum is above its maximum.
Result<LinkProfile> ParseLinkWord(std::string_view value);

// The word's value for `profile` (ParseLinkWord's inverse).
std::string LinkWord(const LinkProfile& profile);

// The rtnetlink request that replaces the root queue of interface `ifindex` by a netem queue with
// `profile`'s figures (RTM_NEWQDISC, NLM_F_CREATE|NLM_F_REPLACE|NLM_F_ACK). Pure, for tests.
std::vector<uint8_t> NetemRequest(int ifindex, const LinkProfile& profile, uint32_t seq);

// Installs `profile` on interface `dev` (which must exist) and waits for the kernel's answer:
// OK, or the kernel's error (e.g. no netem in this kernel) with the interface named.
Status ShapeLink(const std::string& dev, const LinkProfile& profile);

// Shapes `dev` with `word`'s profile and returns the console line that says how it went ("" when
// the profile shapes nothing). The boot manager and ShapeLinkMain both print it.
std::string ShapeLinkOutcome(const std::string& word, const std::string& dev);

// This boot's link-up delay in ms: uniform in the profile's range, from the kernel's random
// numbers (each boot draws anew; the lab cannot seed a guest's reboots).
uint32_t DrawLinkUpDelay(const LinkProfile& profile);

// `csagent --shape-link WORD DEV` (the init script's path): ShapeLink with the parsed word, the
// outcome said on stdout as the boot manager says it. Exit 0 when shaped, 1 otherwise.
int ShapeLinkMain(const std::string& word, const std::string& dev);

}  // namespace chaoslab::content
