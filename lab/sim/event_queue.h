// The simulator's future-event set, a calendar queue: entries come out in exactly the (time,
// sequence) order of EventHeap (event_heap.h), so two events at the same time leave in the order
// they were scheduled and a run's results do not depend on which of the two holds its agenda.
//
// Why not the heap: at 100,000 live entries every heap operation walks ~8 levels of a 2.4 MB
// array, a cache miss each; the simulator spends most of an event there. Here an event is
// appended to the bucket of its time (O(1), no comparison) and is compared only with the few
// events of the same bucket when that bucket becomes current.
//
// Layout: `run_` (sorted) and `late_` (a small 4-ary heap) hold every entry of the current
// bucket and any entry scheduled before it; `buckets_[i]` holds, unsorted, the entries with
// floor((time - base_) / width) == i for i after the current bucket; `far_` holds, unsorted, the
// entries beyond the last bucket. Routing is monotone in time, so everything in `run_`/`late_`
// precedes every bucket entry, which precedes every `far_` entry. When the buckets are used up, the
// window is rebuilt from `far_`: it starts at far's earliest time and its width is chosen from a
// sample of far's times so that about half of them fall into the new window (~1 per bucket). The
// width only affects speed, never the order. No allocation per event once the vectors have grown.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace chaoslab::sim {

template <typename Payload>  // trivially copyable, at most 12 bytes
class CalendarQueue {
 public:
  struct Entry {
    double time;
    uint32_t seq;
    Payload payload;
  };

  void Push(double time, const Payload& payload) {
    const Entry e{time, next_seq_++, payload};
    ++size_;
    const double x = (time - base_) * inv_width_;
    if (x < near_limit_) {
      HeapPush(e);
      if (heap_mode_ && late_.size() > kLarge) Spill();
    } else if (x < bucket_limit_) {
      buckets_[static_cast<size_t>(x)].push_back(e);
    } else {
      far_.push_back(e);  // also a NaN x (an infinite time): after everything, in push order
    }
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Earliest time, +infinity when empty. Not const: it may advance to the next bucket.
  double next_time() {
    if (!Ready()) return std::numeric_limits<double>::infinity();
    if (late_.empty()) return run_.back().time;
    if (run_.empty()) return late_.front().time;
    return std::min(run_.back().time, late_.front().time);
  }
  // Removes and returns the earliest entry. Precondition: !empty().
  Entry Pop() {
    Ready();
    --size_;
    if (!late_.empty() && (run_.empty() || Before(late_.front(), run_.back()))) {
      return HeapPop();
    }
    Entry e = run_.back();
    run_.pop_back();
    return e;
  }

 private:
  static bool Before(const Entry& a, const Entry& b) {
    return a.time < b.time || (a.time == b.time && a.seq < b.seq);
  }
  // A function object, not a function pointer, so that std::sort and the heap inline it.
  struct AfterFn {
    bool operator()(const Entry& a, const Entry& b) const { return Before(b, a); }
  };
  static constexpr AfterFn After{};

  // Makes `run_` or `late_` hold the earliest entry; false when the queue is empty.
  bool Ready() {
    while (run_.empty() && late_.empty()) {
      if (size_ == 0) return false;
      if (next_ < buckets_used_) {
        std::vector<Entry>& b = buckets_[next_++];
        near_limit_ = static_cast<double>(next_);
        if (!b.empty()) LoadBucket(b, static_cast<double>(next_ - 1));
      } else {
        Rebuild();
      }
    }
    return true;
  }

  // Moves bucket `b` (index `lo`) into `run_`, sorted latest first. A comparison sort of a few
  // hundred entries was a third of an event's cost; instead a counting sort on a finer index
  // (about one entry per slot, computed exactly like the bucket index, so monotone in time), then
  // each slot sorted on its own: by insertion when small, else by std::sort (a fleet booting at
  // once is one slot of 100,000 entries at one time).
  void LoadBucket(std::vector<Entry>& b, double lo) {
    const size_t m = b.size();
    run_.resize(m);
    if (m <= 16) {
      std::copy(b.rbegin(), b.rend(), run_.begin());  // b is in push order: latest seq first
      InsertionSort(0, m);
      b.clear();
      return;
    }
    const double scale = static_cast<double>(m);
    auto slot = [&](const Entry& e) {  // latest first: slot 0 holds the latest times
      const double y = ((e.time - base_) * inv_width_ - lo) * scale;
      const size_t k = y <= 0 ? 0 : y >= scale ? m - 1 : static_cast<size_t>(y);
      return m - 1 - k;
    };
    counts_.assign(m + 1, 0);
    for (const Entry& e : b) counts_[slot(e) + 1]++;
    for (size_t i = 1; i <= m; ++i) counts_[i] += counts_[i - 1];
    // Backwards, so that equal times already stand latest sequence first within a slot.
    for (auto it = b.rbegin(); it != b.rend(); ++it) run_[counts_[slot(*it)]++] = *it;
    b.clear();  // keeps its capacity for the next window
    // counts_[i] is now where slot i ends.
    size_t begin = 0;
    for (size_t i = 0; i < m; ++i) {
      const size_t end = counts_[i];
      if (end - begin > 16) {
        std::sort(run_.begin() + static_cast<std::ptrdiff_t>(begin),
                  run_.begin() + static_cast<std::ptrdiff_t>(end), After);
      } else if (end - begin > 1) {
        InsertionSort(begin, end);
      }
      begin = end;
    }
  }
  void InsertionSort(size_t begin, size_t end) {
    for (size_t i = begin + 1; i < end; ++i) {
      const Entry e = run_[i];
      size_t j = i;
      for (; j > begin && After(e, run_[j - 1]); --j) run_[j] = run_[j - 1];
      run_[j] = e;
    }
  }

  // `late_` is a 4-ary min-heap on (time, seq), as EventHeap: half the depth of a binary heap.
  void HeapPush(const Entry& e) {
    size_t i = late_.size();
    late_.push_back(e);
    while (i > 0) {
      const size_t parent = (i - 1) / 4;
      if (!Before(e, late_[parent])) break;
      late_[i] = late_[parent];
      i = parent;
    }
    late_[i] = e;
  }
  Entry HeapPop() {
    const Entry top = late_.front();
    const Entry last = late_.back();
    late_.pop_back();
    const size_t n = late_.size();
    if (n == 0) return top;
    size_t i = 0;
    while (true) {
      const size_t first = 4 * i + 1;
      if (first >= n) break;
      size_t best = first;
      const size_t end = std::min(first + 4, n);
      for (size_t c = first + 1; c < end; ++c)
        if (Before(late_[c], late_[best])) best = c;
      if (!Before(late_[best], last)) break;
      late_[i] = late_[best];
      i = best;
    }
    late_[i] = last;
    return top;
  }

  // Heap mode outgrew the cache: everything back to far_ (unsorted), so that the next Ready()
  // builds a window of buckets from it. (In heap mode the buckets are empty and run_ is empty or
  // holds only what came before heap mode began.)
  void Spill() {
    far_.insert(far_.end(), run_.begin(), run_.end());
    far_.insert(far_.end(), late_.begin(), late_.end());
    run_.clear();
    late_.clear();
    near_limit_ = bucket_limit_ = -std::numeric_limits<double>::infinity();
    buckets_used_ = next_ = 0;
    heap_mode_ = false;
  }

  // All buckets are used up and the current one is empty, so every entry is in `far_`.
  void Rebuild() {
    const size_t n = far_.size();
    double t0 = std::numeric_limits<double>::infinity();
    for (const Entry& e : far_) t0 = std::min(t0, e.time);
    if (n <= kSmall || !std::isfinite(t0)) {
      // Few entries (most organisations' agendas), or only infinite times: one 4-ary heap,
      // small enough to stay in cache, where the buckets' bookkeeping would cost more than it
      // saves. Every finite time goes to that heap (x = 0); an infinite one (x = NaN) to far_,
      // after everything the heap holds. Spill() returns to buckets if the heap grows large.
      for (const Entry& e : far_) HeapPush(e);
      far_.clear();
      base_ = 0;
      inv_width_ = 0;
      near_limit_ = std::numeric_limits<double>::infinity();
      buckets_used_ = next_ = 0;
      heap_mode_ = true;
      return;
    }
    heap_mode_ = false;
    // Median of up to 63 sampled times (those after t0 when any): the window spans twice that.
    double sample[63];
    int k = 0;
    const size_t stride = std::max<size_t>(1, n / 63);
    for (size_t i = 0; i < n && k < 63; i += stride)
      if (far_[i].time > t0 && std::isfinite(far_[i].time)) sample[k++] = far_[i].time;
    double span = 1.0;
    if (k > 0) {
      std::nth_element(sample, sample + k / 2, sample + k);
      span = 2.0 * (sample[k / 2] - t0);
    }
    if (!(span > 0) || !std::isfinite(span)) span = 1.0;
    const size_t nb =
        std::clamp<size_t>(std::bit_ceil(std::max<size_t>(n / kPerBucket, 1)), 64, size_t{1} << 20);
    if (buckets_.size() < nb) buckets_.resize(nb);
    buckets_used_ = nb;
    base_ = t0;
    inv_width_ = static_cast<double>(nb) / span;
    bucket_limit_ = static_cast<double>(nb);
    near_limit_ = 0;  // Ready() moves to bucket 0 next
    next_ = 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      const Entry& e = far_[i];
      const double x = (e.time - base_) * inv_width_;
      if (x < bucket_limit_) {
        buckets_[static_cast<size_t>(x)].push_back(e);
      } else {
        far_[kept++] = e;
      }
    }
    far_.resize(kept);
  }

