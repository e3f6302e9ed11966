// The Redis client: an Asio adapter for hiredis's async API, a Connection that connects, runs the
// handshake (AUTH, SELECT, SCRIPT LOAD or SUBSCRIBE), bounds every call and reconnects with backoff,
// and the Client that owns two of them (commands, subscriptions) and the thread they run on.
#include "redis/client.hpp"

#include <fmt/core.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <algorithm>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <deque>
#include <utility>

namespace ballast::redis {

namespace asio = boost::asio;
using WaitType = asio::posix::descriptor_base::wait_type;

namespace {

Reply failure(Reply::Kind kind, std::string why) {
  Reply reply;
  reply.kind = kind;
  reply.str = std::move(why);
  return reply;
}

Reply to_reply(const redisReply& r) {
  Reply reply;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      reply.kind = Reply::Kind::string;
      reply.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.kind = Reply::Kind::status;
      reply.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.kind = Reply::Kind::error;
      reply.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.kind = Reply::Kind::integer;
      reply.integer = r.integer;
      break;
    case REDIS_REPLY_NIL:
      reply.kind = Reply::Kind::nil;
      break;
    case REDIS_REPLY_ARRAY:
      reply.kind = Reply::Kind::array;
      reply.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) reply.elements.push_back(to_reply(*r.element[i]));
      break;
    default:
      reply = failure(Reply::Kind::io_error, fmt::format("unknown reply type {}", r.type));
  }
  return reply;
}

// hiredis's event hooks on an Asio loop. hiredis owns the socket and closes it after `cleanup`, so the
// descriptor is released there, never closed. The adapter keeps itself alive from attach to cleanup
// (hiredis holds it only as ev.data); a wait in flight holds it too, since cleanup can run inside
// redisAsyncHandleRead, called from that wait's handler.
class Adapter : public std::enable_shared_from_this<Adapter> {
 public:
  explicit Adapter(asio::io_context& ioc) : fd_(ioc) {}
  ~Adapter() = default;
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  static bool attach(asio::io_context& ioc, redisAsyncContext* ac) {
    auto adapter = std::make_shared<Adapter>(ioc);
    boost::system::error_code ec;
    adapter->fd_.assign(ac->c.fd, ec);
    if (ec) return false;
    adapter->ac_ = ac;
    adapter->self_ = adapter;
    ac->ev.data = adapter.get();
    ac->ev.addRead = [](void* a) { static_cast<Adapter*>(a)->want(WaitType::wait_read, true); };
    ac->ev.delRead = [](void* a) { static_cast<Adapter*>(a)->want(WaitType::wait_read, false); };
    ac->ev.addWrite = [](void* a) { static_cast<Adapter*>(a)->want(WaitType::wait_write, true); };
    ac->ev.delWrite = [](void* a) { static_cast<Adapter*>(a)->want(WaitType::wait_write, false); };
    ac->ev.cleanup = [](void* a) { static_cast<Adapter*>(a)->cleanup(); };
    return true;
  }

 private:
  struct Interest {
    bool wanted = false;
    bool waiting = false;  // an async_wait is in flight
  };

  Interest& interest(WaitType type) { return type == WaitType::wait_read ? read_ : write_; }

  // Dropping interest leaves a wait in flight: its handler sees `wanted` false and does nothing, and
  // cancelling would cancel the other direction's wait too.
  void want(WaitType type, bool wanted) {
    interest(type).wanted = wanted;
    watch(type);
  }

  void watch(WaitType type) {
    Interest& in = interest(type);
    if (!in.wanted || in.waiting || ac_ == nullptr) return;
    in.waiting = true;
    fd_.async_wait(type, [self = shared_from_this(), type](boost::system::error_code ec) {
      Interest& in = self->interest(type);
      in.waiting = false;
      if (ec || self->ac_ == nullptr || !in.wanted) return;
      if (type == WaitType::wait_read) {
        redisAsyncHandleRead(self->ac_);
      } else {
        redisAsyncHandleWrite(self->ac_);
      }
      self->watch(type);  // unless hiredis freed the context (cleanup cleared ac_) or lost interest
    });
  }

  void cleanup() {
    auto keep = std::move(self_);  // waits in flight may still hold it
    ac_ = nullptr;
    fd_.release();  // deregisters and aborts the waits; hiredis closes the socket itself
  }

