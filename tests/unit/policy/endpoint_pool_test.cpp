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

TEST(EndpointPoolReload, AKeptEndpointKeepsItsSlotsHealthAndBucketsUnderTheNewSettings) {
  OutlierPolicy o;
  o.consecutive_failures = 1;
  EndpointSpec a = spec("a");
  a.admission.max_in_flight = 1;
  a.rpm = 60;  // a bucket of 10
  EndpointPool old("m", {a, spec("gone")}, o, RetryPolicy{}, 30s, 42, t0);
  // One request holds a's slot, a second waits for it, and "gone" is ejected.
  ASSERT_EQ(old.admission(0).arrive("k", t0, t0 + 60s).decision, Admission::Decision::admitted);
  auto queued = old.admission(0).arrive("k", t0, t0 + 60s);
  ASSERT_EQ(queued.decision, Admission::Decision::queued);
  ASSERT_EQ(old.report(1, Verdict::Health::failure, t0), HealthEvent::ejected);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(old.choose({}, 0, 60s, t0).endpoint, 0);  // spends 4 of a's 10

  EndpointSpec a2 = a;
  a2.admission.max_in_flight = 2;
  a2.rpm = 120;  // a bucket of 20
  EndpointPool next("m", {spec("new"), a2}, o, RetryPolicy{}, 30s, 7, t0);
  auto changes = next.adopt(old, t0);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].first, 1u) << "a is the new pool's second endpoint";
  ASSERT_EQ(changes[0].second.granted.size(), 1u) << "the higher limit admits the waiter at once";
  EXPECT_EQ(changes[0].second.granted[0], queued.ticket);
  EXPECT_EQ(next.admission(1).in_flight(), 2) << "both requests count against the one endpoint";
  EXPECT_EQ(&next.admission(1), &old.admission(0)) << "requests under either configuration share it";
  EXPECT_EQ(next.view(t0).endpoints[1].rpm_available, 16.0) << "what was spent stays spent";
  EXPECT_EQ(next.view(t0).endpoints[0].in_flight, 0) << "a new endpoint starts fresh";
}

TEST(EndpointPoolReload, AnEjectionCarriesOverAndALoweredLimitAdmitsNoOneUntilSlotsFree) {
  OutlierPolicy o;
  o.consecutive_failures = 1;
  EndpointSpec a = spec("a");
  a.admission.max_in_flight = 2;
  EndpointPool old("m", {a, spec("b")}, o, RetryPolicy{}, 30s, 42, t0);
  ASSERT_EQ(old.report(1, Verdict::Health::failure, t0), HealthEvent::ejected);
  ASSERT_EQ(old.admission(0).arrive("k", t0, t0 + 60s).decision, Admission::Decision::admitted);
  ASSERT_EQ(old.admission(0).arrive("k", t0, t0 + 60s).decision, Admission::Decision::admitted);

  EndpointSpec a2 = a;
  a2.admission.max_in_flight = 1;
  EndpointPool next("m", {a2, spec("b")}, o, RetryPolicy{}, 30s, 7, t0);
  next.adopt(old, t0);
  EXPECT_EQ(next.view(t0).endpoints[1].health, OutlierState::State::ejected);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(next.choose({}, 0, 60s, t0).endpoint, 0) << "b is still ejected";
  EXPECT_EQ(next.admission(0).arrive("k", t0, t0 + 60s).decision, Admission::Decision::queued);
  // The old configuration's requests end: only then does one slot (the new limit) open.
  auto first = old.admission(0).finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  EXPECT_TRUE(first.granted.empty()) << "2 in flight under a limit of 1: one ending leaves it full";
  auto second = old.admission(0).finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  EXPECT_EQ(second.granted.size(), 1u);
}

TEST(LimitScope, SharedKeepsTheSlotsWholeAndTheRatesInRedis) {
  EndpointSpec s = spec("a");
  s.admission.max_in_flight = 8;
  s.rpm = 600;
  s.tpm = 90'000;
  EndpointSpec shared = scoped(s, LimitScope::shared, 3);
  EXPECT_EQ(shared.admission.max_in_flight, 8);
  EXPECT_EQ(shared.rpm, 0);
  EXPECT_EQ(shared.tpm, 0);
  EXPECT_EQ(scoped(s, LimitScope::local, 3).rpm, 600);
}

TEST(LimitScope, AFallbackKeepsThisReplicasShareAndNeverNothing) {
  EndpointSpec s = spec("a");
  s.admission.max_in_flight = 8;
  s.rpm = 600;
  EndpointSpec share = scoped(s, LimitScope::fallback, 3);
  EXPECT_EQ(share.admission.max_in_flight, 2);  // 3 × 2 ≤ 8: never more than the whole
  EXPECT_DOUBLE_EQ(share.rpm, 200);
  s.admission.max_in_flight = 2;
  EXPECT_EQ(scoped(s, LimitScope::fallback, 3).admission.max_in_flight, 1);
  EXPECT_EQ(scoped(s, LimitScope::fallback, 1).admission.max_in_flight, 2);

  EndpointSpec adaptive = spec("b");
  adaptive.admission.adaptive = true;
  adaptive.admission.max_limit = 90;
  adaptive.admission.initial_limit = 16;
  EndpointSpec a = scoped(adaptive, LimitScope::fallback, 3);
  EXPECT_EQ(a.admission.max_limit, 30);
  EXPECT_EQ(a.admission.initial_limit, 5);
}

TEST(LimitScope, RescopingAPoolKeepsWhatItHoldsAndAdmitsWaitersWhenTheLimitGrows) {
  EndpointSpec s = spec("a");
  s.admission.max_in_flight = 6;
  EndpointPool pool("m", {s}, OutlierPolicy{}, RetryPolicy{}, Millis(30'000), 1, t0);
  pool.scope(0, LimitScope::fallback, 3, t0);  // 2 here while Redis is away
  Admission& a = pool.admission(0);
  const TimePoint far = t0 + 60s;
  EXPECT_EQ(a.arrive("k", t0, far).decision, Admission::Decision::admitted);
  EXPECT_EQ(a.arrive("k", t0, far).decision, Admission::Decision::admitted);
  auto third = a.arrive("k", t0, far);
  ASSERT_EQ(third.decision, Admission::Decision::queued);
  // Redis is back: the whole limit here (Redis bounds the sum), and the waiter is let in.
  Admission::Changes changes = pool.scope(0, LimitScope::shared, 3, t0 + 1s);
  ASSERT_EQ(changes.granted.size(), 1u);
  EXPECT_EQ(changes.granted[0], third.ticket);
  EXPECT_EQ(a.in_flight(), 3);
  EXPECT_EQ(a.limit(), 6);
}

}  // namespace
}  // namespace ballast
