// The limits shared through Redis, as two replicas in one process see them, against a real
// redis-server: a slot freed by one is taken by the other within milliseconds, a dead replica's
// leases expire, the shared buckets charge all or nothing, and Redis gone answers at once.
#include "gateway/shared_limits.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <vector>

#include <fmt/format.h>

#include "redis/redis_server.hpp"

namespace ballast {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using redis::RedisServer;

config::Redis config_for(int port, Millis lease_ttl = Millis(30'000)) {
  config::Redis c;
  c.port = port;
  c.url = fmt::format("redis://127.0.0.1:{}/0", port);
  c.prefix = "test:";
  c.timeout = Millis(200);  // a sanitizer build on a busy machine is slow; the bound is not what is tested
  c.lease_ttl = lease_ttl;
  return c;
}

// A coroutine run to its end on a loop of its own, as a worker would run it.
template <typename T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.run();
  return f.get();
}

// A slot of `key` with no rates to charge with it.
asio::awaitable<SharedLimits::Take> slot(SharedLimits& limits, std::string key, int limit,
                                         std::string& lease) {
  Millis unused{0};
  co_return co_await limits.acquire(key, limit, lease, {}, unused);
}

// Waits for a slot of `key` as the gateway does: try, watch, try again when told or every 200 ms.
asio::awaitable<std::string> take_slot(SharedLimits& limits, std::string key, int limit) {
  Wakeup wake(co_await asio::this_coro::executor);
  std::optional<SharedLimits::Watch> watch;
  std::string lease;
  while (co_await slot(limits, key, limit, lease) == SharedLimits::Take::full) {
    if (!watch) {
      watch.emplace(limits, key, co_await asio::this_coro::executor, wake);
      continue;
    }
    co_await wake.wait_until(Clock::now() + 200ms);
  }
  co_return lease;
}

class SharedLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server.start()); }
  static bool up(const SharedLimits& l) {
    return redis::eventually([&] { return l.up(); }, 5s);
  }
  RedisServer server;
};

TEST_F(SharedLimitsTest, ASlotFreedOnOneReplicaIsTakenOnAnotherWithinMilliseconds) {
  SharedLimits a(config_for(server.port())), b(config_for(server.port()));
  a.start();
  b.start();
  ASSERT_TRUE(up(a) && up(b));
  const std::string key = a.slots_key("m", "e");
  std::vector<double> handoffs_ms;
  for (int i = 0; i < 200; ++i) {
    // b's release of the last round may still be on its way: a waits for it as b will.
    std::string held = run(take_slot(a, key, 1));
    // b waits on its own loop; a frees the slot once b is watching.
    asio::io_context io;
    auto got = asio::co_spawn(io, take_slot(b, key, 1), asio::use_future);
    io.run_for(5ms);  // b has tried, found it full, and watches
    const TimePoint freed = Clock::now();
    a.release(key, held);
    io.run();
    handoffs_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - freed).count());
    std::string lease = got.get();
    ASSERT_FALSE(lease.empty());
    b.release(key, lease);
  }
  std::sort(handoffs_ms.begin(), handoffs_ms.end());
  const double p99 = handoffs_ms[handoffs_ms.size() * 99 / 100];
  EXPECT_LT(p99, 10) << "p50 " << handoffs_ms[handoffs_ms.size() / 2] << " ms";
}

TEST_F(SharedLimitsTest, TheLimitHoldsAcrossReplicasAndAReleasedSlotIsFreeAgain) {
  SharedLimits a(config_for(server.port())), b(config_for(server.port()));
  a.start();
  b.start();
  ASSERT_TRUE(up(a) && up(b));
  const std::string key = a.slots_key("m", "e");
  std::vector<std::string> leases(3);
  EXPECT_EQ(run(slot(a, key, 3, leases[0])), SharedLimits::Take::granted);
  EXPECT_EQ(run(slot(b, key, 3, leases[1])), SharedLimits::Take::granted);
  EXPECT_EQ(run(slot(a, key, 3, leases[2])), SharedLimits::Take::granted);
  std::string more;
  EXPECT_EQ(run(slot(b, key, 3, more)), SharedLimits::Take::full);
  EXPECT_TRUE(more.empty());
  a.release(key, leases[0]);
  EXPECT_TRUE(redis::eventually([&] { return run(slot(b, key, 3, more)) == SharedLimits::Take::granted; }));
}

