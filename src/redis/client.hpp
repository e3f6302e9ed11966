// An asynchronous Redis client for the shared rate limits: hiredis's async API driven by its own Asio
// loop on its own thread. Every call is bounded by a timeout and fails at once while Redis is down, so
// the gateway never waits on Redis; the client reconnects with backoff, reloading scripts and
// resubscribing each time.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/time.hpp"

namespace ballast::redis {

struct Reply {
  enum class Kind { io_error, timeout, error, nil, integer, string, status, array };
  Kind kind = Kind::io_error;
  int64_t integer = 0;
  std::string str;              // string, status, error text (io_error/timeout: what happened, no secrets)
  std::vector<Reply> elements;  // array
  // The call did not reach Redis or got no answer in time: Redis is unavailable, not the script wrong.
  bool unavailable() const { return kind == Kind::io_error || kind == Kind::timeout; }
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;     // AUTH when non-empty; never logged
  Millis timeout{50};       // every call's bound; connecting is bounded by max(4 × timeout, 200 ms)
  Millis backoff_min{100};  // reconnect backoff, doubling with jitter up to backoff_max
  Millis backoff_max{2000};
};

class Client {
 public:
  explicit Client(Options options);
  // Stops the thread; every pending callback is called with io_error before it returns, or never after.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Before start(): a Lua script, loaded with SCRIPT LOAD on every (re)connect; returns its handle.
  int add_script(std::string lua);
  // Before start(): a channel subscribed (on a second connection) on every (re)connect; one callback
  // per channel, called on the client's thread.
  void subscribe(std::string channel, std::function<void(std::string_view message)> on_message);
  // Before start(): told (on the client's thread) each time Redis becomes usable or unusable, with why.
  // The first failed attempt is reported too; retries that fail the same way are not.
  void on_state(std::function<void(bool up, const std::string& why)> callback);
  void start();  // connects in the background; never blocks
  // Connected, authenticated, db selected, scripts loaded, subscriptions on.
  bool up() const { return up_.load(std::memory_order_acquire); }

  // Any thread. `done` is called exactly once, on the client's thread (keep it short: post elsewhere),
  // within about options.timeout: with the reply, or timeout, or io_error at once when Redis is not up.
  void command(std::vector<std::string> args, std::function<void(Reply)> done);
  // EVALSHA of a script added above; on a NOSCRIPT error (Redis restarted and lost its scripts) runs it
  // once more with EVAL, which also loads it again.
  void eval(int script, std::vector<std::string> keys, std::vector<std::string> args,
            std::function<void(Reply)> done);

 private:
  class Connection;  // one hiredis context, its Asio adapter and its reconnect loop (client.cpp)
  struct Script {
    std::string lua;
    std::string sha;  // from SCRIPT LOAD: the same on every connect, since it is the body's SHA-1
  };
  struct Subscription {
    std::string channel;
    std::function<void(std::string_view)> on_message;
  };

  // A connection became ready or was lost: recompute up() and tell on_state on a transition.
  void update_state(bool failed, const std::string& why);
  void shutdown();
  Millis next_backoff_delay(Millis backoff);

  Options options_;
  std::vector<Script> scripts_;
  std::vector<Subscription> subscriptions_;
  std::function<void(bool, const std::string&)> on_state_;
  enum class Reported { nothing, up, down };
  Reported reported_ = Reported::nothing;
  std::string down_why_ = "not connected yet";  // what failed last: io_error replies say it
  bool started_ = false;                        // the caller's thread
  bool stopping_ = false;
  std::minstd_rand random_;  // reconnect jitter
  std::atomic<bool> up_{false};

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<Connection> commands_;
  std::unique_ptr<Connection> subscriber_;  // only when something is subscribed
  std::thread thread_;                      // last: runs ioc_ until the destructor joins it
};

// From a coroutine on any Asio executor: runs eval()/command() and resumes on the caller's executor.
boost::asio::awaitable<Reply> eval(Client& c, int script, std::vector<std::string> keys,
                                   std::vector<std::string> args);
boost::asio::awaitable<Reply> command(Client& c, std::vector<std::string> args);

}  // namespace ballast::redis
