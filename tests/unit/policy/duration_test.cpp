#include "policy/duration.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("5s"), Millis(5'000));
  EXPECT_EQ(parse_duration("1.5s"), Millis(1'500));
  EXPECT_EQ(parse_duration("2m"), Millis(120'000));
  EXPECT_EQ(parse_duration("1h"), Millis(3'600'000));
  EXPECT_EQ(parse_duration("1500us"), Millis(2));
}

TEST(Duration, RefusesWhatItCannotReadExactly) {
  EXPECT_FALSE(parse_duration("5"));  // no unit is never guessed
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_FALSE(parse_duration("-5s"));
  EXPECT_FALSE(parse_duration("5days"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(Duration, FormatsTheShortestExactSpelling) {
  EXPECT_EQ(format_duration(Millis(250)), "250ms");
  EXPECT_EQ(format_duration(Millis(5'000)), "5s");
  EXPECT_EQ(format_duration(Millis(1'500)), "1500ms");
  EXPECT_EQ(format_duration(Millis(120'000)), "2m");
}

TEST(Duration, ReadsTheSdksTimeoutHeader) {
  EXPECT_EQ(parse_seconds("600"), std::chrono::seconds(600));
  EXPECT_EQ(std::chrono::duration_cast<Millis>(*parse_seconds("2.5")), Millis(2'500));
  EXPECT_EQ(parse_seconds(" 10 "), std::chrono::seconds(10));
  EXPECT_FALSE(parse_seconds("0"));
  EXPECT_FALSE(parse_seconds("abc"));
  EXPECT_FALSE(parse_seconds("-1"));
  EXPECT_FALSE(parse_seconds("1e-20"));  // positive, but no whole nanosecond
}

}  // namespace
}  // namespace ballast
