#include "sim/capacity.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

namespace ballast::sim {
namespace {

using State = Capacity::Claim::State;

TEST(SimCapacity, UnlimitedGrantsEveryClaim) {
  Capacity c(0, 0);
  Capacity::Claim a(c, nullptr), b(c, nullptr);
  EXPECT_EQ(a.ask(), State::granted);
  EXPECT_EQ(b.ask(), State::granted);
  EXPECT_EQ(c.in_use(), 2);
  EXPECT_EQ(c.max_in_use(), 2);
}

TEST(SimCapacity, QueuesFifoAndPassesTheSlotOn) {
  Capacity c(1, 0);
  std::vector<int> woken;
  auto holder = std::make_unique<Capacity::Claim>(c, [&] { woken.push_back(0); });
  auto first = std::make_unique<Capacity::Claim>(c, [&] { woken.push_back(1); });
  auto second = std::make_unique<Capacity::Claim>(c, [&] { woken.push_back(2); });
  EXPECT_EQ(holder->ask(), State::granted);
  EXPECT_EQ(first->ask(), State::queued);
  EXPECT_EQ(second->ask(), State::queued);
  EXPECT_EQ(c.queued(), 2u);
  holder.reset();
  EXPECT_EQ(woken, std::vector<int>{1});
  EXPECT_TRUE(first->granted());
  EXPECT_EQ(c.in_use(), 1);
  EXPECT_EQ(c.queued(), 1u);
  first.reset();
  EXPECT_EQ(woken, (std::vector<int>{1, 2}));
  second.reset();
  EXPECT_EQ(c.in_use(), 0);
  EXPECT_EQ(c.max_in_use(), 1);
}

TEST(SimCapacity, ABoundedQueueRefusesAndARefusalHoldsNothing) {
  Capacity c(1, 1);
  Capacity::Claim a(c, nullptr), b(c, nullptr);
  EXPECT_EQ(a.ask(), State::granted);
  EXPECT_EQ(b.ask(), State::queued);
  {
    Capacity::Claim refused(c, nullptr);
    EXPECT_EQ(refused.ask(), State::refused);
  }
  EXPECT_EQ(c.in_use(), 1);
  EXPECT_EQ(c.queued(), 1u);
}

TEST(SimCapacity, AWaiterThatLeavesGivesUpItsPlaceOnly) {
  Capacity c(1, 0);
  bool later_woken = false;
  Capacity::Claim holder(c, nullptr);
  holder.ask();
  {
    Capacity::Claim leaver(c, [] { FAIL() << "a claim that left is never woken"; });
    EXPECT_EQ(leaver.ask(), State::queued);
  }
  Capacity::Claim later(c, [&] { later_woken = true; });
  EXPECT_EQ(later.ask(), State::queued);
  EXPECT_EQ(c.queued(), 1u);
  holder.give_back();
  EXPECT_TRUE(later_woken);
  EXPECT_EQ(c.in_use(), 1);
}

TEST(SimCapacity, AnExceptionGivesTheSlotBack) {
  Capacity c(1, 0);
  try {
    Capacity::Claim a(c, nullptr);
    ASSERT_EQ(a.ask(), State::granted);
    throw std::runtime_error("generation failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(c.in_use(), 0);
  Capacity::Claim next(c, nullptr);
  EXPECT_EQ(next.ask(), State::granted);
}

TEST(SimCapacity, AGrantedWaiterDestroyedBeforeItRunsStillGivesTheSlotBack) {
  // A queued request's coroutine may be torn down after its grant and before it resumes.
  Capacity c(1, 0);
  auto holder = std::make_unique<Capacity::Claim>(c, nullptr);
  holder->ask();
  auto waiter = std::make_unique<Capacity::Claim>(c, nullptr);
  waiter->ask();
  holder.reset();
  ASSERT_TRUE(waiter->granted());
  waiter.reset();
  EXPECT_EQ(c.in_use(), 0);
  EXPECT_EQ(c.queued(), 0u);
}

TEST(SimCapacity, GivingBackTwiceIsOnce) {
  Capacity c(2, 0);
  Capacity::Claim a(c, nullptr), b(c, nullptr);
  a.ask();
  b.ask();
  a.give_back();
  a.give_back();
  EXPECT_EQ(c.in_use(), 1);
}

}  // namespace
}  // namespace ballast::sim
