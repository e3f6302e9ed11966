#include <gtest/gtest.h>

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

TEST(Sweep, DoublesThenBisectsToTheKnee) {
  Sweep s(1, 1024, true);
  std::vector<double> tried;
  // A target whose SLO holds up to 11 concurrent requests.
  while (auto next = s.next()) {
    tried.push_back(*next);
    s.report(*next, *next <= 11);
  }
  EXPECT_EQ(tried, (std::vector<double>{1, 2, 4, 8, 16, 12, 10, 11}));
  EXPECT_EQ(s.knee(), 11);
  EXPECT_FALSE(s.capped());
}

TEST(Sweep, NoKneeWhenTheFirstBreaksAndCappedWhenNothingDoes) {
  Sweep first(1, 64, true);
  first.report(*first.next(), false);
  EXPECT_EQ(first.next(), std::nullopt);
  EXPECT_EQ(first.knee(), std::nullopt);
  Sweep never(1, 8, true);
  while (auto n = never.next()) never.report(*n, true);
  EXPECT_EQ(never.knee(), 8);
  EXPECT_TRUE(never.capped());
  Sweep rate(100, 100000, false);  // rates stop within 5%
  int runs = 0;
  while (auto n = rate.next()) {
    rate.report(*n, *n <= 730);
    ++runs;
  }
  EXPECT_GE(*rate.knee(), 730 * 0.95);
  EXPECT_LE(*rate.knee(), 730);
  EXPECT_LT(runs, 12);
}

Sample ok(uint64_t latency_ms, double second) {
  Sample s;
  s.latency_us = latency_ms * 1000;
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
  EXPECT_DOUBLE_EQ(r.throughput(), 50);
  EXPECT_EQ(slo_breach(r, {0, 0, 0.05}), "");
  EXPECT_EQ(slo_breach(r, {0, 0, 0.01}), "error rate 2.0% > 1.0%");
  EXPECT_EQ(slo_breach(r, {0, 50, 0.05}), "p99 latency 100 ms > 50 ms");
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
