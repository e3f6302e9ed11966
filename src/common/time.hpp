// The one clock vocabulary: policies take time points as arguments, so tests hand them any instant.
#pragma once

#include <chrono>

namespace ballast {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
using Millis = std::chrono::milliseconds;

inline double to_ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace ballast
