// The Redis client against a real redis-server started per test on a free loopback port: round trips,
// scripts, subscriptions, and what happens when Redis dies, comes back, stops answering or wants a
// password. Every wait is bounded and polls for its condition.
#include "redis/client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <condition_variable>
#include <csignal>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "redis/redis_server.hpp"

namespace ballast::redis {
namespace {

using namespace std::chrono_literals;

// on_state's calls, recorded from the client's thread.
class StateLog {
 public:
  std::function<void(bool, const std::string&)> callback() {
    return [this](bool up, const std::string& why) {
      const std::lock_guard lock(mutex_);
      events_.emplace_back(up, why);
    };
  }
  std::vector<std::pair<bool, std::string>> events() const {
    const std::lock_guard lock(mutex_);
    return events_;
  }
  size_t count(bool up) const {
    const std::lock_guard lock(mutex_);
    return std::count_if(events_.begin(), events_.end(), [up](const auto& e) { return e.first == up; });
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<bool, std::string>> events_;
};

// Messages a subscription got, from the client's thread.
class Inbox {
 public:
  std::function<void(std::string_view)> callback() {
    return [this](std::string_view message) {
      const std::lock_guard lock(mutex_);
      messages_.emplace_back(message);
    };
  }
  bool has(const std::string& message) const {
    const std::lock_guard lock(mutex_);
    return std::find(messages_.begin(), messages_.end(), message) != messages_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

struct Timed {
  Reply reply;
  Duration took{};
};

// Starts a call and waits (at most 5 s) for its reply.
Timed wait_for(const std::function<void(std::function<void(Reply)>)>& start) {
  auto promise = std::make_shared<std::promise<Reply>>();
  auto future = promise->get_future();
  const TimePoint t0 = Clock::now();
  start([promise](Reply r) { promise->set_value(std::move(r)); });
  if (future.wait_for(5s) != std::future_status::ready) {
    ADD_FAILURE() << "no reply within 5 s";
    return {};
  }
  return {future.get(), Clock::now() - t0};
}

Timed call_sync(Client& c, std::vector<std::string> args) {
  return wait_for([&](auto done) { c.command(std::move(args), std::move(done)); });
}

Timed eval_sync(Client& c, int script, std::vector<std::string> keys, std::vector<std::string> args) {
  return wait_for([&](auto done) { c.eval(script, std::move(keys), std::move(args), std::move(done)); });
}

Options options_for(const RedisServer& server) {
  Options o;
  o.port = server.port();
  o.timeout = 200ms;  // generous: the sanitizer build on a shared 2-core machine
  return o;
}

// INCRBY on KEYS[1] by ARGV[1], answering the key and the new value.
constexpr const char* kIncrScript = "return {KEYS[1], redis.call('INCRBY', KEYS[1], ARGV[1])}";

TEST(RedisClient, CommandRoundTrip) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  Reply set = call_sync(client, {"SET", "k", std::string("v\0w", 3)}).reply;
  EXPECT_EQ(set.kind, Reply::Kind::status);
  EXPECT_EQ(set.str, "OK");
  Reply get = call_sync(client, {"GET", "k"}).reply;
  EXPECT_EQ(get.kind, Reply::Kind::string);
  EXPECT_EQ(get.str, std::string("v\0w", 3));
  EXPECT_EQ(call_sync(client, {"GET", "missing"}).reply.kind, Reply::Kind::nil);
  Reply incr = call_sync(client, {"INCRBY", "n", "41"}).reply;
  EXPECT_EQ(incr.kind, Reply::Kind::integer);
  EXPECT_EQ(incr.integer, 41);
  call_sync(client, {"RPUSH", "l", "a", "b"});
  Reply range = call_sync(client, {"LRANGE", "l", "0", "-1"}).reply;
  ASSERT_EQ(range.kind, Reply::Kind::array);
  ASSERT_EQ(range.elements.size(), 2u);
  EXPECT_EQ(range.elements[1].str, "b");
  Reply wrong = call_sync(client, {"NOSUCHCOMMAND"}).reply;
  EXPECT_EQ(wrong.kind, Reply::Kind::error);
  EXPECT_FALSE(wrong.unavailable());
}

TEST(RedisClient, SelectsTheDatabase) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Options o = options_for(server);
  o.db = 3;
  Client client(o);
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  call_sync(client, {"SET", "in3", "x"});
  Client db0(options_for(server));
  db0.start();
  ASSERT_TRUE(eventually([&] { return db0.up(); }));
  EXPECT_EQ(call_sync(db0, {"GET", "in3"}).reply.kind, Reply::Kind::nil);
  EXPECT_EQ(call_sync(client, {"GET", "in3"}).reply.str, "x");
}

TEST(RedisClient, EvalRunsAScript) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  const int incr = client.add_script(kIncrScript);
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  Reply r = eval_sync(client, incr, {"counter"}, {"5"}).reply;
  ASSERT_EQ(r.kind, Reply::Kind::array) << r.str;
  EXPECT_EQ(r.elements[0].str, "counter");
  EXPECT_EQ(r.elements[1].integer, 5);
  EXPECT_EQ(eval_sync(client, 7, {}, {}).reply.kind, Reply::Kind::error);  // no such script
}

TEST(RedisClient, NoscriptAfterScriptFlushIsRecovered) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  const int incr = client.add_script(kIncrScript);
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  EXPECT_EQ(eval_sync(client, incr, {"c"}, {"1"}).reply.kind, Reply::Kind::array);

