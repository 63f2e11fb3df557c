// The future-event set of the engine: entries ordered by (scenario time, insertion sequence), so
// two events at the same time always come out in the order they were scheduled (determinism).
#pragma once

#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

namespace chaoslab {

template <typename Payload>
class EventQueue {
 public:
  struct Entry {
    double time;
    uint64_t seq;
    Payload payload;
  };

  void Push(double time, Payload payload) {
    heap_.push(Entry{time, next_seq_++, std::move(payload)});
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // +infinity when empty.
  double next_time() const {
    return heap_.empty() ? std::numeric_limits<double>::infinity() : heap_.top().time;
  }
  // Removes and returns the earliest entry. Precondition: !empty().
  Entry Pop() {
    Entry e = heap_.top();
    heap_.pop();
    return e;
  }

 private:
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace chaoslab