TEST_F(SharedLimitsTest, ADeadReplicasLeasesExpireAndAnotherTakesThem) {
  const Millis ttl(1'000);
  const std::string key = SharedLimits(config_for(server.port())).slots_key("m", "e");
  auto dying = std::make_unique<SharedLimits>(config_for(server.port(), ttl));
  dying->start();
  ASSERT_TRUE(up(*dying));
  std::string held;
  ASSERT_EQ(run(slot(*dying, key, 1, held)), SharedLimits::Take::granted);
  // Held past its first renewals, then the replica stops without releasing: it died.
  std::this_thread::sleep_for(ttl);  // the renewals are what this waits for
  SharedLimits survivor(config_for(server.port(), ttl));
  survivor.start();
  ASSERT_TRUE(up(survivor));
  std::string lease;
  EXPECT_EQ(run(slot(survivor, key, 1, lease)), SharedLimits::Take::full) << "the renewals kept it";
  const TimePoint died = Clock::now();
  dying.reset();
  lease = run(take_slot(survivor, key, 1));
  const Duration took = Clock::now() - died;
  EXPECT_FALSE(lease.empty());
  EXPECT_LE(took, ttl + 500ms);  // its last renewal, then the 200 ms look
}

TEST_F(SharedLimitsTest, BucketsChargeAllOrNothingAndSayHowLongToWait) {
  SharedLimits a(config_for(server.port())), b(config_for(server.port()));
  a.start();
  b.start();
  ASSERT_TRUE(up(a) && up(b));
  // 600 a minute holds 100: the two replicas share them.
  const std::string rpm = a.bucket_key("rpm", "m", "e"), tpm = a.bucket_key("tpm", "m", "e");
  int passed = 0;
  for (int i = 0; i < 120; ++i) {
    SharedLimits& via = i % 2 ? b : a;
    auto v = run(via.charge({{rpm, 600, 1}}));
    ASSERT_FALSE(v.unavailable);
    if (!v.wait) ++passed;
  }
  EXPECT_GE(passed, 100);
  EXPECT_LE(passed, 101);  // and the refill of the few ms the loop took
  auto refused = run(a.charge({{rpm, 600, 1}}));
  ASSERT_TRUE(refused.wait);
  EXPECT_GT(*refused.wait, Millis(0));
  EXPECT_LE(*refused.wait, Millis(100));  // one request's worth at 10 a second
  // All or nothing: a charge that fails on rpm takes no tokens from tpm (6,000 a minute holds
  // 1,000, and refills 0.1 a ms).
  auto both = run(a.charge({{tpm, 6'000, 500}, {rpm, 600, 1}}));
  ASSERT_TRUE(both.wait);
  auto tokens_only = run(a.charge({{tpm, 6'000, 1'000}}));
  EXPECT_FALSE(tokens_only.wait) << "the refused charge took tokens";
  // A correction gives back.
  auto over = run(a.charge({{tpm, 6'000, 50}}));
  ASSERT_TRUE(over.wait);
  a.adjust({tpm, 6'000, 500});
  EXPECT_TRUE(redis::eventually([&] { return !run(b.charge({{tpm, 6'000, 400}})).wait; }));
}

TEST_F(SharedLimitsTest, ASlotAndItsRatesAreTakenTogetherOrNotAtAll) {
  SharedLimits a(config_for(server.port()));
  a.start();
  ASSERT_TRUE(up(a));
  const std::string key = a.slots_key("m", "e"), rpm = a.bucket_key("rpm", "m", "e");
  // rpm 6 holds 1: the first request takes it with its slot.
  const std::vector<SharedLimits::Charge> charges{{rpm, 6, 1}};
  std::string first, second;
  Millis wait{0};
  ASSERT_EQ(run(a.acquire(key, 2, first, charges, wait)), SharedLimits::Take::granted);
  // The second finds a slot but no rate: it takes neither, and hears when the rate allows it.
  EXPECT_EQ(run(a.acquire(key, 2, second, charges, wait)), SharedLimits::Take::rate_limited);
  EXPECT_TRUE(second.empty());
  EXPECT_GT(wait, Millis(9'000));  // one request's worth at 6 a minute
  EXPECT_LE(wait, Millis(10'000));
  std::string other;
  EXPECT_EQ(run(slot(a, key, 2, other)), SharedLimits::Take::granted) << "the refused one took a slot";
  // No slot free: nothing is charged (the request waits for a slot, and pays when it gets one).
  const std::vector<SharedLimits::Charge> generous{{a.bucket_key("rpm", "m", "f"), 6, 1}};
  std::string third;
  EXPECT_EQ(run(a.acquire(key, 2, third, generous, wait)), SharedLimits::Take::full);
  EXPECT_FALSE(run(a.charge(generous)).wait) << "a request that got no slot was charged";
}

TEST_F(SharedLimitsTest, WithRedisGoneEveryCallAnswersAtOnceAndLeasesCountWhenItReturns) {
  SharedLimits a(config_for(server.port()));
  a.start();
  ASSERT_TRUE(up(a));
  const uint64_t epoch = a.epoch();
  server.kill();
  ASSERT_TRUE(redis::eventually([&] { return !a.up(); }));
  EXPECT_NE(a.epoch(), epoch);
  const std::string key = a.slots_key("m", "e");
  const TimePoint asked = Clock::now();
  std::string local;
  EXPECT_EQ(run(slot(a, key, 1, local)), SharedLimits::Take::unavailable);
  EXPECT_FALSE(local.empty());  // held under the local share
  EXPECT_TRUE(run(a.charge({{a.bucket_key("rpm", "m", "e"), 600, 1}})).unavailable);
  EXPECT_LT(Clock::now() - asked, 50ms);
  SharedLimitsView v = a.view(Clock::now());
  EXPECT_FALSE(v.shared);
  EXPECT_FALSE(v.why.empty());
  EXPECT_EQ(v.fallbacks, 1u);
  // Back (empty, as a restarted Redis is): the lease taken meanwhile is registered and counts.
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(up(a));
  SharedLimits b(config_for(server.port()));
  b.start();
  ASSERT_TRUE(up(b));
  std::string other;
  EXPECT_TRUE(redis::eventually([&] {
    std::string probe;
    auto take = run(slot(b, key, 1, probe));
    if (take == SharedLimits::Take::granted) b.release(key, probe);
    return take == SharedLimits::Take::full;
  }));
  a.release(key, local);
  EXPECT_TRUE(redis::eventually([&] { return run(slot(b, key, 1, other)) == SharedLimits::Take::granted; }));
}

TEST(SharedLimitsKeys, NamesWithSlashesNeverMeetOnOneKey) {
  SharedLimits limits(config::Redis{});
  EXPECT_NE(limits.slots_key("a/b", "c"), limits.slots_key("a", "b/c"));
  EXPECT_NE(limits.bucket_key("rpm", "a/b", "c"), limits.bucket_key("rpm", "a", "b/c"));
  EXPECT_EQ(limits.slots_key("m", "e").rfind("ballast:", 0), 0u);
  // A client key is never written to Redis, only a hash of it.
  EXPECT_EQ(limits.client_bucket_key("rpm", "sk-secret").find("sk-secret"), std::string::npos);
}

}  // namespace
}  // namespace ballast
