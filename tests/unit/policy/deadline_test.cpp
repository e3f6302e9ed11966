#include "policy/deadline.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

TEST(Deadline, TotalBoundWithoutClientDeadline) {
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::nullopt);
  EXPECT_EQ(d.at, t0 + Millis(600'000));
  EXPECT_FALSE(d.from_client);
}

TEST(Deadline, TheClientsDeadlineCapsTheTotal) {
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::chrono::seconds(10));
  // Met 5% early, so ballast's named answer beats the client's own generic timeout.
  EXPECT_EQ(d.at, t0 + Millis(9'500));
  EXPECT_TRUE(d.from_client);
  EXPECT_EQ(d.client_timeout, std::chrono::seconds(10));
  // A client deadline longer than the total bound does not extend it.
  d = plan_deadline(t0, Millis(5'000), std::chrono::seconds(10));
  EXPECT_EQ(d.at, t0 + Millis(5'000));
  EXPECT_FALSE(d.from_client);
}

TEST(Deadline, ClientMarginIsFivePercentAtMostHalfASecond) {
  EXPECT_EQ(client_margin(std::chrono::seconds(2)), Millis(100));
  EXPECT_EQ(client_margin(std::chrono::seconds(600)), Millis(500));
}

TEST(Deadline, EachPhaseHasItsOwnBound) {
  PhaseBounds b;
  b.first_byte = Millis(2'000);
  b.first_token = Millis(3'000);
  b.stream_idle = Millis(500);
  RequestDeadline d = plan_deadline(t0, Millis(60'000), std::nullopt);
  b.connect = Millis(1'000);
  TimePoint start = t0 + Millis(10);
  AttemptClock clock{start, start + Millis(300), start + Millis(100)};
  Bound connecting = next_bound(d, b, clock, AttemptPhase::connecting);
  EXPECT_EQ(connecting.at, start + Millis(1'000) + kConnectBackstop);
  EXPECT_EQ(connecting.code, ErrorCode::connect_timeout);
  // First byte counts from the request being sent, not from the attempt's start.
  Bound headers = next_bound(d, b, clock, AttemptPhase::awaiting_headers);
  EXPECT_EQ(headers.at, start + Millis(2'300));
  EXPECT_EQ(headers.code, ErrorCode::first_byte_timeout);
  Bound token = next_bound(d, b, clock, AttemptPhase::awaiting_first_token);
  EXPECT_EQ(token.at, start + Millis(3'000));
  EXPECT_EQ(token.code, ErrorCode::first_token_timeout);
  clock.last_activity = start + Millis(4'000);
  Bound idle = next_bound(d, b, clock, AttemptPhase::relaying);
  EXPECT_EQ(idle.at, start + Millis(4'500));
  EXPECT_EQ(idle.code, ErrorCode::stream_idle_timeout);
}

TEST(Deadline, TheRequestDeadlineWinsWhenEarlier) {
  PhaseBounds b;
  RequestDeadline d = plan_deadline(t0, Millis(60'000), std::chrono::milliseconds(2'000));
  Bound headers = next_bound(d, b, AttemptClock{t0, t0, t0}, AttemptPhase::awaiting_headers);
  EXPECT_EQ(headers.at, t0 + Millis(1'900));
  EXPECT_EQ(headers.code, ErrorCode::deadline_exceeded);
}

TEST(Deadline, ConnectBoundNeverOutlivesTheDeadline) {
  PhaseBounds b;
  b.connect = Millis(5'000);
  RequestDeadline d = plan_deadline(t0, Millis(60'000), std::chrono::milliseconds(1'200));
  EXPECT_EQ(connect_bound(d, b, t0), Millis(1'140));
  EXPECT_EQ(connect_bound(d, b, t0 + Millis(1'000)), Millis(140));
  EXPECT_EQ(connect_bound(d, b, t0 + Millis(5'000)), Millis(1));  // never 0: curl reads 0 as "default"
  RequestDeadline roomy = plan_deadline(t0, Millis(60'000), std::nullopt);
  EXPECT_EQ(connect_bound(roomy, b, t0), Millis(5'000));
}

TEST(Deadline, AReadTimeoutOrLearnedPatienceBoundsTheFirstByteNotTheTotal) {
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::nullopt);
  EXPECT_EQ(d.source, DeadlineSource::none);
  EXPECT_EQ(d.first_byte_by, TimePoint::max());
  bound_first_byte(d, std::chrono::seconds(10), DeadlineSource::read);
  EXPECT_EQ(d.first_byte_by, t0 + Millis(9'500));  // met early by the same margin
  EXPECT_EQ(d.at, t0 + Millis(600'000));
  EXPECT_EQ(source_name(d.source), "read");
  EXPECT_EQ(source_name(plan_deadline(t0, Millis(600'000), std::chrono::seconds(5)).source), "sent");
  EXPECT_EQ(source_name(DeadlineSource::learned), "learned");
}

}  // namespace
}  // namespace ballast
