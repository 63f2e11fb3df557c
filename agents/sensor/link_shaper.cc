#include "agents/sensor/link_shaper.h"

#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace chaoslab::content {
namespace {

constexpr int kFields = 6;
constexpr const char* kFieldNames[kFields] = {"round trip (us)",      "jitter (us)",
                                              "loss (ppm)",           "rate (kbit/s)",
                                              "link-up minimum (ms)", "link-up maximum (ms)"};

// Appends one attribute (header, payload, padding to 4 bytes); returns its offset.
size_t PutAttr(std::vector<uint8_t>* out, uint16_t type, const void* data, size_t len) {
  const size_t at = out->size();
  rtattr head{};
  head.rta_type = type;
  head.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  out->resize(at + RTA_SPACE(len), 0);
  memcpy(out->data() + at, &head, sizeof head);
  if (len > 0) memcpy(out->data() + at + RTA_LENGTH(0), data, len);
  return at;
}

// Sets the length of the attribute at `at` to reach the end of `out` (a nested attribute).
void CloseAttr(std::vector<uint8_t>* out, size_t at) {
  rtattr head{};
  memcpy(&head, out->data() + at, sizeof head);
  head.rta_len = static_cast<unsigned short>(out->size() - at);
  memcpy(out->data() + at, &head, sizeof head);
}

}  // namespace

Result<LinkProfile> ParseLinkWord(std::string_view value) {
  uint32_t fields[kFields] = {};
  size_t n = 0;
  for (;;) {
    const size_t colon = value.find(':');
    const std::string_view part = value.substr(0, colon);
    if (n == kFields) return Status::InvalidArgument("winsim.link: more than six fields");
    const char* end = part.data() + part.size();
    auto [ptr, ec] = std::from_chars(part.data(), end, fields[n]);
    if (part.empty() || ec != std::errc() || ptr != end) {
      return Status::InvalidArgument(std::string("winsim.link: ") + kFieldNames[n] +
                                     " is not an unsigned number");
    }
    ++n;
    if (colon == std::string_view::npos) break;
    value.remove_prefix(colon + 1);
  }
  if (n != kFields) return Status::InvalidArgument("winsim.link: expected six fields");
  LinkProfile p{fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]};
  if (p.up_min_ms > p.up_max_ms) {
    return Status::InvalidArgument("winsim.link: link-up minimum (ms) is above its maximum");
  }
  if (p.jitter_us > p.rtt_us) {
    return Status::InvalidArgument("winsim.link: jitter (us) is larger than the round trip");
  }
  if (p.loss_ppm > 1'000'000) return Status::InvalidArgument("winsim.link: loss above 1000000 ppm");
  return p;
}

std::string LinkWord(const LinkProfile& p) {
  return std::to_string(p.rtt_us) + ":" + std::to_string(p.jitter_us) + ":" +
         std::to_string(p.loss_ppm) + ":" + std::to_string(p.rate_kbit) + ":" +
         std::to_string(p.up_min_ms) + ":" + std::to_string(p.up_max_ms);
}

