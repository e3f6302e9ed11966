// How long to wait before another attempt: full-jitter exponential backoff, the upstream's own
// hints (Retry-After, retry-after-ms, x-ratelimit-reset-*), and the retry budget that keeps a
// failing upstream from being hammered. Where the attempt goes is policy/failover.hpp's. Pure: time and
// randomness are arguments.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/time.hpp"

namespace ballast {

struct RetryPolicy {
  int max_attempts = 3;            // attempts per request, the first included
  Millis base{250};                // backoff before retry n: uniform in [0, min(cap, base * 2^(n-1))]
  Millis cap{8'000};               // the largest backoff
  Millis retry_after_cap{60'000};  // an upstream hint longer than this is never waited for
  Millis max_same_wait{2'000};     // the longest wait before a retry on the endpoint that just failed
  double budget_ratio = 0.2;       // retries may be this share of the requests in the window …
  double budget_min_per_s =
      10;  // … plus this many per second of the window, so a quiet model can still retry
  Millis budget_window{10'000};
};

// The full-jitter backoff before retry number `retry` (1 = the second attempt). `unit` is a random
// number in [0, 1).
Millis backoff(const RetryPolicy& policy, int retry, double unit);

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// How long the upstream asked to be left alone, from its response headers: retry-after-ms, then
// Retry-After (seconds or an HTTP date, read against `wall_now`), then x-ratelimit-reset-requests /
// -tokens (OpenAI's "1s", "6m0s", "20ms"; the one whose remaining count is 0, else the shorter).
std::optional<Millis> retry_hint(const HeaderPairs& headers, std::chrono::system_clock::time_point wall_now);

// "6m0s", "1.5s", "20ms", "2h3m": the durations OpenAI puts in x-ratelimit-reset-*.
std::optional<Millis> parse_go_duration(std::string_view text);

// Retries are allowed while retries in the window stay under ratio × requests + min_per_s × window.
// Counted in one-second slots so that old traffic ages out smoothly. Not thread-safe: the caller
// holds its model's lock.
class RetryBudget {
 public:
  explicit RetryBudget(const RetryPolicy& policy);

  void record_request(TimePoint now);
  // A retry the client made itself (x-stainless-retry-count > 0): it spends the budget like ours.
  void record_client_retry(TimePoint now);
  // True, and counted, when one more retry fits in the budget.
  bool try_spend(TimePoint now);

  double requests(TimePoint now);
  double retries(TimePoint now);
  double allowed(TimePoint now);

 private:
  struct Slot {
    int64_t second = -1;
    uint32_t requests = 0;
    uint32_t retries = 0;
  };
  Slot& slot(TimePoint now);
  template <typename F>
  double sum(TimePoint now, F field);

  double ratio_;
  double min_per_window_;
  int64_t window_s_;
  std::array<Slot, 64> slots_{};  // window_s_ ≤ 64
};

}  // namespace ballast
