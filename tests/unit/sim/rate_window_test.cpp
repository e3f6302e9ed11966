#include "sim/rate_window.hpp"

#include <gtest/gtest.h>

namespace ballast::sim {
namespace {

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

TEST(RateWindow, UnlimitedAlwaysTakes) {
  RateWindow w(0, t0);
  EXPECT_TRUE(w.try_take(1'000'000, t0));
}

TEST(RateWindow, RefillsContinuouslyPerMinute) {
  RateWindow w(60, t0);  // one a second
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(w.try_take(1, t0));
  EXPECT_FALSE(w.try_take(1, t0));
  EXPECT_EQ(w.wait_for(1, t0), std::chrono::seconds(1));
  EXPECT_FALSE(w.try_take(1, t0 + Millis(999)));
  EXPECT_TRUE(w.try_take(1, t0 + Millis(1'000)));
  EXPECT_EQ(w.remaining(t0 + Millis(1'000)), 0);
  EXPECT_EQ(w.until_full(t0 + Millis(1'000)), std::chrono::seconds(60));
}

TEST(RateWindow, GiveBackReturnsUnusedUnits) {
  RateWindow w(100, t0);
  ASSERT_TRUE(w.try_take(100, t0));
  w.give_back(40, t0);
  EXPECT_EQ(w.remaining(t0), 40);
}

TEST(RateWindow, ResetFormatMatchesOpenAi) {
  EXPECT_EQ(format_reset(Millis(120)), "120ms");
  EXPECT_EQ(format_reset(Millis(1'200)), "2s");
  EXPECT_EQ(format_reset(std::chrono::seconds(360)), "6m0s");
}

}  // namespace
}  // namespace ballast::sim
