#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "load/histogram.hpp"
#include "load/report.hpp"
#include "load/stats.hpp"
#include "load/sweep.hpp"

namespace ballast::load {
namespace {

TEST(Histogram, ExactBelow128AndWithin2PercentAbove) {
  for (uint64_t v = 0; v < 128; ++v) EXPECT_EQ(Histogram::upper_bound(Histogram::index_of(v)), v);
  for (uint64_t v : {128ull, 1000ull, 123456ull, 9'999'999ull, 3'600'000'000ull}) {
    uint64_t up = Histogram::upper_bound(Histogram::index_of(v));
    EXPECT_GE(up, v);
    EXPECT_LE(static_cast<double>(up - v), static_cast<double>(v) * 0.016) << v;
  }
}

TEST(Histogram, Percentiles) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v * 1000);  // 1..100 ms
  EXPECT_EQ(h.count(), 100u);
  EXPECT_NEAR(static_cast<double>(h.percentile(50)), 50'000, 800);
  EXPECT_NEAR(static_cast<double>(h.percentile(99)), 99'000, 1600);
  EXPECT_EQ(h.percentile(100), 100'000u);
  EXPECT_EQ(h.max(), 100'000u);
  EXPECT_DOUBLE_EQ(h.mean(), 50'500);
  Histogram other;
  other.record(5'000'000);
  h.merge(other);
  EXPECT_EQ(h.max(), 5'000'000u);
  EXPECT_EQ(Histogram().percentile(99), 0u);
}

// A run against a target that meets the SLO up to `limit` (Goal::slo).
Sweep::Point within_up_to(double load, double limit) {
  return {load, load <= limit, load, 100};
}

TEST(Sweep, DoublesThenBisectsToTheKnee) {
  Sweep s(1, 1024, true);
  std::vector<double> tried;
  // A target whose SLO holds up to 11 concurrent requests.
  while (auto next = s.next()) {
    tried.push_back(*next);
    s.report(within_up_to(*next, 11));
  }
  EXPECT_EQ(tried, (std::vector<double>{1, 2, 4, 8, 16, 12, 10, 11}));
  EXPECT_EQ(s.knee(), 11);
  EXPECT_FALSE(s.capped());
}

TEST(Sweep, NoKneeWhenTheFirstBreaksAndCappedWhenNothingDoes) {
  Sweep first(1, 64, true);
  first.report(within_up_to(*first.next(), 0));
  EXPECT_EQ(first.next(), std::nullopt);
  EXPECT_EQ(first.knee(), std::nullopt);
  Sweep never(1, 8, true);
  while (auto n = never.next()) never.report(within_up_to(*n, 1e9));
  EXPECT_EQ(never.knee(), 8);
  EXPECT_TRUE(never.capped());
  Sweep rate(100, 100000, false);  // rates stop within 5%
  int runs = 0;
  while (auto n = rate.next()) {
    rate.report(within_up_to(*n, 730));
    ++runs;
  }
  EXPECT_GE(*rate.knee(), 730 * 0.95);
  EXPECT_LE(*rate.knee(), 730);
  EXPECT_LT(runs, 12);
}

// A closed loop against a server that runs `capacity` generations at once, each taking 100 ms,
// and queues the rest first come first served: throughput grows with the load up to the
// capacity and not beyond. Latency's p50 stays put until half the requests wait for a round (so
// a p50 rule alone would accept loads well past the capacity), then doubles. `noise` shakes the
// throughput by up to ±2%, as a real run does.
Sweep::Point fifo_server(double load, double capacity, double noise = 0) {
  double throughput = std::min(load, capacity) / 0.1 * (1 + noise);
  double p50 = load <= 1.5 * capacity ? 100 : 100 * std::ceil(load / capacity);
  return {load, true, throughput, p50};
}

TEST(Sweep, WithoutAnSloTheKneeIsWhereThroughputStopsGrowing) {
  for (double capacity : {4, 8, 16}) {
    Sweep s(1, 1024, true, Sweep::Goal::throughput);
    std::vector<double> tried;
    uint32_t shake = 7;
    while (auto n = s.next()) {
      tried.push_back(*n);
      shake = shake * 1103515245 + 12345;
      double noise = (static_cast<double>(shake % 401) / 200 - 1) * 0.02;
      s.report(fifo_server(*n, capacity, noise));
      ASSERT_LT(tried.size(), 16u);
    }
    EXPECT_EQ(s.knee(), capacity) << "capacity " << capacity;
    EXPECT_FALSE(s.capped());
    EXPECT_LE(tried.size(), 10u) << "capacity " << capacity;
  }
}

TEST(Sweep, WithoutAnSloLatencyBoundsALoadThatStillAddsThroughput) {
  // A batching server (vLLM-like): every request slows as the batch grows, but throughput keeps
  // growing. The knee stops where p50 passes 1.5 × the lightest load's, not at the best throughput.
  auto batching = [](double load) {
    double latency = 100 * (1 + load / 32);
    return Sweep::Point{load, true, load / (latency / 1000), latency};
  };
  Sweep s(1, 1024, true, Sweep::Goal::throughput);
  while (auto n = s.next()) s.report(batching(*n));
  ASSERT_TRUE(s.knee());
  EXPECT_LE(batching(*s.knee()).p50_ms, 1.5 * batching(1).p50_ms);
  EXPECT_GE(batching(*s.knee()).throughput, 0.95 * batching(17).throughput);  // 17: the last within 1.5×
  EXPECT_LE(*s.knee(), 17);
}

TEST(Sweep, WithoutAnSloErrorsEndTheSweep) {
  // Throughput would grow to 32, but from 10 up the target fails too often.
  Sweep s(1, 1024, true, Sweep::Goal::throughput);
  while (auto n = s.next()) s.report({*n, *n < 10, std::min(*n, 32.0) * 10, 100});
  EXPECT_EQ(s.knee(), 9);
  Sweep broken(1, 1024, true, Sweep::Goal::throughput);
  broken.report({1, false, 0, 100});
  EXPECT_EQ(broken.next(), std::nullopt);
  EXPECT_EQ(broken.knee(), std::nullopt);
  Sweep growing(1, 64, true, Sweep::Goal::throughput);
  while (auto n = growing.next()) growing.report({*n, true, *n * 10, 100});
  EXPECT_EQ(growing.knee(), 64);
  EXPECT_TRUE(growing.capped());
}

Sample ok(uint64_t latency_ms, double second) {
  Sample s;
  s.latency_us = latency_ms * 1000;
  s.ended = second + static_cast<double>(latency_ms) / 1000;
  s.second = second;
  return s;
}

TEST(RunStats, ClassesTimelineAndSlo) {
  RunStats r;
  r.duration_s = 2;
  for (int i = 0; i < 98; ++i) r.add(ok(100, i < 50 ? 0.5 : 1.5));
  Sample refused;
  refused.outcome = Outcome::server_error;
  refused.status = 503;
  refused.code = "queue_full";
  refused.latency_us = 1000;
  r.add(refused);
  r.add(refused);
  EXPECT_EQ(r.requests, 100u);
  EXPECT_EQ(r.ok, 98u);
  EXPECT_EQ(r.by_outcome.at("server_error"), 2u);
  EXPECT_EQ(r.by_status.at(503), 2u);
  EXPECT_EQ(r.by_code.at("queue_full"), 2u);
  ASSERT_EQ(r.timeline.size(), 2u);
  EXPECT_EQ(r.timeline[0].sent, 52u);
  EXPECT_DOUBLE_EQ(r.throughput(), 49);  // 98 answers within the 2 s window
  EXPECT_EQ(r.timeline[0].done + r.timeline[1].done, 98u);
  EXPECT_EQ(slo_breach(r, {0, 0, 0.05}), "");
  EXPECT_EQ(slo_breach(r, {0, 0, 0.01}), "error rate 2.0% > 1.0%");
  EXPECT_EQ(slo_breach(r, {0, 50, 0.05}), "p99 latency 100 ms > 50 ms");
}

TEST(RunStats, ThroughputCountsOnlyAnswersWithinTheWindow) {
  RunStats r;
  r.duration_s = 10;
  // 10 answers a second for 10 s, then 30 that were sent in time but ended after the window.
  for (int i = 0; i < 100; ++i) {
    Sample s = ok(100, i / 10.0);
    s.ended = i / 10.0 + 0.05;
    s.tokens = s.tokens_in_window = 4;
    r.add(s);
  }
  for (int i = 0; i < 30; ++i) {
    Sample s = ok(2000, 9.5);
    s.ended = 11.5;
    s.open_at_end = true;
    s.tokens = 4;
    s.tokens_in_window = 1;
    r.add(s);
  }
  EXPECT_EQ(r.requests, 130u);
  EXPECT_EQ(r.ok, 130u);
  EXPECT_EQ(r.ok_in_window, 100u);
  EXPECT_EQ(r.open_at_end, 30u);
  EXPECT_DOUBLE_EQ(r.throughput(), 10);
  EXPECT_DOUBLE_EQ(r.tokens_per_s(), 43);  // 400 + 30 that arrived in time, over 10 s
  ASSERT_EQ(r.timeline.size(), 10u);
  EXPECT_EQ(r.timeline[9].done, 10u);  // nothing lands after the window
}

// 16 workers against a target that serves 8 at a time in 150 ms: the first round, 8 answered at
// once and 8 after one wait, is left out; from then on every answer waits a round, and the
// sustained figure is the target's 8 / 0.15 s, not more.
TEST(RunStats, SustainedThroughputLeavesOutEachWorkersFirstAnswer) {
  RunStats r;
  r.mode = "closed";
  r.load = 16;
  r.duration_s = 1.5;
  for (int i = 0; i < 16; ++i) {
    Sample s = ok(i < 8 ? 150 : 300, 0);
    s.warmup = true;
    r.add(s);
  }
  for (int i = 0; i < 64; ++i) r.add(ok(300, 0.3));
  EXPECT_EQ(r.steady_ok, 64u);
  EXPECT_NEAR(r.sustained_throughput(), 8 / 0.15, 1e-9);
}

TEST(RunStats, RefusalsAreCountedWithTheWaitTheyAskedFor) {
  RunStats r;
  r.duration_s = 1;
  Sample s;
  s.outcome = Outcome::refused;
  s.status = 429;
  s.code = "queue_full";
  s.retry_after_s = 2;
  r.add(s);
  s.retry_after_s = 0.5;
  r.add(s);
  EXPECT_EQ(r.refused, 2u);
  EXPECT_DOUBLE_EQ(r.refused_wait_s, 2.5);
  EXPECT_EQ(r.by_outcome.at("refused"), 2u);
  EXPECT_DOUBLE_EQ(r.error_rate(), 1);
}

TEST(RunStats, AFirstTokenSloHoldsNonStreamedAnswersToTheirLatency) {
  RunStats r;
  r.duration_s = 1;
  for (int i = 0; i < 10; ++i) r.add(ok(400, 0.1));
  // Not streamed: no first token measured, so the whole answer stands for it.
  EXPECT_EQ(slo_breach(r, {100, 0, 0.01}), "p99 first token 400 ms (the whole answer) > 100 ms");
  EXPECT_EQ(slo_breach(r, {500, 0, 0.01}), "");
  Sample streamed = ok(400, 0.2);
  streamed.ttft_us = 50'000;
  RunStats s;
  s.duration_s = 1;
  s.add(streamed);
  EXPECT_EQ(slo_breach(s, {100, 0, 0.01}), "");
}

TEST(RunStats, RequestsNeverSentAddNoLatency) {
  RunStats r;
  r.duration_s = 1;
  r.add(ok(100, 0.1));
  Sample dropped;
  dropped.outcome = Outcome::not_sent;
  dropped.second = 0.5;
  for (int i = 0; i < 10; ++i) r.add(dropped);
  EXPECT_EQ(r.requests, 11u);
  EXPECT_EQ(r.by_outcome.at("not_sent"), 10u);
  EXPECT_EQ(r.latency.count(), 1u);
  EXPECT_NEAR(static_cast<double>(r.latency.percentile(50)), 100'000, 1'600);
}

TEST(Recommendation, FromTheKneeRun) {
  Report rep;
  rep.target = "http://127.0.0.1:8000/v1";
  rep.model = "llama";
  rep.sweep = true;
  RunStats knee;
  knee.mode = "closed";
  knee.load = 8;
  for (int i = 0; i < 100; ++i) {
    Sample s = ok(900, 0);
    s.ttft_us = 300'000;
    knee.add(s);
  }
  rep.runs.push_back(knee);
  rep.knee = 8;
  Recommendation rec = recommend(rep);
  EXPECT_EQ(rec.max_in_flight, 8);
  EXPECT_EQ(rec.first_token, Millis(1000));  // twice 300 ms, in whole seconds
  EXPECT_EQ(rec.total, Millis(2000));        // twice 900 ms
  EXPECT_NE(rec.ballast_yaml.find("max_in_flight: 8"), std::string::npos);
  EXPECT_NE(rec.langchain.find("\"max_concurrency\": 8"), std::string::npos);
  EXPECT_NE(rec.asyncio.find("asyncio.Semaphore(8)"), std::string::npos);
  // An open-loop knee: Little's law turns the rate into the concurrency it needs.
  rep.runs[0].mode = "open";
  rep.runs[0].load = 20;  // 20/s × 0.9 s = 18 in flight
  rep.knee = 20;
  EXPECT_EQ(recommend(rep).max_in_flight, 18);
}

}  // namespace
}  // namespace ballast::load