  asio::posix::stream_descriptor fd_;
  redisAsyncContext* ac_ = nullptr;
  Interest read_;
  Interest write_;
  std::shared_ptr<Adapter> self_;
};

}  // namespace

// One hiredis connection: connect → handshake (each step bounded) → ready; any failure frees the
// context, fails what waited on it and retries after a backoff, until the client stops. On the client's
// thread only. The commands connection carries calls; the subscriber only SUBSCRIBEs.
class Client::Connection {
 public:
  enum class Role { commands, subscriber };

  Connection(Client& client, Role role)
      : client_(client), role_(role), timer_(client.ioc_), backoff_(client.options_.backoff_min) {}
  ~Connection() = default;  // shutdown() freed the context on the loop thread
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ready() const { return phase_ == Phase::ready; }

  void connect() {
    if (client_.stopping_) return;
    const Options& o = client_.options_;
    phase_ = Phase::connecting;
    // A connect gets longer than a call: a fresh TCP handshake on a loaded host, and it is off the
    // request path (calls fail at once meanwhile).
    const Millis bound = std::max(4 * o.timeout, Millis{200});
    stall_why_ = fmt::format("connect to {} got no answer within {}ms", address(), bound.count());
    arm_phase(Clock::now() + bound);

    // hiredis resolves the host here, blocking this thread (not the caller's); use an address.
    redisAsyncContext* ac = redisAsyncConnect(o.host.c_str(), o.port);
    if (ac == nullptr) return lost(fmt::format("connect to {}: out of memory", address()));
    if (ac->err != 0 || !Adapter::attach(client_.ioc_, ac)) {
      std::string why = fmt::format("connect to {}: {}", address(), ac->err != 0 ? ac->errstr : "bad socket");
      redisAsyncFree(ac);
      return lost(why);
    }
    // The subscriber sends nothing once subscribed (hiredis 0.14 would hand a message to a pending
    // PING's callback), so a connection that dies silently is found by TCP keepalive (15 s idle).
    redisEnableKeepAlive(&ac->c);
    ac->data = this;
    ac_ = ac;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    // Only after attach: setting it arms the write wait whose firing tells that the connect is done.
    redisAsyncSetConnectCallback(ac, on_connect);
  }

  // `deadline` bounds the reply; a call that passes it means Redis (or the link) is stuck, and since
  // replies come in order every later call would wait behind it: the connection is dropped.
  void send(const std::vector<std::string>& argv, TimePoint deadline, std::function<void(Reply)> done) {
    if (phase_ != Phase::ready || !client_.up()) {
      return done(failure(Reply::Kind::io_error, "redis is not up: " + client_.down_why_));
    }
    if (issue(argv, on_call_reply, nullptr) != REDIS_OK) {
      return done(failure(Reply::Kind::io_error, "could not send the command to redis"));
    }
    calls_.push_back({deadline, std::move(done)});
    if (deadline < armed_until_) arm(deadline);
  }

  // The client is stopping: free the context and fail the calls, without reconnecting.
  void close() { drop("the redis client is shutting down"); }

 private:
  enum class Phase { waiting, connecting, handshaking, ready };
  struct Call {
    TimePoint deadline;
    std::function<void(Reply)> done;
  };
  struct Step {
    std::vector<std::string> argv;
    std::string label;  // for messages: never the arguments, which may hold the password
    Script* script = nullptr;
    Subscription* subscription = nullptr;
  };

  std::string address() const { return fmt::format("{}:{}", client_.options_.host, client_.options_.port); }

  int issue(const std::vector<std::string>& argv, redisCallbackFn* fn, void* privdata) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(ac_, fn, privdata, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  }

