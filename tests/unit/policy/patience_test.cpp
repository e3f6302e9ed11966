#include "policy/patience.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

using namespace std::chrono_literals;

const TimePoint t0{1000s};

void give_ups(PatienceBook& b, std::initializer_list<Duration> waits, TimePoint at,
              const std::string& client = "127.0.0.1") {
  for (Duration w : waits) b.gave_up(client, "m", w, at);
}

TEST(Patience, NothingIsLearnedFromTooFewGiveUps) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s}, t0);
  EXPECT_FALSE(b.learned("127.0.0.1", "m", t0));
  b.gave_up("127.0.0.1", "m", 10s, t0);
  auto l = b.learned("127.0.0.1", "m", t0);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->patience, 10s);
  EXPECT_EQ(l->agreeing, 5u);
}

TEST(Patience, TheValueIsALowPercentileOfTheAgreeingWaitsNotTheMean) {
  PatienceBook b;
  // Ten agreeing waits (within 20% of the shortest): the 10th percentile by nearest rank is the
  // shortest; with twenty, the second shortest.
  give_ups(
      b, {10'100ms, 10'050ms, 10'300ms, 10'020ms, 10'500ms, 10'040ms, 10'010ms, 10'200ms, 10'030ms, 10'060ms},
      t0);
  EXPECT_EQ(b.learned("127.0.0.1", "m", t0)->patience, 10'010ms);
  give_ups(
      b, {10'005ms, 10'090ms, 10'070ms, 10'080ms, 10'110ms, 10'120ms, 10'130ms, 10'140ms, 10'150ms, 10'160ms},
      t0);
  auto l = b.learned("127.0.0.1", "m", t0);
  EXPECT_EQ(l->patience, 10'010ms);
  EXPECT_EQ(l->agreeing, 20u);
  EXPECT_EQ(l->highest, 10'500ms);
}

TEST(Patience, GiveUpsThatDoNotAgreeTeachNothing) {
  PatienceBook b;
  // Users closing a tab at random: no five within 20% of each other.
  give_ups(b, {1s, 2s, 3s, 5s, 8s, 13s, 21s, 34s}, t0);
  EXPECT_FALSE(b.learned("127.0.0.1", "m", t0));
}

TEST(Patience, OneOutlierNeitherTeachesNorMoves) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s, 10s}, t0);
  b.gave_up("127.0.0.1", "m", 500ms, t0 + 1s);  // a user who pressed Ctrl-C
  EXPECT_EQ(b.learned("127.0.0.1", "m", t0 + 1s)->patience, 10s);
}

TEST(Patience, ClientsAndModelsAreLearnedApart) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s, 10s}, t0, "10.0.0.1");
  EXPECT_TRUE(b.learned("10.0.0.1", "m", t0));
  EXPECT_FALSE(b.learned("10.0.0.2", "m", t0));
  EXPECT_FALSE(b.learned("10.0.0.1", "other", t0));
}

TEST(Patience, ExpiresWhenNoGiveUpWasSeenForTenMinutes) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s, 10s}, t0);
  EXPECT_TRUE(b.learned("127.0.0.1", "m", t0 + 10min));
  EXPECT_FALSE(b.learned("127.0.0.1", "m", t0 + 10min + 1ms));
  EXPECT_TRUE(b.view(t0 + 10min + 1ms).empty() || !b.view(t0 + 10min + 1ms).front().patience);
}

TEST(Patience, AShorterPatienceTakesOverAsSoonAsItAgrees) {
  PatienceBook b;
  for (int i = 0; i < 15; ++i) b.gave_up("127.0.0.1", "m", 10s, t0);
  // A redeploy with a 5 s timeout: four give-ups are not enough, the fifth is.
  give_ups(b, {5s, 5s, 5s, 5s}, t0 + 1s);
  EXPECT_EQ(b.learned("127.0.0.1", "m", t0 + 1s)->patience, 10s);
  b.gave_up("127.0.0.1", "m", 5s, t0 + 1s);
  EXPECT_EQ(b.learned("127.0.0.1", "m", t0 + 1s)->patience, 5s);
}

TEST(Patience, OutlastingTheLearnedValueForgetsIt) {
  PatienceBook b;
  give_ups(b, {10s, 10'100ms, 10'200ms, 10s, 10'050ms}, t0);
  // Answered at 10.1 s, the client still there: the give-ups are not clearly shorter, kept.
  b.outlasted("127.0.0.1", "m", 10'100ms, t0 + 1s);
  ASSERT_TRUE(b.learned("127.0.0.1", "m", t0 + 1s));
  // A probe held for probe_wait and its client did not leave: every agreeing give-up goes.
  auto l = *b.learned("127.0.0.1", "m", t0 + 1s);
  EXPECT_EQ(b.probe_wait(l), 12'340ms);
  b.outlasted("127.0.0.1", "m", b.probe_wait(l), t0 + 2s);
  EXPECT_FALSE(b.learned("127.0.0.1", "m", t0 + 2s));
  // Then the longer patience is learned from its own give-ups.
  give_ups(b, {30s, 30s, 30s, 30s, 30s}, t0 + 40s);
  EXPECT_EQ(b.learned("127.0.0.1", "m", t0 + 40s)->patience, 30s);
}

TEST(Patience, AProbeAtMostEveryFifteenSecondsPerClientAndModel) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s, 10s}, t0);
  EXPECT_TRUE(b.take_probe("127.0.0.1", "m", t0));
  EXPECT_FALSE(b.take_probe("127.0.0.1", "m", t0 + 14s));
  EXPECT_TRUE(b.take_probe("127.0.0.1", "m", t0 + 15s));
  EXPECT_FALSE(b.take_probe("10.0.0.9", "m", t0 + 15s));  // nothing learned there: nothing to test
}

TEST(Patience, KeepsTheLatestTwentyGiveUps) {
  PatienceBook b;
  give_ups(b, {3s, 3s, 3s, 3s, 3s}, t0);
  for (int i = 0; i < 20; ++i) b.gave_up("127.0.0.1", "m", 10s, t0 + 1s);
  auto v = b.view(t0 + 1s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].give_ups, 20u);
  EXPECT_EQ(v[0].patience, Duration(10s));
}

TEST(Patience, MemoryIsBoundedWhateverTheNumberOfClients) {
  PatiencePolicy p;
  p.max_entries = 3;
  PatienceBook b(p);
  for (int i = 0; i < 10; ++i)
    b.gave_up("10.0.0." + std::to_string(i), "m", 10s, t0 + std::chrono::seconds(i));
  auto v = b.view(t0 + 10s);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].client, "10.0.0.7");
}

TEST(Patience, TheViewSaysWhatIsLearnedAndWhatIsStillObserved) {
  PatienceBook b;
  give_ups(b, {10s, 10s, 10s, 10s, 10s}, t0, "a");
  give_ups(b, {10s, 10s}, t0, "b");
  auto v = b.view(t0 + 3s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].patience, Duration(10s));
  EXPECT_EQ(v[0].since_last, Duration(3s));
  EXPECT_FALSE(v[1].patience);
  EXPECT_EQ(v[1].give_ups, 2u);
}

}  // namespace
}  // namespace ballast