std::vector<uint8_t> NetemRequest(int ifindex, const LinkProfile& p, uint32_t seq) {
  std::vector<uint8_t> msg(NLMSG_SPACE(sizeof(tcmsg)), 0);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = ifindex;
  tc.tcm_handle = 0x10000;  // 1:0
  tc.tcm_parent = TC_H_ROOT;
  memcpy(msg.data() + NLMSG_HDRLEN, &tc, sizeof tc);

  static constexpr char kKind[] = "netem";
  PutAttr(&msg, TCA_KIND, kKind, sizeof kKind);
  // netem's options are its fixed struct followed by attributes (not a plain nest).
  tc_netem_qopt qopt{};
  qopt.limit = 1000;  // packets queued, tc's default
  // Probability as a fraction of 2^32 - 1, as tc computes it.
  qopt.loss = static_cast<uint32_t>(static_cast<uint64_t>(p.loss_ppm) * UINT32_MAX / 1'000'000);
  // The 64-bit nanosecond attributes below win over these 32-bit tick fields.
  const size_t options = PutAttr(&msg, TCA_OPTIONS, &qopt, sizeof qopt);
  const int64_t latency_ns = static_cast<int64_t>(p.rtt_us) * 1000;
  const int64_t jitter_ns = static_cast<int64_t>(p.jitter_us) * 1000;
  PutAttr(&msg, TCA_NETEM_LATENCY64, &latency_ns, sizeof latency_ns);
  PutAttr(&msg, TCA_NETEM_JITTER64, &jitter_ns, sizeof jitter_ns);
  if (p.rate_kbit > 0) {
    tc_netem_rate rate{};
    rate.rate = static_cast<uint32_t>(static_cast<uint64_t>(p.rate_kbit) * 1000 / 8);  // bytes/s
    PutAttr(&msg, TCA_NETEM_RATE, &rate, sizeof rate);
  }
  CloseAttr(&msg, options);

  nlmsghdr head{};
  head.nlmsg_len = static_cast<uint32_t>(msg.size());
  head.nlmsg_type = RTM_NEWQDISC;
  head.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  head.nlmsg_seq = seq;
  memcpy(msg.data(), &head, sizeof head);
  return msg;
}

Status ShapeLink(const std::string& dev, const LinkProfile& profile) {
  const unsigned ifindex = if_nametoindex(dev.c_str());
  if (ifindex == 0) return Status::NotFound("no network interface " + dev);
  const int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return Status::IoError(std::string("netlink socket: ") + strerror(errno));
  timeval timeout{2, 0};  // the kernel answers at once; never hang a boot on it
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const std::vector<uint8_t> request = NetemRequest(static_cast<int>(ifindex), profile, 1);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  Status result = Status::Ok();
  if (sendto(sock, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) != static_cast<ssize_t>(request.size())) {
    result = Status::IoError("netem on " + dev + ": send: " + strerror(errno));
  } else {
    alignas(nlmsghdr) uint8_t answer[4096];
    const ssize_t n = recv(sock, answer, sizeof answer, 0);
    const auto* head = reinterpret_cast<const nlmsghdr*>(answer);
    if (n < 0) {
      result = Status::IoError("netem on " + dev + ": no answer: " + strerror(errno));
    } else if (!NLMSG_OK(head, static_cast<unsigned>(n)) || head->nlmsg_type != NLMSG_ERROR) {
      result = Status::Corruption("netem on " + dev + ": unexpected answer from the kernel");
    } else {
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(head));
      if (err->error != 0) {
        result = Status::FailedPrecondition("netem on " + dev + ": " + strerror(-err->error));
      }
    }
  }
  close(sock);
  return result;
}

uint32_t DrawLinkUpDelay(const LinkProfile& p) {
  if (p.up_max_ms <= p.up_min_ms) return p.up_min_ms;
  uint32_t r = 0;
  // GRND_NONBLOCK: early in a boot the pool may not be ready; then any bits will do.
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    r = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  const uint64_t span = uint64_t{p.up_max_ms} - p.up_min_ms + 1;
  return p.up_min_ms + static_cast<uint32_t>(r % span);
}

std::string ShapeLinkOutcome(const std::string& word, const std::string& dev) {
  auto profile = ParseLinkWord(word);
  if (!profile.ok()) return "winsim: cannot shape the link: " + profile.status().message();
  if (profile->unshaped()) return "";
  const Status shaped = ShapeLink(dev, *profile);
  return shaped.ok() ? "winsim: link shaped (netem " + word + ")"
                     : "winsim: cannot shape the link: " + shaped.message();
}

int ShapeLinkMain(const std::string& word, const std::string& dev) {
  const std::string outcome = ShapeLinkOutcome(word, dev);
  if (!outcome.empty()) {
    const std::string line = outcome + "\n";
    (void)!write(STDOUT_FILENO, line.data(), line.size());
  }
  return outcome.find("cannot") == std::string::npos ? 0 : 1;
}

}  // namespace chaoslab::content
