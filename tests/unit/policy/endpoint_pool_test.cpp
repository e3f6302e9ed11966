#include "policy/endpoint_pool.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ballast {
namespace {

using namespace std::chrono_literals;

const TimePoint t0{1000s};

EndpointSpec spec(std::string name, int priority = 0) {
  EndpointSpec s;
  s.name = std::move(name);
  s.priority = priority;
  return s;
}

AttemptFact failed(size_t endpoint) {
  AttemptFact f;
  f.endpoint = endpoint;
  f.retryable = true;
  return f;
}

TEST(EndpointPool, TheFirstAttemptGoesToTheBestTier) {
  EndpointPool p("m", {spec("fallback", 1), spec("primary", 0)}, OutlierPolicy{}, RetryPolicy{}, 30s, 42, t0);
  auto c = p.choose({}, 0, 30s, t0);
  EXPECT_EQ(c.endpoint, 1);
  EXPECT_EQ(c.where, NextAttempt::Where::none);
  EXPECT_FALSE(c.retry);
}

TEST(EndpointPool, NeverEjectsTheLastEndpointStanding) {
  OutlierPolicy o;
  o.consecutive_failures = 1;
  EndpointPool p("m", {spec("a"), spec("b")}, o, RetryPolicy{}, 30s, 42, t0);
  EXPECT_EQ(p.report(0, Verdict::Health::failure, t0), HealthEvent::ejected);
  EXPECT_EQ(p.report(1, Verdict::Health::failure, t0), HealthEvent::none);
  EXPECT_EQ(p.choose({}, 0, 30s, t0).endpoint, 1);
}

TEST(EndpointPool, ARateLimitRefusalIsBoundedByTheQueueTimeoutAndTheClient) {
  EndpointSpec s = spec("a");
  s.rpm = 1;  // one now, the next in a minute
  EndpointPool p("m", {s}, OutlierPolicy{}, RetryPolicy{}, 30s, 42, t0);
  EXPECT_EQ(p.choose({}, 0, 600s, t0).endpoint, 0);
  auto refused = p.choose({}, 0, 600s, t0);
  EXPECT_EQ(refused.endpoint, -1);
  EXPECT_EQ(refused.refusal, ErrorCode::rate_limited);
  EXPECT_EQ(refused.retry_after, 30s) << "the bucket says 60 s; never more than timeouts.queue";
  EXPECT_EQ(p.choose({}, 0, 5s, t0).retry_after, 5s) << "nor more than the client has left";
}

TEST(EndpointPool, NoEndpointAvailableIsRefusedWithABoundedRetryAfter) {
  OutlierPolicy o;
  o.consecutive_failures = 1;
  o.base_ejection = 120s;
  EndpointPool p("m", {spec("a"), spec("b")}, o, RetryPolicy{}, 30s, 42, t0);
  p.report(0, Verdict::Health::failure, t0);         // a out for 120 s
  p.report(1, Verdict::Health::failure, t0 + 120s);  // a is half-open (standing), so b goes out
  EXPECT_EQ(p.choose({}, 0, 600s, t0 + 121s).endpoint, 0) << "a's half-open probe";
  auto refused = p.choose({}, 0, 600s, t0 + 121s);  // a is probing, b ejected until t0 + 240 s
  EXPECT_EQ(refused.endpoint, -1);
  EXPECT_EQ(refused.refusal, ErrorCode::all_endpoints_down);
  EXPECT_EQ(refused.retry_after, 1000ms) << "the probe decides within a second or so";
  EXPECT_EQ(p.choose({}, 0, 400ms, t0 + 121s).retry_after, 400ms) << "never past the client's deadline";
}

TEST(RetryAfterHeaders, SecondsRoundUpButNeverPastTheBound) {
  auto r = retry_after_headers(2400ms, 30s, 600s);
  EXPECT_EQ(r.ms, 2400ms);
  EXPECT_EQ(r.seconds, 3);
  // A client with 0.3 s left: 285 ms, and 0 whole seconds (1 would be past its deadline).
  r = retry_after_headers(285ms, 30s, 300ms);
  EXPECT_EQ(r.ms, 285ms);
  EXPECT_EQ(r.seconds, 0);
  r = retry_after_headers(2400ms, 2500ms, 600s);  // timeouts.queue: 2500ms
  EXPECT_EQ(r.seconds, 2);
  r = retry_after_headers(90s, 30s, 600s);
  EXPECT_EQ(r.ms, 30s);
  EXPECT_EQ(r.seconds, 30);
  EXPECT_EQ(retry_after_headers(5s, 30s, -1s).ms, 1ms) << "a deadline already gone: at least 1 ms";
}

TEST(EndpointPool, RetriesSpendTheBudgetAndStopWhenItIsSpent) {
  RetryPolicy r;
  r.budget_ratio = 0;
  r.budget_min_per_s = 0.1;  // one retry in the 10 s window
  EndpointPool p("m", {spec("a"), spec("b")}, OutlierPolicy{}, r, 30s, 42, t0);
  std::vector<AttemptFact> h{failed(0)};
  auto first = p.choose(h, 0, 30s, t0);
  EXPECT_EQ(first.endpoint, 1);
  EXPECT_TRUE(first.retry);
  auto second = p.choose(h, 0, 30s, t0);
  EXPECT_EQ(second.endpoint, -1);
  EXPECT_EQ(second.denied, RetryDenial::budget);
}

TEST(EndpointPool, AHealthCheckReadmitsOnlyAnExpiredEjection) {
  OutlierPolicy o;
  o.consecutive_failures = 1;
  EndpointPool p("m", {spec("a"), spec("b")}, o, RetryPolicy{}, 30s, 42, t0);
  p.report(0, Verdict::Health::failure, t0);
  EXPECT_EQ(p.check_result(0, true, t0 + 10s), HealthEvent::none);
  EXPECT_EQ(p.check_result(0, true, t0 + 30s), HealthEvent::readmitted);
  auto v = p.view(t0 + 30s);
  EXPECT_EQ(v.endpoints[0].health, OutlierState::State::healthy);
}

}  // namespace
}  // namespace ballast
