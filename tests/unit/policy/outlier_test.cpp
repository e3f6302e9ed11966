#include "policy/outlier.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

using namespace std::chrono_literals;

TEST(Outlier, ConsecutiveFailuresEjectForAGrowingTime) {
  OutlierPolicy p;  // 5 in a row, 30 s × n, cap 300 s
  OutlierState s(p);
  TimePoint t{1000s};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.report_failure(t, true), HealthEvent::none);
  EXPECT_EQ(s.report_failure(t, true), HealthEvent::ejected);
  EXPECT_FALSE(s.available(t + 29s));
  EXPECT_TRUE(s.available(t + 30s));  // half-open: one probe
  s.on_send(t + 30s);
  EXPECT_FALSE(s.available(t + 30s));
  EXPECT_EQ(s.report_failure(t + 31s, true), HealthEvent::ejected);  // the probe failed
  EXPECT_EQ(s.last_ejection(), 60s);
  EXPECT_FALSE(s.available(t + 90s));
  EXPECT_TRUE(s.available(t + 91s));
  s.on_send(t + 91s);
  EXPECT_EQ(s.report_success(t + 92s), HealthEvent::readmitted);
  EXPECT_TRUE(s.available(t + 92s));
}

TEST(Outlier, ASuccessResetsTheCount) {
  OutlierPolicy p;
  OutlierState s(p);
  TimePoint t{1000s};
  for (int i = 0; i < 4; ++i) s.report_failure(t, true);
  s.report_success(t);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.report_failure(t, true), HealthEvent::none);
}

TEST(Outlier, NeverEjectsWhenTheCallerForbids) {
  OutlierPolicy p;
  OutlierState s(p);
  TimePoint t{1000s};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.report_failure(t, false), HealthEvent::none);
  EXPECT_TRUE(s.available(t));
}

TEST(Outlier, EjectionTimeIsCappedAndForgivenAfterAHealthyStretch) {
  OutlierPolicy p;
  p.consecutive_failures = 1;
  OutlierState s(p);
  TimePoint t{1000s};
  for (int n = 1; n <= 12; ++n) {
    s.on_send(t);  // from the second round on, the half-open probe
    s.report_failure(t, true);
    t = s.ejected_until();
  }
  EXPECT_EQ(s.last_ejection(), 300s);
  s.on_send(t);
  EXPECT_EQ(s.report_success(t), HealthEvent::readmitted);
  s.report_failure(t + 301s, true);
  EXPECT_EQ(s.last_ejection(), 30s);
}

TEST(Outlier, OnlyTheProbeDecidesWhileHalfOpen) {
  OutlierPolicy p;
  p.consecutive_failures = 1;
  OutlierState s(p);
  TimePoint t{1000s};
  s.report_failure(t, true);
  // A request sent before the ejection fails late: nothing new is learned.
  EXPECT_EQ(s.report_failure(t + 31s, true), HealthEvent::none);
  EXPECT_EQ(s.last_ejection(), 30s);
  EXPECT_TRUE(s.available(t + 31s));
}

TEST(Outlier, AnActiveCheckReadmitsOnlyAnExpiredEjection) {
  OutlierPolicy p;
  p.consecutive_failures = 1;
  OutlierState s(p);
  TimePoint t{1000s};
  s.report_failure(t, true);
  EXPECT_EQ(s.check_passed(t + 1s), HealthEvent::none);  // the ejection stands
  EXPECT_FALSE(s.available(t + 1s));
  EXPECT_EQ(s.check_passed(t + 30s), HealthEvent::readmitted);
  EXPECT_EQ(s.state(t + 30s), OutlierState::State::healthy);
}

TEST(Outlier, APassingCheckNeverExcusesFailingTraffic) {
  OutlierPolicy p;  // 5 in a row
  OutlierState s(p);
  TimePoint t{1000s};
  // /models answers 200 between generations that all fail with 503.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.report_failure(t + 1s * i, true), HealthEvent::none);
    EXPECT_EQ(s.check_passed(t + 1s * i), HealthEvent::none);
  }
  EXPECT_EQ(s.report_failure(t + 4s, true), HealthEvent::ejected);
}

TEST(Outlier, AFailureRateEjectsWithoutAnUnbrokenRun) {
  OutlierPolicy p;  // 10 requests in 10 s, half failing
  OutlierState s(p);
  TimePoint t{1000s};
  // Fail, succeed, fail, succeed…: never two failures in a row.
  for (int i = 0; i < 9; ++i) {
    auto at = t + 500ms * i;
    if (i % 2 == 0)
      EXPECT_EQ(s.report_failure(at, true), HealthEvent::none) << i;
    else
      EXPECT_EQ(s.report_success(at), HealthEvent::none) << i;
  }
  EXPECT_EQ(s.window_requests(t + 4500ms), 9);
  EXPECT_EQ(s.report_success(t + 4500ms), HealthEvent::none);       // a success never ejects
  EXPECT_EQ(s.report_failure(t + 5s, true), HealthEvent::ejected);  // 11, 6 failed
}

TEST(Outlier, TheRateForgetsTrafficOlderThanTheWindow) {
  OutlierPolicy p;
  OutlierState s(p);
  TimePoint t{1000s};
  for (int i = 0; i < 4; ++i) s.report_failure(t, true);
  s.report_success(t);
  // 11 s later the five above are gone: four failures among eight successes is not half.
  for (int i = 0; i < 8; ++i) s.report_success(t + 11s);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.report_failure(t + 11s, true), HealthEvent::none) << i;
  EXPECT_EQ(s.window_requests(t + 11s), 12);
}

TEST(Outlier, TheRateNeedsEnoughRequests) {
  OutlierPolicy p;
  p.consecutive_failures = 100;
  OutlierState s(p);
  TimePoint t{1000s};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(s.report_failure(t, true), HealthEvent::none);
  EXPECT_EQ(s.report_failure(t, true), HealthEvent::ejected);
}

}  // namespace
}  // namespace ballast
