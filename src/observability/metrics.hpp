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
  // The label sets of the per-request series, made once per endpoint by the caller and passed in on
  // every request, so that counting one allocates nothing.
  // `upstream_model`: the model the endpoint's upstream was asked for (its model:, else the
  // client-facing name), so a fallback under another name shows as such.
  static std::string model_endpoint_labels(std::string_view model, std::string_view endpoint,
                                           std::string_view upstream_model);
  static std::string endpoint_labels(std::string_view endpoint);

  void request(const std::string& model_endpoint, ErrorCode code, double seconds);
  void attempt(const std::string& endpoint, ErrorCode code, const PhaseTimings& timings);
  void queue_wait(const std::string& endpoint, double seconds);
  // A retry, by what the attempt before it failed with.
  void retry(std::string_view model, ErrorCode reason);
  // A retry that was wanted but not made, and why: budget, deadline, retry_after_cap, max_attempts.
  void retry_denied(std::string_view model, std::string_view why);
  void ejection(std::string_view endpoint);
  // Stream events from an endpoint whose data was not JSON: dropped, not relayed.
  void malformed_events(std::string_view endpoint, int count);

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
  static constexpr size_t kCodes = static_cast<size_t>(ErrorCode::client_disconnected) + 1;
  using ByCode = std::array<uint64_t, kCodes>;
  enum Phase { connect, first_byte, first_token, total, kPhases };

  // The entry for `labels`, made on first use only (std::less<> finds without a copy).
  template <typename Map>
  static typename Map::mapped_type& at(Map& map, const std::string& labels) {
    auto it = map.find(labels);
    return it != map.end() ? it->second : map.emplace(labels, typename Map::mapped_type{}).first->second;
  }

  mutable std::mutex mu_;
  std::map<std::string, ByCode, std::less<>> requests_, attempts_;
  std::map<std::string, Histogram, std::less<>> request_seconds_, queue_wait_seconds_;
  std::map<std::string, std::array<Histogram, kPhases>, std::less<>> phase_seconds_;
  std::map<std::string, uint64_t> retries_, retries_denied_, ejections_, malformed_events_;
};

// `name="value"` with the value escaped as Prometheus requires.
std::string label(std::string_view name, std::string_view value);

}  // namespace ballast
