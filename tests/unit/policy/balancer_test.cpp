#include "policy/balancer.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ballast {
namespace {

// Hands out the given numbers in turn.
struct Script {
  std::vector<double> values;
  size_t next = 0;
  std::function<double()> fn() {
    return [this] { return values[next++ % values.size()]; };
  }
};

TEST(Balancer, LeastOutstandingOfTwoRandomChoices) {
  std::vector<Candidate> c(3);
  c[0].outstanding = 5;
  c[1].outstanding = 1;
  c[2].outstanding = 3;
  Script s{{0.1, 0.9}};  // draws 0, then 2 of the remaining {1, 2}
  EXPECT_EQ(pick_endpoint(c, s.fn()), 2);
  Script s2{{0.1, 0.1}};  // draws 0, then 1
  EXPECT_EQ(pick_endpoint(c, s2.fn()), 1);
}

TEST(Balancer, WeightsShapeTheDraw) {
  std::vector<Candidate> c(2);
  c[0].weight = 1;
  c[1].weight = 3;
  Script s{{0.3, 0.0}};  // 0.3 × 4 = 1.2 falls in endpoint 1's share
  EXPECT_EQ(pick_endpoint(c, s.fn()), 1);
  // Outstanding counts per unit of weight: 6 on weight 3 is more loaded than 1 on weight 1.
  c[0].outstanding = 1;
  c[1].outstanding = 6;
  Script s2{{0.3, 0.0}};
  EXPECT_EQ(pick_endpoint(c, s2.fn()), 0);
}

TEST(Balancer, NextTierOnlyWhenTheFirstHasNoneAvailable) {
  std::vector<Candidate> c(3);
  c[0].priority = 0;
  c[1].priority = 1;
  c[2].priority = 1;
  Script s{{0.5}};
  EXPECT_EQ(pick_endpoint(c, s.fn()), 0);
  c[0].available = false;
  int i = pick_endpoint(c, s.fn());
  EXPECT_TRUE(i == 1 || i == 2);
  c[1].available = c[2].available = false;
  EXPECT_EQ(pick_endpoint(c, s.fn()), -1);
}

TEST(Balancer, PickAmongDrawsOnlyFromTheEligible) {
  std::vector<Candidate> c(3);
  c[0].outstanding = 0;
  c[1].outstanding = 4;
  c[2].outstanding = 2;
  Script s{{0.0, 0.0}};
  EXPECT_EQ(pick_among(
                c, [](size_t i) { return i != 0; }, s.fn()),
            2);
  c[2].available = false;
  EXPECT_EQ(pick_among(
                c, [](size_t i) { return i != 0; }, s.fn()),
            1);
  EXPECT_EQ(pick_among(
                c, [](size_t i) { return i == 2; }, s.fn()),
            -1);
}

}  // namespace
}  // namespace ballast