  // hiredis calls these; `ac != ac_` means a context this connection already let go of.
  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Connection*>(ac->data);
    if (ac != self->ac_) return;
    if (status != REDIS_OK) {
      self->ac_ = nullptr;  // hiredis frees it when this returns
      return self->lost(fmt::format("connect to {}: {}", self->address(), ac->c.errstr));
    }
    self->handshake();
  }

  static void on_disconnect(const redisAsyncContext* ac, int /*status*/) {
    auto* self = static_cast<Connection*>(ac->data);
    if (ac != self->ac_) return;
    self->ac_ = nullptr;  // hiredis is freeing it
    const char* why = ac->c.errstr[0] != '\0' ? ac->c.errstr : "closed";
    self->lost(fmt::format("connection to {} lost: {}", self->address(), why));
  }

  // A null reply means the context is being freed; whoever freed it fails the calls and reports why.
  static void on_call_reply(redisAsyncContext* ac, void* r, void* /*privdata*/) {
    auto* self = static_cast<Connection*>(ac->data);
    if (r == nullptr || ac != self->ac_ || self->calls_.empty()) return;
    Call call = std::move(self->calls_.front());
    self->calls_.pop_front();
    call.done(to_reply(*static_cast<redisReply*>(r)));
  }

  static void on_step_reply(redisAsyncContext* ac, void* r, void* /*privdata*/) {
    auto* self = static_cast<Connection*>(ac->data);
    if (r == nullptr || ac != self->ac_ || self->phase_ != Phase::handshaking) return;
    const auto& reply = *static_cast<redisReply*>(r);
    Step& step = self->steps_[self->step_];
    // hiredis defers the free until this callback returns, so dropping here is safe.
    if (reply.type == REDIS_REPLY_ERROR) return self->drop(fmt::format("{}: {}", step.label, reply.str));
    if (step.script != nullptr) step.script->sha.assign(reply.str, reply.len);
    ++self->step_;
    self->next_step();
  }

  // Called for SUBSCRIBE's confirmation, then for every message on the channel.
  static void on_subscribe_reply(redisAsyncContext* ac, void* r, void* privdata) {
    auto* self = static_cast<Connection*>(ac->data);
    const auto* reply = static_cast<redisReply*>(r);
    if (reply == nullptr || ac != self->ac_ || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
      return;
    const std::string_view kind(reply->element[0]->str, reply->element[0]->len);
    if (kind == "message") {
      const redisReply& message = *reply->element[2];
      static_cast<Subscription*>(privdata)->on_message(std::string_view(message.str, message.len));
    } else if (kind == "subscribe" && self->phase_ == Phase::handshaking) {
      ++self->step_;
      self->next_step();
    }
  }

  // Steps run one at a time, so each is bounded on its own and a failure names the step.
  void handshake() {
    const Options& o = client_.options_;
    phase_ = Phase::handshaking;
    steps_.clear();
    step_ = 0;
    if (!o.password.empty()) steps_.push_back({{"AUTH", o.password}, "AUTH"});
    if (role_ == Role::commands) {
      // Redis answers, and (without a password) does not want one: "up" is then never a guess.
      steps_.push_back({{"PING"}, "PING"});
      if (o.db != 0) steps_.push_back({{"SELECT", std::to_string(o.db)}, fmt::format("SELECT {}", o.db)});
      for (size_t i = 0; i < client_.scripts_.size(); ++i) {
        Script& s = client_.scripts_[i];
        steps_.push_back({{"SCRIPT", "LOAD", s.lua}, fmt::format("SCRIPT LOAD of script {}", i), &s});
      }
    } else {
      // Channels are global, not per database: the subscriber needs no SELECT.
      for (Subscription& s : client_.subscriptions_) {
        steps_.push_back({{"SUBSCRIBE", s.channel}, "SUBSCRIBE " + s.channel, nullptr, &s});
      }
    }
    next_step();
  }

  void next_step() {
    if (step_ == steps_.size()) return became_ready();
    const Step& step = steps_[step_];
    const Millis bound = client_.options_.timeout;
    stall_why_ = fmt::format("no answer to {} from {} within {}ms", step.label, address(), bound.count());
    arm_phase(Clock::now() + bound);
    const int sent = step.subscription != nullptr ? issue(step.argv, on_subscribe_reply, step.subscription)
                                                  : issue(step.argv, on_step_reply, nullptr);
    if (sent != REDIS_OK) {
      // Dropped from the timer, not here: this may run inside hiredis's connect callback, where
      // freeing the context would pull it from under hiredis.
      stall_why_ = fmt::format("could not send {} to {}", step.label, address());
      arm_phase(Clock::now());
    }
  }

  void became_ready() {
    phase_ = Phase::ready;
    backoff_ = client_.options_.backoff_min;
    armed_until_ = TimePoint::max();
    timer_.cancel();
    client_.update_state(false, fmt::format("connected to {}", address()));
  }

  // Frees the context now. Not from hiredis's connect or disconnect callbacks; from a reply callback
  // hiredis defers the free until the callback returns.
  void drop(const std::string& why, TimePoint expired_by = TimePoint::min()) {
    if (ac_ != nullptr) redisAsyncFree(std::exchange(ac_, nullptr));
    lost(why, expired_by);
  }

  // The context is gone: report, schedule the retry, then fail the calls (those past `expired_by` with
  // timeout), last, since their callbacks may call in again and must find the client down.
  void lost(const std::string& why, TimePoint expired_by = TimePoint::min()) {
    phase_ = Phase::waiting;
    armed_until_ = TimePoint::max();
    timer_.cancel();
    client_.update_state(true, why);
    if (!client_.stopping_) {
      arm_phase(Clock::now() + client_.next_backoff_delay(backoff_));
      backoff_ = std::min(2 * backoff_, client_.options_.backoff_max);
    }
    for (Call& call : std::exchange(calls_, {})) {
      call.done(failure(call.deadline <= expired_by ? Reply::Kind::timeout : Reply::Kind::io_error, why));
    }
  }

  void arm_phase(TimePoint at) {
    wake_at_ = at;
    arm(at);
  }

  // Re-armed only for an earlier deadline while calls run (timerfd_settime is not free), so a wake-up
  // may be early or stale: on_timer checks the time itself.
  void arm(TimePoint at) {
    armed_until_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) on_timer();
    });
  }

  void on_timer() {
    const TimePoint now = Clock::now();
    armed_until_ = TimePoint::max();
    if (phase_ != Phase::ready) {
      if (now < wake_at_) return arm(wake_at_);
      if (phase_ == Phase::waiting) return connect();
      return drop(std::string(stall_why_));  // a copy: the next attempt rewrites it
    }
    TimePoint earliest = TimePoint::max();
    for (const Call& call : calls_) earliest = std::min(earliest, call.deadline);
    if (earliest <= now) {
      return drop(
          fmt::format("no answer from redis at {} within {}ms", address(), client_.options_.timeout.count()),
          now);
    }
    if (earliest != TimePoint::max()) arm(earliest);
  }

  Client& client_;
  const Role role_;
  asio::steady_timer timer_;  // the phase's bound, the retry's backoff, or the earliest call's deadline
  redisAsyncContext* ac_ = nullptr;
  Phase phase_ = Phase::waiting;
  TimePoint wake_at_;                         // connecting, handshaking, waiting: when the timer acts
  TimePoint armed_until_ = TimePoint::max();  // ready: the deadline the timer is armed for
  std::string stall_why_;                     // what drop() says if the phase's bound passes
  Millis backoff_;
  std::vector<Step> steps_;
  size_t step_ = 0;
  std::deque<Call> calls_;  // in the order sent, which is the order Redis answers
};

