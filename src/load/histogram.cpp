#include "load/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ballast::load {

size_t Histogram::index_of(uint64_t micros) {
  if (micros < kLinear) return static_cast<size_t>(micros);
  // micros has `width` significant bits; its top 7 (64..127) pick the sub-bucket within its power.
  int width = static_cast<int>(std::bit_width(micros));
  int shift = width - 7;
  size_t power = static_cast<size_t>(shift - 1);
  size_t sub = static_cast<size_t>(micros >> shift) - kSub;
  return std::min(kLinear + power * kSub + sub, kLinear + kPowers * kSub - 1);
}

uint64_t Histogram::upper_bound(size_t index) {
  if (index < kLinear) return index;
  size_t power = (index - kLinear) / kSub;
  size_t sub = (index - kLinear) % kSub;
  int shift = static_cast<int>(power) + 1;
  return ((static_cast<uint64_t>(sub + kSub) + 1) << shift) - 1;
}

void Histogram::record(uint64_t micros) {
  ++counts_[index_of(micros)];
  ++count_;
  sum_ += micros;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
}

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  auto rank =
      static_cast<uint64_t>(std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_bound(i), max_);
  }
  return max_;
}

}  // namespace ballast::load
