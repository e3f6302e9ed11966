// The simulator's --rpm/--tpm limits, as OpenAI enforces them: a bucket per minute that refills
// continuously. It reports what OpenAI's x-ratelimit-* headers carry. Time is passed in.
#pragma once

#include <cstdint>

#include "common/time.hpp"

namespace ballast::sim {

class RateWindow {
 public:
  // `per_minute` 0 means unlimited.
  explicit RateWindow(int64_t per_minute, TimePoint now);

  bool limited() const { return limit_ > 0; }
  // Takes `n` units if they are available now; otherwise takes nothing.
  bool try_take(int64_t n, TimePoint now);
  // Gives back units that were taken but not used (tokens estimated above the real count).
  void give_back(int64_t n, TimePoint now);
  int64_t limit() const { return limit_; }
  int64_t remaining(TimePoint now);
  // How long until `n` units are available (0 if they are now).
  Duration wait_for(int64_t n, TimePoint now);
  // How long until the bucket is full again: OpenAI's x-ratelimit-reset-*.
  Duration until_full(TimePoint now);

 private:
  void refill(TimePoint now);
  int64_t limit_;
  double level_;  // units available
  TimePoint last_;
};

// OpenAI's reset format: "1s", "6m0s", "120ms".
std::string format_reset(Duration d);

}  // namespace ballast::sim
