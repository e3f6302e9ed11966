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

// openai-python's x-stainless-read-timeout: every silence the client sees is bounded.
TEST(Deadline, AReadTimeoutEndsEveryPhaseBeforeTheClientGivesUpAndNamesThePhase) {
  PhaseBounds b;  // the defaults: 5 s connect, 60 s first byte and token, 30 s stream idle
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::nullopt);
  bound_silence(d, std::chrono::milliseconds(1'500));
  EXPECT_EQ(d.source, DeadlineSource::read);
  EXPECT_EQ(d.first_byte_by, t0 + Millis(1'425));  // 5% early
  EXPECT_EQ(d.read_gap, Millis(1'425));
  EXPECT_EQ(answer_by(d), t0 + Millis(1'425));
  // The request waited 400 ms in the queue: its attempt still answers by 1,425 ms after arrival.
  const TimePoint start = t0 + Millis(400);
  AttemptClock clock{start, start + Millis(5), start + Millis(300)};
  struct Case {
    AttemptPhase phase;
    ErrorCode code;
  };
  for (auto [phase, code] : {Case{AttemptPhase::connecting, ErrorCode::connect_timeout},
                             Case{AttemptPhase::awaiting_headers, ErrorCode::first_byte_timeout},
                             Case{AttemptPhase::awaiting_first_token, ErrorCode::first_token_timeout},
                             // a non-streamed body still arriving: the client has had nothing yet
                             Case{AttemptPhase::relaying, ErrorCode::first_byte_timeout}}) {
    Bound bound = next_bound(d, b, clock, phase);
    EXPECT_EQ(bound.at, t0 + Millis(1'425));
    EXPECT_EQ(bound.code, code);
    EXPECT_TRUE(bound.client_read);
  }
  // A begun stream: never a gap of the read timeout between the chunks ballast writes, counted
  // from the latest write, not from the upstream's latest bytes (which may not have been relayed).
  clock.last_write = t0 + Millis(5'000);
  clock.last_activity = t0 + Millis(6'000);
  Bound gap = next_bound(d, b, clock, AttemptPhase::relaying);
  EXPECT_EQ(gap.at, t0 + Millis(6'425));
  EXPECT_EQ(gap.code, ErrorCode::stream_idle_timeout);
  EXPECT_TRUE(gap.client_read);
  // curl's connect bound stops at the read timeout too.
  EXPECT_EQ(connect_bound(d, b, t0 + Millis(400)), Millis(1'025));
}

TEST(Deadline, ShorterOwnBoundsAndTheDeadlineStillWinOverAReadTimeout) {
  PhaseBounds b;
  b.stream_idle = Millis(2'000);
  b.first_byte = Millis(1'000);
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::nullopt);
  bound_silence(d, std::chrono::seconds(60));  // 5% would be 3 s: the margin stops at 500 ms
  EXPECT_EQ(d.read_gap, Millis(59'500));
  AttemptClock clock{t0, t0, t0, t0 + Millis(100)};
  Bound idle = next_bound(d, b, clock, AttemptPhase::relaying);
  EXPECT_EQ(idle.at, t0 + Millis(2'000));
  EXPECT_EQ(idle.code, ErrorCode::stream_idle_timeout);
  EXPECT_FALSE(idle.client_read);
  Bound headers = next_bound(d, b, clock, AttemptPhase::awaiting_headers);
  EXPECT_EQ(headers.at, t0 + Millis(1'000));
  EXPECT_FALSE(headers.client_read);
  // A total the client sent, shorter than its read timeout, is the deadline.
  RequestDeadline both = plan_deadline(t0, Millis(600'000), std::chrono::seconds(2));
  bound_silence(both, std::chrono::seconds(10));
  EXPECT_EQ(answer_by(both), t0 + Millis(1'900));
  Bound token = next_bound(both, b, AttemptClock{t0, t0, t0}, AttemptPhase::awaiting_first_token);
  EXPECT_EQ(token.code, ErrorCode::deadline_exceeded);
}

TEST(Deadline, ALearnedPatienceShapesAdmissionButCutsNothing) {
  PhaseBounds b;
  RequestDeadline d = plan_deadline(t0, Millis(600'000), std::nullopt);
  bound_first_byte(d, std::chrono::seconds(2), DeadlineSource::learned);
  EXPECT_EQ(d.first_byte_by, t0 + Millis(1'900));
  EXPECT_EQ(answer_by(d), t0 + Millis(600'000));
  Bound token = next_bound(d, b, AttemptClock{t0, t0, t0}, AttemptPhase::awaiting_first_token);
  EXPECT_EQ(token.at, t0 + Millis(60'000));
  EXPECT_FALSE(token.client_read);
}

}  // namespace
}  // namespace ballast
