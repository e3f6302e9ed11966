#include "sim/rate_window.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace ballast::sim {

RateWindow::RateWindow(int64_t per_minute, TimePoint now)
    : limit_(per_minute), level_(static_cast<double>(per_minute)), last_(now) {}

void RateWindow::refill(TimePoint now) {
  if (now <= last_) return;
  double minutes = std::chrono::duration<double>(now - last_).count() / 60.0;
  level_ = std::min(static_cast<double>(limit_), level_ + minutes * static_cast<double>(limit_));
  last_ = now;
}

bool RateWindow::try_take(int64_t n, TimePoint now) {
  if (!limited()) return true;
  refill(now);
  // A request larger than the whole limit could never pass; let it through when the bucket is full.
  double need = std::min(static_cast<double>(n), static_cast<double>(limit_));
  if (level_ + 1e-9 < need) return false;
  level_ -= static_cast<double>(n);
  return true;
}

void RateWindow::give_back(int64_t n, TimePoint now) {
  if (!limited()) return;
  refill(now);
  level_ = std::min(static_cast<double>(limit_), level_ + static_cast<double>(n));
}

int64_t RateWindow::remaining(TimePoint now) {
  if (!limited()) return 0;
  refill(now);
  return std::max<int64_t>(0, static_cast<int64_t>(std::floor(level_)));
}

Duration RateWindow::wait_for(int64_t n, TimePoint now) {
  if (!limited()) return Duration::zero();
  refill(now);
  double need = std::min(static_cast<double>(n), static_cast<double>(limit_)) - level_;
  if (need <= 0) return Duration::zero();
  double seconds = need / static_cast<double>(limit_) * 60.0;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

Duration RateWindow::until_full(TimePoint now) {
  if (!limited()) return Duration::zero();
  refill(now);
  double seconds = (static_cast<double>(limit_) - level_) / static_cast<double>(limit_) * 60.0;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(std::max(0.0, seconds)));
}

std::string format_reset(Duration d) {
  auto ms = std::chrono::duration_cast<Millis>(d).count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

}  // namespace ballast::sim
