#include "load/generator.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>

#include <boost/algorithm/string/predicate.hpp>

#include <fmt/format.h>

#include "policy/classify.hpp"
#include "policy/error_code.hpp"
#include "policy/json_read.hpp"
#include "policy/retry.hpp"
#include "policy/sse_scanner.hpp"
#include "upstream/curl_multi.hpp"

namespace ballast::load {

namespace asio = boost::asio;

namespace {

// The longest Retry-After a closed-loop worker waits: what openai-python and openai-node honour.
constexpr Millis kLongestWait{60'000};

uint64_t micros(Duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us < 0 ? 0 : static_cast<uint64_t>(us);
}

std::string error_code_of(std::string_view body) {
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return "";
  std::string_view code;
  if (doc["error"]["code"].get(code) == simdjson::SUCCESS) return std::string(code);
  return "";
}

// A non-streamed answer is what a client can use: a JSON object with its `choices`.
bool usable_answer(std::string_view body) {
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::array choices;
  return doc["choices"].get(choices) == simdjson::SUCCESS;
}

// A refusal that says when to come back (429 or 503 with retry-after-ms or Retry-After, as the
// OpenAI SDKs read them): how long it asked for. Nothing for any other answer.
std::optional<Millis> refusal_wait(int status, const Headers& headers) {
  if (status != 429 && status != 503) return std::nullopt;
  HeaderPairs told;
  for (const auto& [name, value] : headers)
    if (boost::iequals(name, "retry-after-ms") || boost::iequals(name, "retry-after"))
      told.emplace_back(name, value);
  if (told.empty()) return std::nullopt;
  auto wait = retry_hint(told, std::chrono::system_clock::now());
  if (!wait) return std::nullopt;
  return std::max(*wait, Millis(0));
}

class Runner {
 public:
  Runner(const Request& req, const RunSpec& spec) : req_(req), spec_(spec), multi_(io_), rng_(spec.seed) {}

  RunStats go() {
    stats_.mode = spec_.open ? "open" : "closed";
    stats_.load = spec_.load;
    stats_.duration_s = std::chrono::duration<double>(spec_.duration).count();
    start_ = Clock::now();
    end_ = start_ + spec_.duration;
    if (spec_.open) {
      producers_ = 1;
      asio::co_spawn(io_, arrivals(), asio::detached);
    } else {
      producers_ = static_cast<int>(spec_.load);
      for (int i = 0; i < producers_; ++i) asio::co_spawn(io_, worker(), asio::detached);
    }
    if (spec_.progress) asio::co_spawn(io_, progress(), asio::detached);
    io_.run();
    if (spec_.progress) std::fputs("\r\033[K", stderr);
    return std::move(stats_);
  }

 private:
  // A closed-loop worker sends its next request when the last one ended, after the wait a refusal
  // asked for (unless told not to): re-sending refusals at once measures a retry storm, not the
  // target.
  asio::awaitable<void> worker() {
    asio::steady_timer timer(io_);
    for (bool first = true; Clock::now() < end_; first = false) {
      ++in_flight_;
      Millis wait = std::min(co_await one(Clock::now(), first), kLongestWait);
      if (spec_.respect_retry_after && wait > Millis(0)) {
        timer.expires_at(std::min(end_, Clock::now() + wait));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
    --producers_;
    finish_if_done();
  }

  // The run is over when nothing more will be sent and nothing is in flight. The loop is stopped
  // then, rather than left to run down: curl may keep a timer for its connection cache.
  void finish_if_done() {
    if (producers_ == 0 && in_flight_ == 0) io_.stop();
  }

  // Poisson arrivals: exponential gaps at the rate. A request is due at its arrival time, whether
  // or not the generator or the target kept up; it is timed from then.
  asio::awaitable<void> arrivals() {
    std::exponential_distribution<double> gap(spec_.load);
    asio::steady_timer timer(io_);
    TimePoint due = start_;
    while (due < end_) {
      if (due > Clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      // What is due by now goes out, each timed from its own due time, in batches so that the
      // requests already out keep moving while the generator catches up.
      TimePoint now = Clock::now();
      for (int batch = 0; due <= now && due < end_ && batch < kBatch; ++batch) {
        if (in_flight_ >= kMaxInFlight) {
          // More than the generator can hold open: the request counts as failed, not as never due.
          Sample s;
          s.outcome = Outcome::not_sent;
          s.second = std::chrono::duration<double>(due - start_).count();
          stats_.add(s);
        } else {
          ++in_flight_;  // counted now: the check above must see what is already spawned
          asio::co_spawn(io_, one(due), asio::detached);
        }
        due += std::chrono::duration_cast<Duration>(std::chrono::duration<double>(gap(rng_)));
      }
      if (due <= Clock::now()) co_await asio::post(io_, asio::use_awaitable);
    }
    --producers_;
    finish_if_done();
  }

  static constexpr int kBatch = 256;
  // Open requests the generator keeps at most (each holds a connection and a descriptor).
  static constexpr int kMaxInFlight = 8192;

  // One request, timed from `due` (the caller counted it in flight); returns the wait a refusal
  // asked for (zero otherwise). `warmup`: a closed-loop worker's first.
  asio::awaitable<Millis> one(TimePoint due, bool warmup = false) {
    Sample s;
    s.second = std::chrono::duration<double>(due - start_).count();
    s.warmup = warmup;
    Wakeup wake(co_await asio::this_coro::executor);
    UpstreamRequest ur;
    ur.url = req_.url;
    ur.headers = req_.headers;
    ur.body = req_.body;
    ur.connect_timeout = req_.timeout;
    Transfer t(multi_, std::move(ur), wake);
    t.start();
    const TimePoint deadline = due + req_.timeout;
    SseScanner scanner;
    std::string body;
    StreamProgress progress;  // whole as the SDKs judge it (policy/sse_scanner)
    bool upstream_error = false;
    bool garbled = false;
    std::string event_code;  // the code of the error event that ended the stream
    std::optional<TimePoint> last_token;
    for (;;) {
      const bool events = req_.stream && status_class(t.status()) == StatusClass::success;
      // Once the answer has ended, the scanner is told: an event whose last line ends in a lone \r is
      // complete then.
      if (!t.buffered().empty() || (events && t.done() && !scanner.ended())) {
        if (events) {
          scanner.feed(t.take());
          if (t.done()) scanner.end();
          while (auto ev = scanner.next()) {
            // The upstream's error event fails the stream. An event whose data is not JSON garbles
            // it: the SDKs raise on it (ballast drops such an event, so through it they do not).
            if (ev->malformed) {
              garbled = true;
              continue;
            }
            if (ev->upstream_error && !upstream_error) {
              upstream_error = true;
              event_code = ev->error_code;
            }
            progress.see(*ev);
            if (!ev->has_content || ev->terminal) continue;
            TimePoint now = Clock::now();
            if (!s.ttft_us) s.ttft_us = micros(now - due);
            if (last_token) s.itl_us.push_back(static_cast<uint32_t>(micros(now - *last_token)));
            last_token = now;
            ++s.tokens;
            if (now < end_) ++s.tokens_in_window;
          }
        } else {
          body += t.take();
        }
      }
      if (t.done() && t.buffered().empty()) break;
      if (Clock::now() >= deadline) break;
      co_await wake.wait_until(deadline);
    }
    const TimePoint ended = Clock::now();
    s.latency_us = micros(ended - due);
    s.ended = std::chrono::duration<double>(ended - start_).count();
    s.open_at_end = ended > end_;
    s.status = t.status();
    std::optional<Millis> wait;
    if (!t.done()) {
      s.outcome = Outcome::client_timeout;
      t.cancel();
    } else if (t.error() == TransportError::connect_refused) {
      s.outcome = Outcome::connect_refused;
    } else if (t.error() == TransportError::connect_timeout) {
      s.outcome = Outcome::client_timeout;
    } else {
      switch (status_class(s.status)) {
        case StatusClass::success:
          // Judged as a client judges it: an error event fails a stream, a stream without its end
          // is cut, and a 200 that is not the JSON answer is no answer.
          if (t.error() != TransportError::none) {
            s.outcome = Outcome::truncated;
          } else if (!req_.stream) {
            s.outcome = usable_answer(body) ? Outcome::ok : Outcome::bad_body;
          } else if (upstream_error) {
            s.outcome = Outcome::stream_error;
            s.code = event_code;
          } else {
            s.outcome = progress.complete() && !garbled ? Outcome::ok : Outcome::truncated;
          }
          break;
        case StatusClass::rate_limited:
        case StatusClass::server_error:
          wait = refusal_wait(s.status, t.headers());
          if (wait) {
            s.outcome = Outcome::refused;
            s.retry_after_s = std::chrono::duration<double>(*wait).count();
          } else {
            s.outcome = status_class(s.status) == StatusClass::rate_limited ? Outcome::rate_limited
                                                                            : Outcome::server_error;
          }
          break;
        default:
          s.outcome = Outcome::other;
      }
    }
    if (status_class(s.status) != StatusClass::success && s.status > 0) s.code = error_code_of(body);
    // No answer at all (TLS to a plain port, a name that does not resolve, a reset): say which.
    if (s.status == 0 && s.code.empty() && t.error() != TransportError::none &&
        s.outcome != Outcome::connect_refused && s.outcome != Outcome::client_timeout)
      s.code = std::string(code_name(code_for(t.error())));
    stats_.add(s);
    --in_flight_;
    finish_if_done();
    co_return wait.value_or(Millis(0));
  }

  asio::awaitable<void> progress() {
    asio::steady_timer timer(io_);
    uint64_t last = 0;
    while (Clock::now() < end_ || in_flight_ > 0) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      uint64_t done = stats_.requests;
      std::fprintf(
          stderr,
          "\r\033[K%s %.0f  %5.0f req/s  in flight %d  ok %llu  errors %llu  p50 %.1f ms  p99 %.1f ms",
          spec_.open ? "rate" : "concurrency", spec_.load, static_cast<double>(done - last), in_flight_,
          static_cast<unsigned long long>(stats_.ok),
          static_cast<unsigned long long>(stats_.requests - stats_.ok),
          static_cast<double>(stats_.latency.percentile(50)) / 1000,
          static_cast<double>(stats_.latency.percentile(99)) / 1000);
      std::fflush(stderr);
      last = done;
    }
  }

  const Request& req_;
  const RunSpec& spec_;
  asio::io_context io_{1};
  CurlMulti multi_;
  std::mt19937_64 rng_;
  RunStats stats_;
  TimePoint start_{}, end_{};
  int in_flight_ = 0;
  int producers_ = 0;  // workers (closed loop) or the arrivals (open loop) still sending
};

}  // namespace

RunStats run(const Request& request, const RunSpec& spec) {
  return Runner(request, spec).go();
}

}  // namespace ballast::load
