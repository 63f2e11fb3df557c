#include "agents/sensor/link_shaper.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <map>

namespace chaoslab::content {
namespace {

TEST(ParseLinkWordTest, ReadsTheFiveFields) {
  auto p = ParseLinkWord("20000:5000:10000:50000:300:900");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, (LinkProfile{20000, 5000, 10000, 50000, 300, 900}));
  EXPECT_EQ(LinkWord(*p), "20000:5000:10000:50000:300:900");
  EXPECT_TRUE(ParseLinkWord("0:0:0:0:0:0")->unshaped());
  EXPECT_TRUE(ParseLinkWord("0:0:0:0:900:900")->unshaped());  // a link-up delay needs no queue
}

TEST(ParseLinkWordTest, RefusesWhatIsNotFiveUnsignedFields) {
  for (const char* bad : {"", "1:2:3:4:5", "1:2:3:4:5:6:7", "1:2:3:4:5:x", "-1:0:0:0:0:0",
                          "1::3:4:5:6", "1:2:3:4:5:6:", "99999999999:0:0:0:0:0", " 1:0:0:0:0:0"}) {
    EXPECT_FALSE(ParseLinkWord(bad).ok()) << bad;
  }
  EXPECT_NE(ParseLinkWord("10:11:0:0:0:0").status().message().find("jitter"), std::string::npos);
  EXPECT_NE(ParseLinkWord("10:1:1000001:0:0:0").status().message().find("loss"), std::string::npos);
  EXPECT_NE(ParseLinkWord("1:1:3:x:5:6").status().message().find("rate"), std::string::npos);
  EXPECT_NE(ParseLinkWord("1:1:3:4:6:5").status().message().find("maximum"), std::string::npos);
}

TEST(DrawLinkUpDelayTest, StaysInTheRangeAndCoversIt) {
  EXPECT_EQ(DrawLinkUpDelay(LinkProfile{0, 0, 0, 0, 300, 300}), 300u);
  const LinkProfile p{0, 0, 0, 0, 100, 103};
  std::map<uint32_t, int> seen;
  for (int i = 0; i < 400; ++i) ++seen[DrawLinkUpDelay(p)];
  EXPECT_EQ(seen.size(), 4u) << "every value of 100..103 drawn in 400 tries";
  EXPECT_EQ(seen.begin()->first, 100u);
  EXPECT_EQ(seen.rbegin()->first, 103u);
}

// The attributes of a netlink attribute area, by type.
std::map<int, std::vector<uint8_t>> Attributes(const uint8_t* data, size_t len) {
  std::map<int, std::vector<uint8_t>> out;
  auto* a = reinterpret_cast<const rtattr*>(data);
  int left = static_cast<int>(len);
  for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    const auto* payload = static_cast<const uint8_t*>(RTA_DATA(a));
    out[a->rta_type].assign(payload, payload + RTA_PAYLOAD(a));
  }
  EXPECT_EQ(left, 0) << "attributes end exactly at the message's end";
  return out;
}

template <typename T>
T As(const std::vector<uint8_t>& bytes) {
  T value{};
  EXPECT_EQ(bytes.size(), sizeof value);
  memcpy(&value, bytes.data(), std::min(bytes.size(), sizeof value));
  return value;
}

TEST(NetemRequestTest, IsAReplaceOfTheRootQueueWithTheProfilesFigures) {
  const LinkProfile p{20000, 5000, 10000, 8000, 0};  // 20 ms +- 5 ms, 1 %, 8 Mbit/s
  const std::vector<uint8_t> msg = NetemRequest(7, p, 42);
  nlmsghdr head{};
  memcpy(&head, msg.data(), sizeof head);
  EXPECT_EQ(head.nlmsg_len, msg.size());
  EXPECT_EQ(head.nlmsg_type, RTM_NEWQDISC);
  EXPECT_EQ(head.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  EXPECT_EQ(head.nlmsg_seq, 42u);
  tcmsg tc{};
  memcpy(&tc, msg.data() + NLMSG_HDRLEN, sizeof tc);
  EXPECT_EQ(tc.tcm_ifindex, 7);
  EXPECT_EQ(tc.tcm_parent, TC_H_ROOT);
  EXPECT_EQ(tc.tcm_handle, 0x10000u);

  const size_t attrs_at = NLMSG_SPACE(sizeof(tcmsg));
  auto top = Attributes(msg.data() + attrs_at, msg.size() - attrs_at);
  ASSERT_TRUE(top.count(TCA_KIND) && top.count(TCA_OPTIONS));
  EXPECT_STREQ(reinterpret_cast<const char*>(top[TCA_KIND].data()), "netem");
  const std::vector<uint8_t>& options = top[TCA_OPTIONS];
  ASSERT_GE(options.size(), sizeof(tc_netem_qopt));
  tc_netem_qopt qopt{};
  memcpy(&qopt, options.data(), sizeof qopt);
  EXPECT_EQ(qopt.limit, 1000u);
  EXPECT_NEAR(static_cast<double>(qopt.loss) / UINT32_MAX, 0.01, 1e-9);
  auto nested = Attributes(options.data() + sizeof qopt, options.size() - sizeof qopt);
  EXPECT_EQ(As<int64_t>(nested[TCA_NETEM_LATENCY64]), 20'000'000);
  EXPECT_EQ(As<int64_t>(nested[TCA_NETEM_JITTER64]), 5'000'000);
  EXPECT_EQ(As<tc_netem_rate>(nested[TCA_NETEM_RATE]).rate, 1'000'000u);  // bytes per second
}

TEST(NetemRequestTest, NoRateAttributeWithoutABandwidth) {
  const std::vector<uint8_t> msg = NetemRequest(2, LinkProfile{1000, 0, 0, 0, 0, 0}, 1);
  const size_t attrs_at = NLMSG_SPACE(sizeof(tcmsg));
  auto top = Attributes(msg.data() + attrs_at, msg.size() - attrs_at);
  const std::vector<uint8_t>& options = top[TCA_OPTIONS];
  auto nested =
      Attributes(options.data() + sizeof(tc_netem_qopt), options.size() - sizeof(tc_netem_qopt));
  EXPECT_EQ(nested.count(TCA_NETEM_RATE), 0u);
  EXPECT_EQ(As<int64_t>(nested[TCA_NETEM_LATENCY64]), 1'000'000);
}

TEST(ShapeLinkTest, NamesAMissingInterface) {
  Status s = ShapeLink("no-such-if0", LinkProfile{1000, 0, 0, 0, 0, 0});
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_NE(s.message().find("no-such-if0"), std::string::npos);
  EXPECT_NE(ShapeLinkOutcome("1000:0:0:0:0:0", "no-such-if0").find("cannot shape"),
            std::string::npos);
  EXPECT_EQ(ShapeLinkOutcome("0:0:0:0:500:500", "no-such-if0"), "");  // nothing to shape
}

}  // namespace
}  // namespace chaoslab::content
