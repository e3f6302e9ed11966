#include "sim/faults.hpp"

#include <gtest/gtest.h>

namespace ballast::sim {
namespace {

TEST(Faults, ParsesEverySpec) {
  auto s = parse_fault("status=429,retry-after=2");
  ASSERT_TRUE(s.fault) << s.error;
  EXPECT_EQ(s.fault->kind, FaultKind::status);
  EXPECT_EQ(s.fault->value, 429);
  EXPECT_EQ(s.fault->retry_after, 2);
  EXPECT_EQ(parse_fault("blackhole").fault->kind, FaultKind::blackhole);
  EXPECT_EQ(parse_fault("reset").fault->kind, FaultKind::reset);
  EXPECT_EQ(parse_fault("slow-headers=300").fault->value, 300);
  EXPECT_EQ(parse_fault("slow-first-token=900").fault->kind, FaultKind::slow_first_token);
  EXPECT_EQ(parse_fault("stall-after=3").fault->value, 3);
  EXPECT_EQ(parse_fault("cut-after=3").fault->kind, FaultKind::cut_after);
  EXPECT_EQ(parse_fault("malformed").fault->kind, FaultKind::malformed);
  EXPECT_EQ(parse_fault("keepalive-only").fault->kind, FaultKind::keepalive_only);
  EXPECT_DOUBLE_EQ(parse_fault("status=503@0.25").fault->probability, 0.25);
}

TEST(Faults, ExplainsBadSpecs) {
  EXPECT_NE(parse_fault("status=abc").error.find("takes an HTTP status"), std::string::npos);
  // 1xx is an interim status, never an answer.
  EXPECT_NE(parse_fault("status=100").error.find("from 200 to 599"), std::string::npos);
  EXPECT_EQ(parse_fault("status=204").fault->value, 204);
  EXPECT_NE(parse_fault("blackhole=3").error.find("takes no value"), std::string::npos);
  EXPECT_NE(parse_fault("explode").error.find("unknown fault"), std::string::npos);
  EXPECT_NE(parse_fault("reset@2").error.find("from 0 to 1"), std::string::npos);
  EXPECT_NE(parse_fault("reset@nan").error.find("from 0 to 1"), std::string::npos);
  EXPECT_NE(parse_fault("status=503,later").error.find("retry-after"), std::string::npos);
  EXPECT_NE(parse_fault("status=503,code=").error.find("code=NAME"), std::string::npos);
}

TEST(Faults, HeaderListSeparatedBySemicolonsOrSpaces) {
  auto l = parse_fault_list("slow-first-token=100; cut-after=2 status=500@0");
  ASSERT_EQ(l.error, "");
  ASSERT_EQ(l.faults.size(), 3u);
  EXPECT_FALSE(parse_fault_list("reset;bogus").error.empty());
}

TEST(Faults, PlanMergesWhatHits) {
  std::mt19937_64 rng(1);
  auto l = parse_fault_list("slow-headers=50;cut-after=2;status=503@0");
  FaultPlan p = plan_faults(l.faults, rng);
  EXPECT_EQ(p.slow_headers_ms, 50);
  EXPECT_EQ(p.cut_after, 2);
  EXPECT_FALSE(p.status);  // probability 0 never hits
}

TEST(Faults, ProbabilityIsDeterministicPerSeed) {
  auto l = parse_fault_list("status=503@0.3");
  auto count_hits = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    int hits = 0;
    for (int i = 0; i < 10'000; ++i) hits += plan_faults(l.faults, rng).status.has_value();
    return hits;
  };
  EXPECT_EQ(count_hits(42), count_hits(42));
  EXPECT_NEAR(count_hits(42), 3'000, 200);
}

TEST(Faults, ACountLimitsHowManyRequestsAFaultHits) {
  std::mt19937_64 rng(1);
  auto l = parse_fault_list("status=429,retry-after=1#1;reset@0.5#2");
  ASSERT_EQ(l.error, "");
  EXPECT_EQ(l.faults[0].times, 1);
  EXPECT_EQ(l.faults[0].retry_after, 1);
  EXPECT_EQ(l.faults[1].times, 2);
  EXPECT_DOUBLE_EQ(l.faults[1].probability, 0.5);
  EXPECT_EQ(plan_faults(l.faults, rng).status, 429);
  EXPECT_FALSE(plan_faults(l.faults, rng).status) << "spent: the next request goes through";
  EXPECT_FALSE(parse_fault("status=500#0").error.empty());
  EXPECT_FALSE(parse_fault("status=500#x").error.empty());
}

TEST(Faults, StreamShapes) {
  std::mt19937_64 rng(1);
  auto l = parse_fault_list("no-done;error-event=3;malformed-at=2");
  ASSERT_EQ(l.error, "");
  FaultPlan p = plan_faults(l.faults, rng);
  EXPECT_TRUE(p.no_done);
  EXPECT_EQ(p.error_event, 3);
  EXPECT_EQ(p.malformed_at, 2);
  EXPECT_FALSE(parse_fault("no-done=1").error.empty());
  EXPECT_FALSE(parse_fault("error-event").error.empty());
}

TEST(Faults, AStatusMayCarryTheErrorBodysCode) {
  auto f = parse_fault("status=400,code=context_length_exceeded");
  ASSERT_TRUE(f.fault) << f.error;
  EXPECT_EQ(f.fault->value, 400);
  EXPECT_EQ(f.fault->error_code, "context_length_exceeded");
  std::mt19937_64 rng(1);
  std::vector<Fault> faults{*f.fault};
  EXPECT_EQ(plan_faults(faults, rng).error_code, "context_length_exceeded");
}

}  // namespace
}  // namespace ballast::sim
