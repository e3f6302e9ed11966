// An HDR-style latency histogram: exact below 128 µs, then 64 buckets per power of two (values
// within 1.6% of the truth) up to hours, in a fixed array, so recording is one increment and runs
// merge by adding counts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace ballast::load {

class Histogram {
 public:
  void record(uint64_t micros);
  void merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  // The value at or below which `p` percent of the recorded values fall (0 when empty).
  uint64_t percentile(double p) const;

  // Buckets, for plots: each non-empty bucket's upper bound and count, in order.
  template <typename F>
  void for_each_bucket(F f) const {
    for (size_t i = 0; i < counts_.size(); ++i)
      if (counts_[i]) f(upper_bound(i), counts_[i]);
  }

  static size_t index_of(uint64_t micros);
  static uint64_t upper_bound(size_t index);

 private:
  static constexpr size_t kLinear = 128;  // exact buckets
  static constexpr size_t kSub = 64;      // buckets per power of two above them
  static constexpr size_t kPowers = 36;   // up to 2^42 µs, about 50 days
  std::array<uint64_t, kLinear + kPowers * kSub> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace ballast::load
