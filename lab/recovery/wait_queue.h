// Hosts waiting for one resource, in the order they are served: rank, then queue time, then host
// index. It behaves as a std::set of those keys (unique keys, smallest first) but is built for how
// the recovery model uses it: a host joins with the latest queue time of its rank (so it goes at
// its rank's end), the first host leaves and often joins again at once (so it goes back to the
// front), and ranks are few. One sorted lane per rank, each a vector with a free front: joining
// and leaving at either end are O(1), against a tree node allocated per join. 8.5 million hosts
// join and leave these queues tens of millions of times (docs/SIMULATOR.md).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <vector>

namespace chaoslab::recovery {

struct WaitKey {
  int rank;
  double queued_at;
  uint32_t host;
  bool operator<(const WaitKey& o) const {
    return std::tie(rank, queued_at, host) < std::tie(o.rank, o.queued_at, o.host);
  }
  bool operator==(const WaitKey& o) const {
    return rank == o.rank && queued_at == o.queued_at && host == o.host;
  }
};

class WaitQueue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // The first key; the queue must not be empty.
  const WaitKey& front() const { return lanes_[FirstLane()].front(); }

  // Adds `key` unless it is there already (as std::set::insert).
  void insert(const WaitKey& key) {
    if (lanes_.empty() || lanes_.back().rank < key.rank) {
      lanes_.push_back(Lane{key.rank, {}, 0});
      lanes_.back().Insert(key);
      size_++;
      return;
    }
    auto lane = std::lower_bound(lanes_.begin(), lanes_.end(), key.rank,
                                 [](const Lane& l, int rank) { return l.rank < rank; });
    if (lane->rank != key.rank) lane = lanes_.insert(lane, Lane{key.rank, {}, 0});
    if (lane->Insert(key)) size_++;
  }

  // Removes `key` if it is there (as std::set::erase(key)).
  void erase(const WaitKey& key) {
    if (size_ == 0) return;
    for (Lane& lane : lanes_) {
      if (lane.rank != key.rank) continue;
      if (lane.Erase(key)) size_--;
      return;
    }
  }

  void pop_front() {
    lanes_[FirstLane()].PopFront();
    size_--;
  }

  // Calls `fn(key)` for every key, in order; `fn` must not change the queue.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Lane& lane : lanes_)
      for (size_t k = lane.head; k < lane.keys.size(); ++k) fn(lane.keys[k]);
  }

 private:
  struct Lane {
    int rank;
    std::vector<WaitKey> keys;  // sorted from `head` on; [0, head) is free room at the front
    size_t head;

    bool empty() const { return head == keys.size(); }
    const WaitKey& front() const { return keys[head]; }

    bool Insert(const WaitKey& key) {
      if (empty()) {
        keys.clear();
        head = 0;
        keys.push_back(key);
        return true;
      }
      if (keys.back() < key) {
        keys.push_back(key);
        return true;
      }
      if (key < keys[head]) {
        if (head == 0) {
          // Make room at the front for the hosts that will come back there.
          const size_t room = std::max<size_t>(8, (keys.size() - head) / 4);
          keys.insert(keys.begin(), room, WaitKey{});
          head = room;
        }
        keys[--head] = key;
        return true;
      }
      auto at = std::lower_bound(keys.begin() + static_cast<std::ptrdiff_t>(head), keys.end(), key);
      if (*at == key) return false;
      keys.insert(at, key);
      return true;
    }

    bool Erase(const WaitKey& key) {
      auto first = keys.begin() + static_cast<std::ptrdiff_t>(head);
      auto at = std::lower_bound(first, keys.end(), key);
      if (at == keys.end() || !(*at == key)) return false;
      if (at == first) {
        PopFront();
      } else {
        keys.erase(at);
      }
      return true;
    }

    void PopFront() {
      head++;
      if (empty()) {
        keys.clear();
        head = 0;
      } else if (head > 4096 && head > keys.size() / 2) {
        // A lane served at its front and joined at its back would otherwise only grow.
        keys.erase(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
    }
  };

  size_t FirstLane() const {
    size_t l = 0;
    while (lanes_[l].empty()) l++;
    return l;
  }

  std::vector<Lane> lanes_;  // by rank, ascending; a lane stays when it empties (ranks are few)
  size_t size_ = 0;
};

}  // namespace chaoslab::recovery