  EXPECT_EQ(call_sync(client, {"SCRIPT", "FLUSH"}).reply.str, "OK");
  Reply again = eval_sync(client, incr, {"c"}, {"1"}).reply;
  ASSERT_EQ(again.kind, Reply::Kind::array) << again.str;
  EXPECT_EQ(again.elements[1].integer, 2);
  // The retry loaded it again: EVALSHA alone works now.
  EXPECT_EQ(eval_sync(client, incr, {"c"}, {"1"}).reply.elements.at(1).integer, 3);
}

TEST(RedisClient, SubscriptionGetsAPublish) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  Inbox inbox;
  client.subscribe("ballast:limits", inbox.callback());
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  Reply published = call_sync(client, {"PUBLISH", "ballast:limits", "hello"}).reply;
  EXPECT_EQ(published.integer, 1);  // one subscriber: ours, already on when up() said so
  EXPECT_TRUE(eventually([&] { return inbox.has("hello"); }));
}

TEST(RedisClient, CallsFailAtOnceWhileRedisIsDown) {
  Options o;
  o.port = free_port();  // nothing listens
  o.timeout = 1s;        // "at once" must be far below it
  Client client(o);
  StateLog states;
  client.on_state(states.callback());
  client.start();
  ASSERT_TRUE(eventually([&] { return states.count(false) == 1; }));
  EXPECT_NE(states.events()[0].second.find("refused"), std::string::npos) << states.events()[0].second;

  Timed t = call_sync(client, {"PING"});
  EXPECT_EQ(t.reply.kind, Reply::Kind::io_error);
  EXPECT_TRUE(t.reply.unavailable());
  EXPECT_LT(t.took, 100ms);
  EXPECT_FALSE(client.up());
}

TEST(RedisClient, RedisKilledAndRestarted) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  const int incr = client.add_script(kIncrScript);
  Inbox inbox;
  client.subscribe("ballast:limits", inbox.callback());
  StateLog states;
  client.on_state(states.callback());
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  // up() turns true just before on_state is told, on the client's thread.
  EXPECT_TRUE(eventually([&] { return states.count(true) == 1; }));

  server.kill();
  EXPECT_TRUE(eventually([&] { return !client.up(); }, 500ms));
  EXPECT_TRUE(eventually([&] { return states.count(false) == 1; }, 500ms));
  Timed t = call_sync(client, {"PING"});
  EXPECT_EQ(t.reply.kind, Reply::Kind::io_error);
  EXPECT_LT(t.took, 100ms);
  // A few reconnects fail meanwhile (100, then up to 200, 400 ms apart): none is reported again.
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(states.count(false), 1u);

  ASSERT_TRUE(server.start());  // the same port: Redis lost its scripts and subscribers
  EXPECT_TRUE(eventually([&] { return client.up(); }, 3s));
  EXPECT_TRUE(eventually([&] { return states.count(true) == 2; }));
  EXPECT_EQ(eval_sync(client, incr, {"c"}, {"2"}).reply.elements.at(1).integer, 2);
  EXPECT_EQ(call_sync(client, {"PUBLISH", "ballast:limits", "back"}).reply.integer, 1);
  EXPECT_TRUE(eventually([&] { return inbox.has("back"); }));
}

TEST(RedisClient, AStoppedRedisTimesOut) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Options o = options_for(server);
  o.timeout = 100ms;
  Client client(o);
  client.add_script(kIncrScript);
  StateLog states;
  client.on_state(states.callback());
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  server.pause();
  Timed t = call_sync(client, {"PING"});
  server.resume();  // before any assertion can end the test with Redis stopped
  EXPECT_EQ(t.reply.kind, Reply::Kind::timeout) << t.reply.str;
  EXPECT_GE(t.took, 95ms);
  EXPECT_LT(t.took, 300ms);
  EXPECT_EQ(states.count(false), 1u);
  EXPECT_NE(states.events().back().second.find("within 100ms"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return client.up(); }, 3s));
  EXPECT_EQ(call_sync(client, {"PING"}).reply.str, "PONG");
}