  // The current bucket: `run_` sorted latest first (its earliest entry is at the back), and what
  // was scheduled into it (or before it) since it became current, a 4-ary heap (HeapPush) (a
  // sorted insert would move every same-time entry: a fleet booting at once is one bucket).
  std::vector<Entry> run_, late_;
  // ~this many entries per bucket when a window is built: fewer, fuller buckets keep the bucket
  // array and the buckets' tails in the L2 cache (measured: 256 beats 1 by 2x at 100,000 live).
  static constexpr size_t kPerBucket = 256;
  // At most kSmall entries when a window would be built: a plain heap instead (heap_mode_), until
  // it holds more than kLarge.
  // (A 4-ary heap of 32,768 entries is 768 KB, about the L2 cache; measured on global-2024, whose
  // enterprises of 20,000 hosts ran as fast on the heap as on buckets.)
  static constexpr size_t kSmall = 32768, kLarge = 131072;
  bool heap_mode_ = false;
  std::vector<std::vector<Entry>> buckets_;
  std::vector<uint32_t> counts_;  // LoadBucket's counting sort
  std::vector<Entry> far_;
  size_t buckets_used_ = 0;
  size_t next_ = 0;  // the next bucket to move into run_ (those before it are empty)
  double base_ = 0, inv_width_ = 1;
  // Until the first Rebuild everything goes to far_ (so the first window sees every entry).
  double near_limit_ = -std::numeric_limits<double>::infinity();
  double bucket_limit_ = -std::numeric_limits<double>::infinity();
  size_t size_ = 0;
  uint32_t next_seq_ = 0;  // an organisation schedules far fewer than 2^32 events
};

}  // namespace chaoslab::sim
