#include "policy/admission.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace ballast {
namespace {

using namespace std::chrono_literals;
using D = Admission::Decision;

AdmissionPolicy fixed(int limit, int queue = 1000) {
  AdmissionPolicy p;
  p.max_in_flight = limit;
  p.queue_size = queue;
  return p;
}

const TimePoint t0{1000s};
const TimePoint far = t0 + 1h;

TEST(Admission, UnboundedAdmitsEverything) {
  Admission a(AdmissionPolicy{});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.arrive("", t0, t0).decision, D::admitted);
}

TEST(Admission, QueuesBeyondTheLimitAndGrantsInOrder) {
  Admission a(fixed(2, 2));
  EXPECT_EQ(a.arrive("", t0, far).decision, D::admitted);
  EXPECT_EQ(a.arrive("", t0, far).decision, D::admitted);
  auto q1 = a.arrive("", t0, far);
  auto q2 = a.arrive("", t0, far);
  EXPECT_EQ(q1.decision, D::queued);
  EXPECT_EQ(q2.decision, D::queued);
  auto full = a.arrive("", t0, far);
  EXPECT_EQ(full.decision, D::queue_full);
  EXPECT_EQ(full.retry_after, 1000ms);  // no drain rate known yet
  auto c = a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  ASSERT_EQ(c.granted.size(), 1u);
  EXPECT_EQ(c.granted[0], q1.ticket);
  EXPECT_EQ(a.in_flight(), 2);
  EXPECT_EQ(a.queued(), 1);
  // The queue full of 1 behind 2 slots held 1 s each: room in about 1 s.
  EXPECT_EQ(a.arrive("", t0 + 1s, far).decision, D::queued);
  EXPECT_EQ(a.arrive("", t0 + 1s, far).retry_after, 1500ms);
}

TEST(Admission, RefusesAtOnceWhatCouldNotStartInTime) {
  Admission a(fixed(1));
  a.arrive("", t0, far);
  a.arrive("", t0, far);                                     // queued
  a.finish(t0 + 2s, t0, LoadSignal::success, std::nullopt);  // slots are held 2 s; the queued one starts
  // Its client gives up in 3 s, so it must start within 1 s (a slot's time before its deadline);
  // the slot frees in ~2 s.
  auto r = a.arrive("", t0 + 2s, t0 + 2s + 3s);
  EXPECT_EQ(r.decision, D::too_late);
  EXPECT_EQ(r.retry_after, 2000ms);  // a slot's time at least
  EXPECT_EQ(a.arrive("", t0 + 2s, t0 + 2s + 5s).decision, D::queued);
  auto r2 = a.arrive("", t0 + 2s, t0 + 2s + 5s);  // second in line: ~4 s away, must start within 3 s
  EXPECT_EQ(r2.decision, D::too_late);
  // On its own it would come back in 2.5 s, but `r` was refused first and comes back at 2 s: this
  // one follows a slot's time after it.
  EXPECT_EQ(r2.retry_after, 4000ms);
  // The next would follow at 6 s, past its client's 5 s: the spacing starts again from the earliest.
  EXPECT_EQ(a.arrive("", t0 + 2s, t0 + 2s + 5s).retry_after, 2500ms);
}

TEST(Admission, WaitersThatCanNoLongerMakeItAreToldAtOnce) {
  Admission a(fixed(1));
  a.arrive("", t0, far);
  auto early = a.arrive("", t0, t0 + 13s);
  auto late = a.arrive("", t0, t0 + 10s);
  // The first slot turns out to take 6 s: `early` can still finish by 13 s; `late` would start near
  // 12 s, past its 10 s.
  auto c = a.finish(t0 + 6s, t0, LoadSignal::success, std::nullopt);
  ASSERT_EQ(c.granted.size(), 1u);
  EXPECT_EQ(c.granted[0], early.ticket);
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_EQ(c.refused[0].first, late.ticket);
  // Next in line, a slot's time (6 s) away, but its client has only 4 s left: never a promise
  // past the client's own deadline.
  EXPECT_EQ(c.refused[0].second, 4000ms);
  EXPECT_FALSE(a.cancel(late.ticket));
}