TEST(RedisClient, StuckCallFailsTheOthersAndLateRepliesAreIgnored) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Options o = options_for(server);
  o.timeout = 100ms;
  Client client(o);
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  server.pause();
  std::mutex m;
  std::vector<Reply> replies;
  for (int i = 0; i < 3; ++i) {
    client.command({"INCR", "n"}, [&](Reply r) {
      const std::lock_guard lock(m);
      replies.push_back(std::move(r));
    });
  }
  const bool all = eventually([&] {
    const std::lock_guard lock(m);
    return replies.size() == 3;
  });
  server.resume();
  ASSERT_TRUE(all);
  for (const Reply& r : replies) EXPECT_TRUE(r.unavailable()) << r.str;
  ASSERT_TRUE(eventually([&] { return client.up(); }, 3s));
  // Redis ran the INCRs when it woke; their replies went to a closed connection, not to a later call.
  Reply get = call_sync(client, {"GET", "n"}).reply;
  EXPECT_EQ(get.kind, Reply::Kind::string);
  const std::lock_guard lock(m);
  EXPECT_EQ(replies.size(), 3u);
}

TEST(RedisClient, AuthenticatesWithAPassword) {
  RedisServer server({"--requirepass", "s3cret"});
  ASSERT_TRUE(server.start());
  Options o = options_for(server);
  o.password = "s3cret";
  Client client(o);
  Inbox inbox;
  client.subscribe("ch", inbox.callback());
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  EXPECT_EQ(call_sync(client, {"PUBLISH", "ch", "m"}).reply.integer, 1);
  EXPECT_TRUE(eventually([&] { return inbox.has("m"); }));

  for (const char* password : {"", "wrong"}) {
    Options bad = options_for(server);
    bad.password = password;
    Client refused(bad);
    StateLog states;
    refused.on_state(states.callback());
    refused.start();
    ASSERT_TRUE(eventually([&] { return states.count(false) == 1; })) << password;
    const std::string why = states.events()[0].second;
    EXPECT_TRUE(why.find("NOAUTH") != std::string::npos || why.find("WRONGPASS") != std::string::npos) << why;
    if (*password != '\0') {
      EXPECT_EQ(why.find(password), std::string::npos) << "the password is told: " << why;
    }
    EXPECT_FALSE(refused.up());
  }
}

TEST(RedisClient, CoroutinesResumeOnTheirOwnExecutor) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Client client(options_for(server));
  const int incr = client.add_script(kIncrScript);
  client.start();
  ASSERT_TRUE(eventually([&] { return client.up(); }));

  boost::asio::io_context ioc;
  const auto test_thread = std::this_thread::get_id();
  std::optional<Reply> pong, counted;
  bool same_thread = false;
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        // Named vectors: GCC 12 rejects a braced list as an argument inside co_await.
        std::vector<std::string> ping{"PING"}, keys{"k"}, args{"4"};
        pong = co_await redis::command(client, std::move(ping));
        counted = co_await redis::eval(client, incr, std::move(keys), std::move(args));
        same_thread = std::this_thread::get_id() == test_thread;
      },
      boost::asio::detached);
  // Nothing else keeps ioc busy: run() returning early would mean the client did not hold its work.
  ioc.run();
  ASSERT_TRUE(pong && counted);
  EXPECT_EQ(pong->str, "PONG");
  EXPECT_EQ(counted->elements.at(1).integer, 4);
  EXPECT_TRUE(same_thread);
}

TEST(RedisClient, DestructorFailsPendingCallsOnce) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  std::atomic<int> io_errors{0}, others{0};
  {
    Options o = options_for(server);
    o.timeout = 5s;  // nothing times out: the destructor must answer them
    Client client(o);
    client.start();
    ASSERT_TRUE(eventually([&] { return client.up(); }));
    server.pause();
    for (int i = 0; i < 5; ++i) {
      client.command({"PING"},
                     [&](const Reply& r) { ++(r.kind == Reply::Kind::io_error ? io_errors : others); });
    }
  }
  server.resume();
  EXPECT_EQ(io_errors.load(), 5);
  EXPECT_EQ(others.load(), 0);
}

TEST(RedisClient, DestructorMidConnectOrNeverStarted) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Options o = options_for(server);
  o.password = "unneeded";  // a handshake step that fails: Redis has no password set
  for (int i = 0; i < 20; ++i) {
    Client client(o);
    client.subscribe("ch", [](std::string_view) {});
    client.start();
    if (i % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200 * i));  // various points
  }
  Client never_started(o);
  Reply r = call_sync(never_started, {"PING"}).reply;
  EXPECT_EQ(r.kind, Reply::Kind::io_error);
}

}  // namespace
}  // namespace ballast::redis
