// Fakes of the engine's ports for tests: content, key escrow and a live view, each recording what
// the engine did with it.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "lab/engine/engine.h"

namespace chaoslab::testing {

// Hands what the engine publishes and releases to a test's guest model.
class FakeContent final : public ContentChannel {
 public:
  std::function<void(int version)> on_publish;
  std::function<void(int ring)> on_release;
  Status Publish(const ContentVersion& c) override {
    published.push_back(static_cast<int>(c.version));
    if (on_publish) on_publish(static_cast<int>(c.version));
    return Status::Ok();
  }
  void ReleaseRing(int ring) override {
    if (on_release) on_release(ring);
  }
  void WithdrawFault() override { withdrawn = true; }
  Status Quarantine(const ContentVersion& c, const std::vector<std::string>& hosts) override {
    quarantined.push_back({static_cast<int>(c.version), hosts});
    return Status::Ok();
  }
  std::vector<int> published;
  bool withdrawn = false;
  std::vector<std::pair<int, std::vector<std::string>>> quarantined;  // (version, hosts)
};

// An escrow of known passwords that is down when the engine says so; counts lookups per host.
class FakeEscrow final : public KeyEscrowDesk {
 public:
  explicit FakeEscrow(std::map<std::string, std::string> passwords)
      : passwords_(std::move(passwords)) {}
  Result<std::string> FetchKey(const std::string& host_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!up_) return Status::Unavailable("key escrow is down");
    auto it = passwords_.find(host_id);
    if (it == passwords_.end()) return Status::NotFound("no key for " + host_id);
    fetched_[host_id]++;
    return it->second;
  }
  void SetAvailable(bool up) override {
    std::lock_guard<std::mutex> lock(mu_);
    up_ = up;
  }
  bool up() const {
    std::lock_guard<std::mutex> lock(mu_);
    return up_;
  }
  std::map<std::string, int> fetched() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fetched_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> passwords_;
  std::map<std::string, int> fetched_;
  bool up_ = true;
};

// Records every live event; hands the engine the operator actions a test queues (thread-safe).
class RecordingView final : public LiveView {
 public:
  void Event(const LiveEvent& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(e);
  }
  std::vector<OperatorAction> TakeActions() override {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(actions_, {});
  }
  void Push(OperatorAction a) {
    std::lock_guard<std::mutex> lock(mu_);
    actions_.push_back(std::move(a));
  }
  std::vector<LiveEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<LiveEvent> events_;
  std::vector<OperatorAction> actions_;
};

}  // namespace chaoslab::testing
