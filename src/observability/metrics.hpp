// Counters and histograms for /metrics, in Prometheus text format: requests by model, endpoint and
// code; attempts and retries by reason; queue waits; ejections; a histogram per phase. Shared by
// every worker (one lock, held for a few map updates). Gauges (in flight, queue depth, limits,
// health) are read from the live endpoint state when scraped, not kept here.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "policy/error_code.hpp"
#include "policy/outcome.hpp"

namespace ballast {

class Metrics {
 public:
  void request(std::string_view model, std::string_view endpoint, ErrorCode code, double seconds);
  void attempt(std::string_view endpoint, ErrorCode code, const PhaseTimings& timings);
  // A retry, by what the attempt before it failed with.
  void retry(std::string_view model, ErrorCode reason);
  // A retry that was wanted but not made, and why: budget, deadline, retry_after_cap, max_attempts.
  void retry_denied(std::string_view model, std::string_view why);
  void queue_wait(std::string_view endpoint, double seconds);
  void ejection(std::string_view endpoint);

  // Everything above, as Prometheus text.
  std::string render() const;

  // Histogram upper bounds in seconds, shared by every histogram: from a loopback connect to a
  // ten-minute generation.
  static constexpr std::array<double, 16> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                      2.5,   5,    10,    30,   60,  120,  300, 600};

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
    void observe(double seconds);
  };
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> requests_, attempts_, retries_, retries_denied_, ejections_;
  std::map<std::string, Histogram> request_seconds_, phase_seconds_, queue_wait_seconds_;
};

// `name="value"` with the value escaped as Prometheus requires.
std::string label(std::string_view name, std::string_view value);

}  // namespace ballast
