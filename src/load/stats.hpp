// What one load run measured: outcomes by class, latency, time to first token, inter-token latency
// and tokens, overall and per second (the timeline). Pure data and its arithmetic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "load/histogram.hpp"

namespace ballast::load {

// How a request ended, for counting. Statuses and ballast's own error codes are kept apart in
// `RunStats::by_status` and `by_code`.
enum class Outcome {
  ok,
  client_timeout,
  connect_refused,
  refused,       // 429 or 503 with Retry-After: the target said when to come back
  rate_limited,  // 429 without Retry-After
  server_error,
  stream_error,  // a stream that ended in an SSE `error` event
  truncated,     // a stream without its terminal signal, or a body cut short
  bad_body,      // a 200 whose body is not the JSON answer asked for
  other,
  not_sent,  // open loop: due while the generator already held its most open requests
};

std::string_view outcome_name(Outcome o);

// One request's result, as the generator hands it over. Times in microseconds from the intended
// send time (open loop) or the send (closed loop).
struct Sample {
  Outcome outcome = Outcome::ok;
  int status = 0;
  std::string code;  // ballast's error code from the body, when the target is ballast
  uint64_t latency_us = 0;
  std::optional<uint64_t> ttft_us;
  std::vector<uint32_t> itl_us;  // gaps between tokens (streams)
  uint32_t tokens = 0;
  uint32_t tokens_in_window = 0;  // of those, the ones that arrived before the window closed
  double second = 0;              // when it was (to be) sent, seconds from the run's start
  double ended = 0;               // when it ended, seconds from the run's start
  bool open_at_end = false;       // still open when the measured window closed
  double retry_after_s = 0;       // refused: the wait the target asked for
  bool warmup = false;            // a closed-loop worker's first request (see RunStats::steady_*)
};

// One second of a run. `sent`, `ok`, `errors` and `latency` are by the second a request was due;
// `done` counts the successful answers that ended in that second (the throughput over time).
struct Second {
  uint64_t sent = 0, ok = 0, errors = 0, done = 0;
  Histogram latency;
};

struct RunStats {
  std::string mode;       // "closed" or "open"
  double load = 0;        // concurrency, or requests per second
  double duration_s = 0;  // the measured window
  uint64_t requests = 0, ok = 0;
  uint64_t ok_in_window = 0;  // successful answers that ended within the window
  uint64_t open_at_end = 0;   // requests still open when the window closed (then waited for)
  uint64_t refused = 0;       // answers with Retry-After
  double refused_wait_s = 0;  // the waits they asked for, summed (closed loop: waited, by default)
  std::map<std::string, uint64_t> by_outcome;  // outcome name → count (failures only)
  std::map<int, uint64_t> by_status;           // HTTP status of failed answers
  std::map<std::string, uint64_t> by_code;     // ballast error codes
  Histogram latency, ttft, itl;
  uint64_t tokens = 0;  // tokens that arrived within the window
  // The successful answers' latencies, summed, and their count, leaving out each closed-loop
  // worker's first: those start together on fresh connections, and above the target's capacity
  // only the later ones queue, so the first round would make the mean look shorter than it is.
  double steady_latency_s = 0;
  uint64_t steady_ok = 0;
  std::vector<Second> timeline;  // one per second of the run

  void add(const Sample& s);
  double error_rate() const {
    return requests ? static_cast<double>(requests - ok) / static_cast<double>(requests) : 0;
  }
  // Successful answers completed within the window, per second of it.
  double throughput() const { return duration_s > 0 ? static_cast<double>(ok_in_window) / duration_s : 0; }
  // What a sweep compares runs by. Closed loop: the concurrency over the mean time of a
  // successful answer after the first round (Little's law), since a window a few rounds long
  // holds a whole number of rounds, and a count in it shakes by one round whatever the load; open
  // loop: throughput().
  double sustained_throughput() const;
  double tokens_per_s() const { return duration_s > 0 ? static_cast<double>(tokens) / duration_s : 0; }
};

// A service level: p99 first token, p99 latency (ms; 0 = not part of it) and the error rate allowed.
struct Slo {
  double ttft_ms = 0;
  double latency_ms = 0;
  double max_error_rate = 0.01;
};

// Empty when the run met `slo`; otherwise what broke it, e.g. "p99 latency 412 ms > 300 ms".
std::string slo_breach(const RunStats& run, const Slo& slo);

}  // namespace ballast::load