TEST(Admission, DrainingRefusesAtOnceWhatCouldNotFinishBeforeTheProcessEnds) {
  Admission a(fixed(1));
  // A first request teaches the hold: 2 s.
  a.arrive("", t0, far);
  a.finish(t0 + 2s, t0, LoadSignal::success, std::nullopt);
  a.arrive("", t0 + 2s, far);               // in flight until about 4 s
  auto next = a.arrive("", t0 + 2s, far);   // would start at 4 s, done at 6 s
  auto after = a.arrive("", t0 + 2s, far);  // would start at 6 s, done at 8 s
  ASSERT_EQ(next.decision, D::queued);
  ASSERT_EQ(after.decision, D::queued);
  // SIGTERM at 2.5 s with 5 s of grace: the process ends at 7.5 s. `next` can still make it and
  // keeps its place; `after` is told now, rather than left to wait for a slot until the end.
  auto c = a.drain(t0 + 7500ms, t0 + 2500ms);
  EXPECT_TRUE(a.draining());
  EXPECT_TRUE(c.granted.empty());
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_EQ(c.refused[0].first, after.ticket);
  EXPECT_GT(c.refused[0].second, 0ms);
  // The slot frees at 4 s: `next` is served.
  c = a.finish(t0 + 4s, t0 + 2s, LoadSignal::success, std::nullopt);
  ASSERT_EQ(c.granted.size(), 1u);
  EXPECT_EQ(c.granted[0], next.ticket);
  // A request arriving now on a connection still open could not finish in time: refused at once.
  EXPECT_EQ(a.arrive("", t0 + 4s, far).decision, D::too_late);
  // A later drain never extends an earlier one.
  a.drain(t0 + 1h, t0 + 4s);
  EXPECT_EQ(a.arrive("", t0 + 4s, far).decision, D::too_late);
}

// A client that ignores Retry-After and re-sends at once, for as long as it likes.
TEST(Admission, ATightLoopOfRefusalsNeverPromisesMoreThanTheQueueTimeout) {
  AdmissionPolicy p = fixed(8, 8);
  p.queue_timeout = 5s;
  Admission a(p);
  TimePoint t = t0;
  for (int i = 0; i < 16; ++i) a.arrive("", t, far);  // 8 in flight, 8 queued
  a.finish(t + 900ms, t, LoadSignal::success, std::nullopt);
  a.arrive("", t + 900ms, far);  // the freed place in the queue is taken again
  Millis longest{0};
  for (int i = 0; i < 80'000; ++i) {
    t = t0 + 1s + 100us * i;  // 10,000 refusals a second for 8 s
    auto r = a.arrive("", t, far);
    ASSERT_EQ(r.decision, D::queue_full);
    longest = std::max(longest, r.retry_after);
  }
  EXPECT_LE(longest, 5000ms);
  EXPECT_GE(longest, 4000ms) << "the spacing does run up to the bound";
  // A well-behaved client refused now is promised no more than the bound either.
  EXPECT_LE(a.arrive("", t, far).retry_after, 5000ms);
}