Client::Client(Options options)
    : options_(std::move(options)),
      random_(std::random_device{}()),
      work_(asio::make_work_guard(ioc_)),
      commands_(std::make_unique<Connection>(*this, Connection::Role::commands)),
      thread_([this] {
        // hiredis 0.14 writes with write(), not send(MSG_NOSIGNAL): writing to a Redis that just died
        // raises SIGPIPE. ballast ignores it process-wide (main.cpp); blocking it on this thread keeps
        // the client safe in any other process too (tests, tools): the write fails with EPIPE instead.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        pthread_setname_np(pthread_self(), "redis");
        ioc_.run();
      }) {}

Client::~Client() {
  asio::post(ioc_, [this] { shutdown(); });
  work_.reset();   // run() returns once the aborted waits have been handled
  thread_.join();  // after this nothing runs: the members can go
}

int Client::add_script(std::string lua) {
  scripts_.push_back({std::move(lua), {}});
  return static_cast<int>(scripts_.size()) - 1;
}

void Client::subscribe(std::string channel, std::function<void(std::string_view message)> on_message) {
  subscriptions_.push_back({std::move(channel), std::move(on_message)});
}

void Client::on_state(std::function<void(bool up, const std::string& why)> callback) {
  on_state_ = std::move(callback);
}

