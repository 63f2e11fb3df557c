// Internal to lab/cli: a staged rollout on real guests, as the content server enforces it: which
// ring each host is in, and what each host is offered as the rings are released.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lab/config/config.h"
#include "lab/content_server/content_server.h"

namespace chaoslab::run_internal {

// What each host is offered (ContentServer's policy): the faulty version only to hosts of rings
// it was released to, never to pinned hosts, and to nobody once withdrawn; pinned hosts take the
// second-newest of what is offered (N-1). Thread-safe (the server calls it on its io thread).
class RolloutContentPolicy : public ContentPolicy {
 public:
  RolloutContentPolicy(uint32_t fault_version, std::map<std::string, int> ring_of,
                       std::set<std::string> pinned)
      : fault_version_(fault_version), ring_of_(std::move(ring_of)), pinned_(std::move(pinned)) {}
  void Release(int ring) {
    std::lock_guard<std::mutex> lock(mu_);
    released_.insert(ring);
  }
  void Withdraw() {
    std::lock_guard<std::mutex> lock(mu_);
    withdrawn_ = true;
  }
  const PublishedFile* Select(std::string_view host_id,
                              std::span<const PublishedFile> published) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string host(host_id);
    const bool pinned = pinned_.count(host) > 0;
    auto ring = ring_of_.find(host);
    const bool sees_fault =
        !withdrawn_ && !pinned && ring != ring_of_.end() && released_.count(ring->second) > 0;
    std::vector<const PublishedFile*> offered;
    for (const auto& f : published)
      if (f.version != fault_version_ || sees_fault) offered.push_back(&f);
    if (offered.empty()) return nullptr;
    if (pinned && offered.size() >= 2) return offered[offered.size() - 2];
    return offered.back();
  }

 private:
  const uint32_t fault_version_;
  const std::map<std::string, int> ring_of_;
  const std::set<std::string> pinned_;
  mutable std::mutex mu_;
  std::set<int> released_;
  bool withdrawn_ = false;
};

// Ring of every host: a seeded shuffle of the fleet cut by the rings' percents (each ring with a
// share gets at least one host while hosts last). All-at-once: everyone in ring 0.
std::vector<int> AssignRings(const config::RolloutConfig& rollout, size_t hosts, uint64_t seed);

}  // namespace chaoslab::run_internal