TEST(Admission, OnceTheQueueDrainsAPromiseIsOneServiceTimeAtMost) {
  AdmissionPolicy p = fixed(2, 2);
  p.queue_timeout = 30s;
  Admission a(p);
  for (int i = 0; i < 4; ++i) a.arrive("", t0, far);
  for (int i = 0; i < 1000; ++i) a.arrive("", t0 + 1ms * i, far);  // queue_full, promises spaced out
  // Everything finishes, each having held its slot 1 s: nothing in flight, nothing queued.
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  a.finish(t0 + 2s, t0 + 1s, LoadSignal::success, std::nullopt);
  a.finish(t0 + 2s, t0 + 1s, LoadSignal::success, std::nullopt);
  EXPECT_EQ(a.in_flight(), 0);
  EXPECT_EQ(a.queued(), 0);
  // A request that arrives with its deadline already gone is refused: with no backlog, the
  // promise is one average service time, whatever was promised during the burst.
  auto r = a.arrive("", t0 + 2s, t0 + 2s);
  EXPECT_EQ(r.decision, D::admitted) << "a free slot admits even a late request: the attempt's bounds end it";
  a.finish(t0 + 3s, t0 + 2s, LoadSignal::success, std::nullopt);
  EXPECT_LE(a.retry_after(t0 + 3s, far), 1000ms);
}

TEST(Admission, PromisesDecayWhenTheQueueStaysBusy) {
  AdmissionPolicy p = fixed(1, 1);
  p.queue_timeout = 10s;
  Admission a(p);
  a.arrive("", t0, far);
  a.arrive("", t0, far);                                     // queued
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);  // 1 s a slot; the queued one starts
  a.arrive("", t0 + 1s, far);                                // queued again: full
  for (int i = 0; i < 9; ++i) a.arrive("", t0 + 1s, far);    // promised 2 s, 3 s, … 10 s
  EXPECT_EQ(a.arrive("", t0 + 1s, far).retry_after, 2000ms) << "past the bound: from the earliest again";
  // A minute later, still full: the burst's promises have passed, the next is worked out afresh.
  EXPECT_EQ(a.arrive("", t0 + 61s, far).retry_after, 2000ms);
}

TEST(Admission, FairBetweenKeys) {
  Admission a(fixed(1));
  a.arrive("a", t0, far);
  auto a1 = a.arrive("a", t0, far);
  auto a2 = a.arrive("a", t0, far);
  auto b1 = a.arrive("b", t0, far);
  auto next = [&] {
    auto c = a.finish(t0 + 1s, t0, LoadSignal::neutral, std::nullopt);
    return c.granted.at(0);
  };
  EXPECT_EQ(next(), a1.ticket);
  EXPECT_EQ(next(), b1.ticket);  // b does not wait behind all of a's
  EXPECT_EQ(next(), a2.ticket);
}

TEST(Admission, CancelLeavesTheQueue) {
  Admission a(fixed(1));
  a.arrive("", t0, far);
  auto q = a.arrive("", t0, far);
  EXPECT_TRUE(a.cancel(q.ticket));
  EXPECT_EQ(a.queued(), 0);
  EXPECT_TRUE(a.finish(t0 + 1s, t0, LoadSignal::neutral, std::nullopt).granted.empty());
  EXPECT_EQ(a.in_flight(), 0);
}

TEST(AdaptiveLimit, DecreasesOncePerEpisodeAndGrowsWhileBusy) {
  AdmissionPolicy p;
  p.adaptive = true;
  p.initial_limit = 10;
  p.decrease = 0.9;
  Admission a(p);
  for (int i = 0; i < 10; ++i) a.arrive("", t0, far);
  // Three 429s from requests that started together: one decrease, not three.
  a.finish(t0 + 1s, t0, LoadSignal::overload, std::nullopt);
  a.finish(t0 + 1s, t0, LoadSignal::overload, std::nullopt);
  a.finish(t0 + 1s, t0, LoadSignal::overload, std::nullopt);
  EXPECT_EQ(a.limit(), 9);
  // A request sent after the decrease that is refused again lowers it again.
  a.arrive("", t0 + 2s, far);
  a.finish(t0 + 3s, t0 + 2s, LoadSignal::overload, std::nullopt);
  EXPECT_EQ(a.limit(), 8);  // 10 × 0.9 × 0.9 = 8.1
  // Successes while the limit is in use raise it by about 1 per limit's worth.
  for (int i = 0; i < 10; ++i) {
    a.arrive("", t0 + 4s, far);
    a.finish(t0 + 5s, t0 + 4s, LoadSignal::success, std::nullopt);
  }
  EXPECT_EQ(a.limit(), 9);
  // Not while it is mostly idle: a limit nobody reaches proves nothing.
  for (int i = 0; i < 7; ++i) a.finish(t0 + 5s, t0, LoadSignal::neutral, std::nullopt);
  EXPECT_EQ(a.in_flight(), 0);
  for (int i = 0; i < 50; ++i) {
    a.arrive("", t0 + 6s, far);
    a.finish(t0 + 7s, t0 + 6s, LoadSignal::success, std::nullopt);
  }
  EXPECT_EQ(a.limit(), 9);
}