void Client::start() {
  if (started_) return;
  started_ = true;
  if (!subscriptions_.empty())
    subscriber_ = std::make_unique<Connection>(*this, Connection::Role::subscriber);
  // The post publishes everything configured so far to the client's thread.
  asio::post(ioc_, [this] {
    commands_->connect();
    if (subscriber_) subscriber_->connect();
  });
}

void Client::command(std::vector<std::string> args, std::function<void(Reply)> done) {
  asio::post(ioc_, [this, args = std::move(args), done = std::move(done)]() mutable {
    commands_->send(args, Clock::now() + options_.timeout, std::move(done));
  });
}

void Client::eval(int script, std::vector<std::string> keys, std::vector<std::string> args,
                  std::function<void(Reply)> done) {
  asio::post(
      ioc_, [this, script, keys = std::move(keys), args = std::move(args), done = std::move(done)]() mutable {
        if (script < 0 || static_cast<size_t>(script) >= scripts_.size()) {
          return done(failure(Reply::Kind::error, fmt::format("no script {}", script)));
        }
        std::vector<std::string> argv{"EVALSHA", scripts_[script].sha, std::to_string(keys.size())};
        std::move(keys.begin(), keys.end(), std::back_inserter(argv));
        std::move(args.begin(), args.end(), std::back_inserter(argv));
        const TimePoint deadline = Clock::now() + options_.timeout;
        commands_->send(argv, deadline,
                        [this, script, argv, deadline, done = std::move(done)](Reply reply) mutable {
                          if (reply.kind != Reply::Kind::error || !reply.str.starts_with("NOSCRIPT"))
                            return done(std::move(reply));
                          // Redis lost its scripts (restart, SCRIPT FLUSH): EVAL runs the body and caches it
                          // again under the same SHA, in one round trip, within the first attempt's deadline.
                          argv[0] = "EVAL";
                          argv[1] = scripts_[script].lua;
                          commands_->send(argv, deadline, std::move(done));
                        });
      });
}

void Client::update_state(bool failed, const std::string& why) {
  const bool now_up = commands_->ready() && (!subscriber_ || subscriber_->ready());
  up_.store(now_up, std::memory_order_release);
  if (failed) down_why_ = why;
  if (stopping_) return;
  const Reported next = now_up ? Reported::up : failed ? Reported::down : reported_;
  if (next == reported_) return;  // a retry failing again, or one connection of two ready
  reported_ = next;
  // Whoever listens says what the change means (the shared limits log it); alone, the client logs it.
  if (on_state_) {
    on_state_(now_up, why);
  } else if (now_up) {
    spdlog::info("redis: up ({}:{} db {})", options_.host, options_.port, options_.db);
  } else {
    spdlog::warn("redis: unavailable: {}", why);
  }
}

void Client::shutdown() {
  stopping_ = true;
  commands_->close();
  if (subscriber_) subscriber_->close();
}

Millis Client::next_backoff_delay(Millis backoff) {
  // Half to all of the current backoff ("equal jitter"), so clients that lost Redis together spread out.
  std::uniform_int_distribution<Millis::rep> pick(backoff.count() / 2, backoff.count());
  return std::max(options_.backoff_min, Millis{pick(random_)});
}

namespace {

// Runs `start(done)` and resumes the awaiting coroutine on its own executor with the reply. The
// coroutine's handler is move-only and std::function wants a copy: it is shared. The executor is held
// with outstanding work so the caller's loop does not run out of work while Redis answers.
template <typename Start>
asio::awaitable<Reply> await_reply(Start start) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Reply)>(
      [&start](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto ex =
            asio::prefer(asio::get_associated_executor(*shared), asio::execution::outstanding_work.tracked);
        start([shared, ex](Reply reply) {
          asio::post(ex, [shared, reply = std::move(reply)]() mutable { (*shared)(std::move(reply)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace

asio::awaitable<Reply> eval(Client& c, int script, std::vector<std::string> keys,
                            std::vector<std::string> args) {
  co_return co_await await_reply([&](std::function<void(Reply)> done) {
    c.eval(script, std::move(keys), std::move(args), std::move(done));
  });
}

asio::awaitable<Reply> command(Client& c, std::vector<std::string> args) {
  co_return co_await await_reply(
      [&](std::function<void(Reply)> done) { c.command(std::move(args), std::move(done)); });
}

}  // namespace ballast::redis
