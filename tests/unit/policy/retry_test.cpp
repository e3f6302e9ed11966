#include "policy/retry.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, FullJitterDoublesUpToTheCap) {
  RetryPolicy p;  // base 250ms, cap 8s
  EXPECT_EQ(backoff(p, 1, 0.0), 0ms);
  EXPECT_EQ(backoff(p, 1, 0.5), 125ms);
  EXPECT_EQ(backoff(p, 2, 0.5), 250ms);
  EXPECT_EQ(backoff(p, 3, 0.999), 999ms);
  EXPECT_EQ(backoff(p, 6, 0.5), 4000ms);
  EXPECT_EQ(backoff(p, 7, 0.5), 4000ms);  // 16s capped at 8s
  EXPECT_EQ(backoff(p, 40, 0.5), 4000ms);
}

TEST(RetryHint, RetryAfterMsWins) {
  HeaderPairs h = {{"Retry-After", "7"}, {"retry-after-ms", "1500"}};
  EXPECT_EQ(retry_hint(h, {}), 1500ms);
}

TEST(RetryHint, RetryAfterSecondsAndDate) {
  EXPECT_EQ(retry_hint({{"retry-after", "1"}}, {}), 1000ms);
  EXPECT_EQ(retry_hint({{"retry-after", "0.2"}}, {}), 200ms);
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(retry_hint({{"retry-after", "Sun, 06 Nov 1994 08:49:40 GMT"}}, now), 3000ms);
  EXPECT_EQ(retry_hint({{"retry-after", "Sun, 06 Nov 1994 08:49:30 GMT"}}, now), 0ms);
  EXPECT_EQ(retry_hint({{"retry-after", "soon"}}, now), std::nullopt);
}

TEST(RetryHint, ADateBeyondTheClocksRangeIsFarAwayNotGarbage) {
  auto now = std::chrono::system_clock::from_time_t(1'717'200'000);  // 2024-06-01
  auto far = retry_hint({{"retry-after", "Sat, 01 Jun 8473 00:00:30 GMT"}}, now);
  ASSERT_TRUE(far);
  EXPECT_GT(*far, Millis(std::chrono::hours(24 * 365 * 100)));  // clamped to 2200: far past any cap
  EXPECT_EQ(retry_hint({{"retry-after", "Mon, 01 Jan 0001 00:00:00 GMT"}}, now), 0ms);
}

TEST(RetryHint, RateLimitResetOfTheExhaustedLimit) {
  HeaderPairs h = {{"x-ratelimit-reset-requests", "20ms"},
                   {"x-ratelimit-remaining-requests", "59"},
                   {"x-ratelimit-reset-tokens", "6m0s"},
                   {"x-ratelimit-remaining-tokens", "0"}};
  EXPECT_EQ(retry_hint(h, {}), 360'000ms);
  HeaderPairs neither = {{"x-ratelimit-reset-requests", "1.5s"}, {"x-ratelimit-reset-tokens", "2s"}};
  EXPECT_EQ(retry_hint(neither, {}), 1500ms);
  EXPECT_EQ(retry_hint({}, {}), std::nullopt);
}

TEST(GoDuration, Parses) {
  EXPECT_EQ(parse_go_duration("1m30s"), 90'000ms);
  EXPECT_EQ(parse_go_duration("2h"), 7'200'000ms);
  EXPECT_EQ(parse_go_duration("0.5s"), 500ms);
  EXPECT_EQ(parse_go_duration("s"), std::nullopt);
  EXPECT_EQ(parse_go_duration("10"), std::nullopt);
}

TEST(RetryBudget, FloorThenRatioOfRequests) {
  RetryPolicy p;
  p.budget_ratio = 0.2;
  p.budget_min_per_s = 0.5;  // 5 per 10 s window
  RetryBudget b(p);
  TimePoint t0{std::chrono::seconds(1000)};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.try_spend(t0)) << i;
  EXPECT_FALSE(b.try_spend(t0));
  for (int i = 0; i < 10; ++i) b.record_request(t0);  // 20% of 10 = 2 more
  EXPECT_TRUE(b.try_spend(t0));
  EXPECT_TRUE(b.try_spend(t0));
  EXPECT_FALSE(b.try_spend(t0));
  // A client's own retries spend the same budget.
  EXPECT_EQ(b.retries(t0), 7);
  b.record_client_retry(t0);
  EXPECT_EQ(b.retries(t0), 8);
  // Ten seconds later the window has moved past all of it.
  EXPECT_TRUE(b.try_spend(t0 + 10s));
  EXPECT_EQ(b.retries(t0 + 10s), 1);
  EXPECT_EQ(b.requests(t0 + 10s), 0);
}

TEST(RetryBudget, OldSlotsAgeOut) {
  RetryPolicy p;
  p.budget_min_per_s = 0;
  p.budget_ratio = 1;
  RetryBudget b(p);
  TimePoint t0{std::chrono::seconds(5000)};
  b.record_request(t0);
  EXPECT_TRUE(b.try_spend(t0 + 9s));
  EXPECT_FALSE(b.try_spend(t0 + 9s));
  EXPECT_FALSE(b.try_spend(t0 + 10s));  // the request aged out
}

}  // namespace
}  // namespace ballast

namespace ballast {
namespace {

using namespace std::chrono_literals;

}  // namespace
}  // namespace ballast
