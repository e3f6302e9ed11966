// What every worker shares about the configured upstreams: each endpoint's admission (slots and
// fair queue), health, and rate limits; each model's retry budget; each client key's rate limits.
// One lock per model guards its endpoints, so a request's pick, admission and report are each one
// short critical section. A queued request waits on its own worker's loop and is woken from
// whichever worker frees a slot.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/wakeup.hpp"
#include "config/config.hpp"
#include "downstream/http_types.hpp"
#include "observability/metrics.hpp"
#include "policy/admission.hpp"
#include "policy/balancer.hpp"
#include "policy/classify.hpp"
#include "policy/outlier.hpp"
#include "policy/retry.hpp"

namespace ballast {

class Upstreams {
 public:
  Upstreams(const config::Config& config, Metrics& metrics);
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;

  // The endpoint for the next attempt, its rate limits charged; or why there is none.
  struct Pick {
    int endpoint = -1;
    ErrorCode refusal = ErrorCode::ok;  // rate_limited or all_endpoints_down
    Millis retry_after{0};
    std::string why;
  };
  Pick pick(size_t model, const std::vector<bool>& tried, double tokens, TimePoint now);

  // A slot of the endpoint's max_in_flight, waiting in its queue if need be.
  struct Admit {
    enum Kind { admitted, queue_full, queue_timeout, client_gone } kind = admitted;
    Millis retry_after{0};
    Duration waited{0};
    bool at_once = false;  // refused on arrival: it could not have started in time
  };
  boost::asio::awaitable<Admit> admit(size_t model, size_t endpoint, const std::string& fair_key,
                                      TimePoint deadline, Downstream& down, Wakeup& wake);

  // An admitted attempt ended: free its slot, report what it says about the endpoint's health
  // and capacity, and correct the token estimate it was charged (`tokens_delta` = estimate - actual).
  void finish(size_t model, size_t endpoint, TimePoint admitted_at, const Verdict& verdict,
              std::optional<Duration> first_token, double tokens_delta, TimePoint now);

  // The picked endpoint was not sent to after all (refused a slot, or the client left): its
  // half-open probe, if this was it, is free again.
  void finish_unsent(size_t model, size_t endpoint);

  // The retry budget of a model. A request the client itself is retrying counts as a retry.
  void record_request(size_t model, bool client_retry, TimePoint now);
  bool try_spend_retry(size_t model, TimePoint now);

  // A client key's own rpm/tpm: nothing when within them, else how long until they allow it.
  std::optional<Millis> charge_key(size_t key, double tokens, TimePoint now);
  void correct_key(size_t key, double tokens_delta, TimePoint now);

  // An active health check's result.
  void check_result(size_t model, size_t endpoint, bool ok, const std::string& detail, TimePoint now);

  // Gauges for /metrics: in flight, queue depth, limits, health, rate-limit levels.
  void render_gauges(std::string& out, TimePoint now);
  // /ballast/status: every endpoint with its health and limits, as JSON.
  std::string status_json(TimePoint now);

 private:
  struct Waiter;
  struct EndpointState {
    EndpointState(const config::Endpoint& ep, const config::Config& config, const config::Model& model,
                  const OutlierPolicy& outlier, TimePoint now);
    std::string name;
    std::string metric_labels;  // endpoint="…"
    double weight;
    int priority;
    Millis queue_timeout;
    Admission admission;
    OutlierState health;
    TokenBucket rpm, tpm;
    std::unordered_map<uint64_t, std::shared_ptr<Waiter>> waiters;
  };
  struct ModelState {
    ModelState(const config::Model& model, const config::Config& config, const OutlierPolicy& outlier,
               TimePoint now);
    std::string name;
    std::mutex mu;
    RetryBudget budget;
    std::vector<EndpointState> endpoints;
    std::mt19937_64 rng;
  };
  struct KeyState {
    std::mutex mu;
    TokenBucket rpm, tpm;
  };
  void wake(EndpointState& ep, const Admission::Changes& changes);
  void report_health(ModelState& m, EndpointState& ep, Verdict::Health health, TimePoint now,
                     const std::string& detail);

  Metrics& metrics_;
  OutlierPolicy outlier_;
  std::vector<std::unique_ptr<ModelState>> models_;
  std::vector<std::unique_ptr<KeyState>> keys_;
};

// Rough token count of a request for tpm limits before its usage is known: ~4 bytes per token of
// prompt, plus the output it may produce.
double estimate_tokens(size_t body_bytes, std::optional<int64_t> max_tokens);

}  // namespace ballast
