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
  rate_limited,
  server_error,
  truncated,
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
  double second = 0;  // when it was (to be) sent, seconds from the run's start
};

struct Second {
  uint64_t sent = 0, ok = 0, errors = 0;
  Histogram latency;
};

struct RunStats {
  std::string mode;  // "closed" or "open"
  double load = 0;   // concurrency, or requests per second
  double duration_s = 0;
  uint64_t requests = 0, ok = 0;
  std::map<std::string, uint64_t> by_outcome;  // outcome name → count (failures only)
  std::map<int, uint64_t> by_status;           // HTTP status of failed answers
  std::map<std::string, uint64_t> by_code;     // ballast error codes
  Histogram latency, ttft, itl;
  uint64_t tokens = 0;
  std::vector<Second> timeline;  // one per second of the run

  void add(const Sample& s);
  double error_rate() const {
    return requests ? static_cast<double>(requests - ok) / static_cast<double>(requests) : 0;
  }
  double throughput() const { return duration_s > 0 ? static_cast<double>(requests) / duration_s : 0; }
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