TEST(AdaptiveLimit, ClimbingTimeToFirstTokenLowersIt) {
  AdmissionPolicy p;
  p.adaptive = true;
  p.initial_limit = 20;
  Admission a(p);
  TimePoint t = t0;
  for (int i = 0; i < 20; ++i) a.arrive("", t, far);
  for (int i = 0; i < 5; ++i) {
    a.finish(t + 100ms, t, LoadSignal::success, 100ms);
    a.arrive("", t + 100ms, far);
  }
  int before = a.limit();
  EXPECT_GE(before, 20);
  // The endpoint starts queueing: first tokens take 1 s instead of 100 ms.
  t += 1s;
  a.finish(t + 1s, t, LoadSignal::success, 1000ms);
  EXPECT_LT(a.limit(), before);
}

TEST(TokenBucket, BurstOfTenSecondsThenTheRate) {
  TokenBucket b(60, t0);  // 1 per second, 10 at once
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.take(1, t0), std::nullopt) << i;
  EXPECT_EQ(b.take(1, t0), 1000ms);
  EXPECT_EQ(b.take(1, t0 + 1s), std::nullopt);
  EXPECT_EQ(b.take(3, t0 + 1s), 3000ms);
}

TEST(TokenBucket, ALargeTakePassesWhenFullAndLeavesADebt) {
  TokenBucket b(600, t0);  // 100 at once
  EXPECT_EQ(b.take(250, t0), std::nullopt);
  EXPECT_DOUBLE_EQ(b.level(t0), -150);
  EXPECT_EQ(b.take(1, t0), 15100ms);
  b.adjust(200, t0);  // the estimate was 200 too high
  EXPECT_DOUBLE_EQ(b.level(t0), 50);
}

// A slot held ~1 s by each of 2 in flight, learned from two requests that ended.
Admission busy_with_one_second_holds() {
  Admission a(fixed(2));
  a.arrive("", t0, far);
  a.arrive("", t0, far);
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  a.arrive("", t0 + 1s, far);
  a.arrive("", t0 + 1s, far);
  return a;
}

