#include "policy/failover.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ballast {
namespace {

using namespace std::chrono_literals;
using W = NextAttempt::Where;

// Endpoints by tier: {0, 0, 1} is two endpoints in the first tier and one fallback.
std::vector<Candidate> tiers(std::initializer_list<int> priorities) {
  std::vector<Candidate> c;
  for (int p : priorities) {
    Candidate x;
    x.priority = p;
    c.push_back(x);
  }
  return c;
}

AttemptFact failed(size_t endpoint, std::optional<Millis> hint = std::nullopt) {
  AttemptFact f;
  f.endpoint = endpoint;
  f.retryable = true;
  f.hint = hint;
  return f;
}

AttemptFact silent(size_t endpoint) {
  AttemptFact f = failed(endpoint);
  f.silent = true;
  return f;
}

const auto half = [] { return 0.5; };

TEST(Failover, AnotherEndpointOfTheSameTierFirstAndAtOnce) {
  auto c = tiers({0, 0, 1});
  std::vector<AttemptFact> h{failed(0, 1000ms)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::other_in_tier);
  EXPECT_EQ(n.endpoint, 1);
  EXPECT_EQ(n.wait, 0ms);
  EXPECT_TRUE(n.spends_budget);
}

TEST(Failover, AFastTransientFailureGoesBackToTheSameEndpointOnce) {
  auto c = tiers({0, 1});
  std::vector<AttemptFact> h{failed(0)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::same_endpoint);
  EXPECT_EQ(n.endpoint, 0);
  EXPECT_EQ(n.wait, 125ms);  // the backoff: 0.5 × 250 ms
  // It failed there twice: the next tier, at once.
  h.push_back(failed(0));
  n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 1);
  EXPECT_EQ(n.wait, 0ms);
}

TEST(Failover, AnEarlierFastFailureTakesTheAttemptLeftWhenTheOtherEndpointWentSilent) {
  // A answered a quick 503, then B went silent; with no other tier, A takes the third attempt.
  auto c = tiers({0, 0});
  std::vector<AttemptFact> h{failed(0), silent(1)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::same_endpoint);
  EXPECT_EQ(n.endpoint, 0);
  EXPECT_EQ(n.wait, 250ms);  // the backoff of a second retry: 0.5 × 500 ms
  // Not when A's hint is longer than retries.max_same_wait, nor when A itself went silent.
  h = {failed(0, 5000ms), silent(1)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).denied, RetryDenial::no_endpoint);
  h = {silent(0), silent(1)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).denied, RetryDenial::no_endpoint);
  // With a fallback tier, the last attempt goes there instead.
  auto with_fallback = tiers({0, 0, 1});
  h = {failed(0), silent(1)};
  n = next_attempt(RetryPolicy{}, with_fallback, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 2);
}

TEST(Failover, TheLastAttemptGoesToTheFallbackWhenThereIsOne) {
  // Two endpoints of the first tier failed once each: the third and last attempt is the fallback's,
  // not a second try on the first tier.
  auto c = tiers({0, 0, 1});
  std::vector<AttemptFact> h{failed(0), failed(1)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 2);
  // With no fallback, the last attempt may go back to the endpoint that blipped.
  auto one_tier = tiers({0, 0});
  EXPECT_EQ(next_attempt(RetryPolicy{}, one_tier, h, 30s, half).where, W::same_endpoint);
}

TEST(Failover, TheUpstreamsShortRetryAfterIsWaitedOutOnTheSameEndpoint) {
  auto c = tiers({0, 1});
  std::vector<AttemptFact> h{failed(0, 1000ms)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::same_endpoint);
  EXPECT_EQ(n.wait, 1000ms);
  // Longer than retries.max_same_wait (2 s): the fallback takes it at once.
  h = {failed(0, 2001ms)};
  n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.wait, 0ms);
  RetryPolicy patient;
  patient.max_same_wait = 5s;
  EXPECT_EQ(next_attempt(patient, c, h, 30s, half).where, W::same_endpoint);
}

TEST(Failover, ASilentEndpointIsNeverTriedAgainInTheSameRequest) {
  auto c = tiers({0, 1});
  std::vector<AttemptFact> h{silent(0)};
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 1);
  EXPECT_EQ(n.wait, 0ms);
  // With nowhere else to go, the timeout is the answer, at once.
  auto only = tiers({0});
  n = next_attempt(RetryPolicy{}, only, h, 30s, half);
  EXPECT_EQ(n.where, W::none);
  EXPECT_EQ(n.denied, RetryDenial::no_endpoint);
}

TEST(Failover, NoAttemptsBeyondMaxAttempts) {
  auto c = tiers({0, 0, 0, 0});
  std::vector<AttemptFact> h{failed(0), failed(1), failed(2)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).denied, RetryDenial::max_attempts);
}

TEST(Failover, NotRetryableIsFinal) {
  auto c = tiers({0, 1});
  AttemptFact f = failed(0);
  f.retryable = false;
  std::vector<AttemptFact> h{f};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).denied, RetryDenial::not_retryable);
}

TEST(Failover, FallbackOnCodesGoOnceToTheNextTierEvenPastMaxAttempts) {
  auto c = tiers({0, 0, 1, 2});
  AttemptFact f = failed(0);
  f.retryable = false;  // a 400: never retried on the same model
  f.fallback = true;
  std::vector<AttemptFact> h{f};
  RetryPolicy one;
  one.max_attempts = 1;
  NextAttempt n = next_attempt(one, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 2) << "not endpoint 1: the same tier is the same model";
  EXPECT_FALSE(n.spends_budget);
  // The fallback says the same: it does not cascade further.
  AttemptFact g = f;
  g.endpoint = 2;
  h.push_back(g);
  EXPECT_EQ(next_attempt(one, c, h, 30s, half).denied, RetryDenial::no_endpoint);
}

TEST(Failover, UnavailableEndpointsArePassedOver) {
  auto c = tiers({0, 0, 1});
  c[1].available = false;  // ejected, or over its rate limit
  std::vector<AttemptFact> h{failed(0)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).where, W::same_endpoint);
  c[0].available = false;  // its own failure ejected it
  NextAttempt n = next_attempt(RetryPolicy{}, c, h, 30s, half);
  EXPECT_EQ(n.where, W::next_tier);
  EXPECT_EQ(n.endpoint, 2);
  c[2].available = false;
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).denied, RetryDenial::no_endpoint);
}

TEST(Failover, NeverAWaitPastTheDeadline) {
  auto c = tiers({0});
  std::vector<AttemptFact> h{failed(0, 1000ms)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 999ms, half).denied, RetryDenial::deadline);
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 1001ms, half).wait, 1000ms);
  auto two = tiers({0, 1});
  EXPECT_EQ(next_attempt(RetryPolicy{}, two, std::vector<AttemptFact>{silent(0)}, 0ms, half).denied,
            RetryDenial::deadline);
}

TEST(Failover, TheNextTierIsTheNearestOneWithAnAvailableEndpoint) {
  auto c = tiers({0, 1, 2});
  c[1].available = false;
  std::vector<AttemptFact> h{silent(0)};
  EXPECT_EQ(next_attempt(RetryPolicy{}, c, h, 30s, half).endpoint, 2);
}

}  // namespace
}  // namespace ballast
