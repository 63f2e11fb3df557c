// The agenda of the recovery model's drivers: entries come out in (time, sequence) order, so two
// events at the same time leave in the order they were scheduled (determinism). The VM lab's
// agenda; for the simulator, the reference its calendar queue (lab/sim/event_queue.h) is tested
// against and `make bench` compares it with. A 4-ary implicit heap: half the depth of a binary
// heap and a node's children in one or two cache lines (with payloads of at most 12 bytes).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace chaoslab {

template <typename Payload>  // trivially copyable
class EventHeap {
 public:
  struct Entry {
    double time;
    uint32_t seq;
    Payload payload;
  };

  void Push(double time, const Payload& payload) {
    Entry e{time, next_seq_++, payload};
    size_t i = heap_.size();
    heap_.push_back(e);
    while (i > 0) {
      size_t parent = (i - 1) / 4;
      if (!Before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  double next_time() const {
    return heap_.empty() ? std::numeric_limits<double>::infinity() : heap_.front().time;
  }
  // Removes and returns the earliest entry. Precondition: !empty().
  Entry Pop() {
    Entry top = heap_.front();
    Entry last = heap_.back();
    heap_.pop_back();
    const size_t n = heap_.size();
    if (n == 0) return top;
    size_t i = 0;
    while (true) {
      size_t first = 4 * i + 1;
      if (first >= n) break;
      size_t best = first;
      size_t end = first + 4 < n ? first + 4 : n;
      for (size_t c = first + 1; c < end; ++c)
        if (Before(heap_[c], heap_[best])) best = c;
      if (!Before(heap_[best], last)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = last;
    return top;
  }

 private:
  static bool Before(const Entry& a, const Entry& b) {
    return a.time < b.time || (a.time == b.time && a.seq < b.seq);
  }
  std::vector<Entry> heap_;
  uint32_t next_seq_ = 0;  // a run (an organisation) schedules far fewer than 2^32 events
};

}  // namespace chaoslab