TEST(Admission, AFirstByteBoundRefusesAtOnceWhatCouldNotAnswerInTime) {
  Admission a = busy_with_one_second_holds();
  const TimePoint now = t0 + 1s;
  // Non-streamed: the first byte is the whole answer. Queued 0.5 s, then 1 s of hold: 1.5 s.
  Due patient{far, now + 1'600ms};
  EXPECT_EQ(a.start_by(now, patient), now + 600ms);
  auto ok = a.arrive("", now, patient);
  EXPECT_EQ(ok.decision, D::queued);
  // Second in line (1 s of wait) could not answer within 1.6 s: refused for its first-byte bound
  // only, which the caller may test (a probe of a learned patience).
  auto late = a.arrive("", now, Due{far, now + 1'600ms});
  EXPECT_EQ(late.decision, D::too_late);
  EXPECT_TRUE(late.first_byte_bound);
  // Refused by its total deadline instead: not the first byte's doing.
  auto total = a.arrive("", now, Due{now + 1'200ms});
  EXPECT_EQ(total.decision, D::too_late);
  EXPECT_FALSE(total.first_byte_bound);
}

TEST(Admission, AStreamsFirstByteIsItsFirstTokenNotItsWholeHold) {
  Admission a(fixed(1));
  a.arrive("", t0, far);
  a.finish(t0 + 10s, t0, LoadSignal::success, Duration(200ms), /*stream=*/true);
  Due stream{far, t0 + 20s, true};
  EXPECT_EQ(a.start_by(t0 + 10s, stream), t0 + 20s - 200ms);
  Due whole{far, t0 + 20s, false};
  EXPECT_EQ(a.start_by(t0 + 10s, whole), t0 + 10s);
}

TEST(Admission, AShorterQueueWaitForClientsOfUnknownPatience) {
  Admission a = busy_with_one_second_holds();
  const TimePoint now = t0 + 1s;
  Due unknown{far};
  unknown.queue_wait = 5s;
  EXPECT_EQ(a.start_by(now, unknown), now + 5s);
  EXPECT_EQ(a.start_by(now, Due{far}), now + 30s);  // the queue timeout
  // Refused for that shorter wait, not for a first-byte bound.
  unknown.queue_wait = 100ms;
  a.arrive("", now, unknown);
  auto refused = a.arrive("", now, unknown);
  EXPECT_EQ(refused.decision, D::too_late);
  EXPECT_FALSE(refused.first_byte_bound);
}

TEST(Admission, ASlotGivenBackTeachesNothingAndGoesToTheNextInLine) {
  Admission a(fixed(1));
  a.arrive("", t0, far);
  a.finish(t0 + 1s, t0, LoadSignal::success, std::nullopt);
  a.arrive("", t0 + 1s, far);
  auto next = a.arrive("", t0 + 1s, far);
  ASSERT_EQ(next.decision, D::queued);
  auto c = a.give_back(t0 + 1'010ms);
  ASSERT_EQ(c.granted.size(), 1u);
  EXPECT_EQ(c.granted[0], next.ticket);
  EXPECT_EQ(a.mean_hold(), Duration(1s));  // not pulled toward 10 ms
  EXPECT_TRUE(a.in_time(t0 + 1'010ms, Due{far, t0 + 3s}));
  EXPECT_FALSE(a.in_time(t0 + 1'010ms, Due{far, t0 + 1'500ms}));
}

TEST(Admission, AQueuedRequestIsHeldToTheAveragesOfWhenASlotFreesNotOfWhenItArrived) {
  // A burst on a fresh gateway queues before any answer has said how long one takes; each client
  // waits 2 s for its first byte (a read timeout).
  Admission a(fixed(1));
  const Due impatient{far, t0 + 2s};
  ASSERT_EQ(a.arrive("", t0, impatient).decision, D::admitted);
  auto late = a.arrive("", t0, impatient);
  auto later = a.arrive("", t0, impatient);
  ASSERT_EQ(late.decision, D::queued);
  // The first answer took 1.9 s: the next could not be whole before 2 s. It is refused, with when to
  // come back, and so is the one behind it; neither gets a slot to waste.
  auto c = a.finish(t0 + 1'900ms, t0, LoadSignal::success, std::nullopt);
  EXPECT_TRUE(c.granted.empty());
  ASSERT_EQ(c.refused.size(), 2u);
  EXPECT_EQ(c.refused[0].first, late.ticket);
  EXPECT_EQ(c.refused[1].first, later.ticket);
  EXPECT_GT(c.refused[0].second, Millis(0));
  EXPECT_EQ(a.in_flight(), 0);
  // One that can still be served in time gets the slot.
  a.arrive("", t0 + 2s, far);
  auto patient = a.arrive("", t0 + 2s, Due{far, t0 + 10s});
  ASSERT_EQ(patient.decision, D::queued);
  c = a.finish(t0 + 3s, t0 + 2s, LoadSignal::success, std::nullopt);
  ASSERT_EQ(c.granted.size(), 1u);
  EXPECT_EQ(c.granted[0], patient.ticket);
}

}  // namespace
}  // namespace ballast
