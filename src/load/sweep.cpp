#include "load/sweep.hpp"

#include <algorithm>
#include <cmath>

namespace ballast::load {

std::optional<double> Sweep::next() const {
  if (!good_ && !bad_) return start_;
  if (!good_) return std::nullopt;  // the first run already broke it
  if (!bad_) {
    if (*good_ >= max_) return std::nullopt;
    return std::min(max_, *good_ * 2);
  }
  double gap = *bad_ - *good_;
  if (whole_ ? gap <= 1 : gap <= std::max(*good_ * 0.05, 0.01)) return std::nullopt;
  double mid = (*good_ + *bad_) / 2;
  return whole_ ? std::floor(mid) : mid;
}

void Sweep::report(double load, bool within_slo) {
  if (within_slo) {
    if (!good_ || load > *good_) good_ = load;
  } else if (!bad_ || load < *bad_) {
    bad_ = load;
  }
}

}  // namespace ballast::load
