// One model's endpoints as every decision about them sees them: each endpoint's admission (slots
// and fair queue), health and rate limits, and the model's retry budget. Choosing an endpoint,
// never ejecting the last one, rate-limit refusals and failover are decided here. Pure and
// single-threaded: the caller holds its lock, passes the time, and wakes the waiters admission
// names.
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"
#include "policy/admission.hpp"
#include "policy/classify.hpp"
#include "policy/error_code.hpp"
#include "policy/failover.hpp"
#include "policy/outlier.hpp"
#include "policy/retry.hpp"

namespace ballast {

struct EndpointSpec {
  std::string name;
  double weight = 1;
  int priority = 0;
  AdmissionPolicy admission;  // its queue_timeout already the endpoint's effective one
  double rpm = 0;             // 0: no limit
  double tpm = 0;
};

// What /metrics and /ballast/status show of one endpoint.
struct EndpointView {
  std::string name;
  int priority = 0;
  double weight = 1;
  OutlierState::State health = OutlierState::State::healthy;
  Duration ejected_for{0};
  int in_flight = 0;
  int queued = 0;
  std::optional<int> max_in_flight;  // when bounded
  std::optional<double> rpm_available, tpm_available;
  int window_requests = 0;
  int window_failures = 0;
  // Filled in by the gateway (gateway/upstreams), in ballast's words: the latest failure that counted
  // against the endpoint's health ("connect_refused: connect to … refused …"), how long ago, and,
  // while it is ejected, the failure that ejected it.
  std::string last_failure;
  std::optional<Duration> last_failure_ago;
  std::string ejected_because;
};

struct ModelView {
  std::string name;
  double retry_budget_used = 0;
  double retry_budget_allowed = 0;
  std::vector<EndpointView> endpoints;
};

// Where an endpoint's limits are kept (docs/scaling.md). `local`: here, whole (no redis:, or
// shared: false). `shared`: Redis holds them for every replica; here the slots stay at the whole
// limit (a replica never needs fewer than Redis allows it) and the rates are not kept at all.
// `fallback`: Redis is away; here, this replica's share of each, the limit over redis.replicas.
enum class LimitScope { local, shared, fallback };

// An endpoint's settings as they apply in `scope`, with `replicas` replicas expected.
EndpointSpec scoped(const EndpointSpec& spec, LimitScope scope, int replicas);

// One endpoint's state: its slots and queue, health and rate buckets. A reload that keeps the
// endpoint (by name) keeps it, shared by the pools of the old and new configurations and held under
// their model's one lock, so requests under either count against the same limits.
struct EndpointState {
  EndpointState(const EndpointSpec& spec, const OutlierPolicy& outlier, TimePoint now);
  ~EndpointState() = default;
  EndpointState(const EndpointState&) = delete;  // health points at outlier
  EndpointState& operator=(const EndpointState&) = delete;
  EndpointState(EndpointState&&) = delete;
  EndpointState& operator=(EndpointState&&) = delete;
  // New settings from a reload; what the endpoint holds and has learned stays.
  Admission::Changes retune(const EndpointSpec& spec, const OutlierPolicy& outlier, TimePoint now);

  OutlierPolicy outlier;
  Admission admission;
  OutlierState health;
  TokenBucket rpm, tpm;
};

class EndpointPool {
 public:
  // `refusal_cap` bounds the Retry-After of a refusal made here (the model's queue timeout).
  EndpointPool(std::string model, std::vector<EndpointSpec> endpoints, const OutlierPolicy& outlier,
               const RetryPolicy& retries, Millis refusal_cap, uint64_t seed, TimePoint now);
  ~EndpointPool() = default;
  EndpointPool(const EndpointPool&) = delete;
  EndpointPool& operator=(const EndpointPool&) = delete;
  EndpointPool(EndpointPool&&) = delete;
  EndpointPool& operator=(EndpointPool&&) = delete;

  // After a reload: every endpoint that `previous` has too, by name, takes over its state under
  // this pool's settings. Returns, per endpoint of this pool, what the new settings changed in its
  // queue (a higher limit admits waiters), for the caller to wake.
  std::vector<std::pair<size_t, Admission::Changes>> adopt(const EndpointPool& previous, TimePoint now);

  struct Choice {
    int endpoint = -1;
    Millis wait{0};  // before the attempt: a short backoff when it goes back to the same endpoint
    NextAttempt::Where where = NextAttempt::Where::none;  // none for a first attempt
    bool retry = false;                                   // it spent the retry budget
    // No endpoint: ballast's refusal (rate_limited, all_endpoints_down) with when to come back,
    // or, after a failure, why no further attempt is made (the failover's reason, or "budget").
    ErrorCode refusal = ErrorCode::ok;
    Millis retry_after{0};
    std::string why;
    RetryDenial denied = RetryDenial::none;
  };
  // The endpoint for a request's first attempt (`history` empty) or for the attempt after the last
  // one in `history` failed; its rate limits are charged and its half-open probe claimed.
  Choice choose(std::span<const AttemptFact> history, double tokens, Duration time_left, TimePoint now);

  Admission& admission(size_t endpoint) { return states_[endpoint]->admission; }

  // Where the endpoint's limits are kept from now on (LimitScope): its settings are retuned to
  // scoped() ones, keeping what it holds and has learned. Returns what that changed in its queue.
  Admission::Changes scope(size_t endpoint, LimitScope scope, int replicas, TimePoint now);

  // An attempt's verdict on the endpoint's health; never ejects the last endpoint standing.
  HealthEvent report(size_t endpoint, Verdict::Health health, TimePoint now);
  // The chosen endpoint was not sent to after all: its half-open probe, if this was it, is free.
  void unsent(size_t endpoint);
  // An active health check's result: a pass readmits only an ejection that has run out.
  HealthEvent check_result(size_t endpoint, bool ok, TimePoint now);
  // The tpm estimate charged for an attempt, corrected (positive gives back).
  void correct_tokens(size_t endpoint, double delta, TimePoint now);
  // Every request spends the retry budget's base; a request the client itself retries is a retry.
  void record_request(bool client_retry, TimePoint now);

  const std::string& model() const { return model_; }
  const std::string& name(size_t endpoint) const { return specs_[endpoint].name; }
  Millis last_ejection(size_t endpoint) const { return states_[endpoint]->health.last_ejection(); }
  size_t size() const { return specs_.size(); }
  ModelView view(TimePoint now);

 private:
  std::vector<Candidate> candidates(double tokens, TimePoint now, std::optional<Millis>* rate_wait);
  Choice refuse(const std::optional<Millis>& rate_wait, Duration time_left, TimePoint now);
  void claim(size_t endpoint, double tokens, TimePoint now);

  std::string model_;
  OutlierPolicy outlier_;
  std::vector<EndpointSpec> specs_;                     // as configured
  std::vector<LimitScope> scopes_;                      // per spec: as they apply now
  std::vector<std::shared_ptr<EndpointState>> states_;  // per spec
  RetryPolicy retries_;
  RetryBudget budget_;
  Millis refusal_cap_;
  std::mt19937_64 rng_;
};

// The Retry-After of a refusal: never longer than `cap` (the queue timeout) nor than the client's
// `time_left`, and at least 1 ms.
Millis bound_retry_after(Millis wait, Millis cap, Duration time_left);

// Both headers of a refusal, bounded as above: retry-after-ms exact, and Retry-After in whole
// seconds, rounded up (waiting a little longer is harmless) but never past the bound itself (0
// when the bound is under a second).
struct RetryAfter {
  Millis ms{1};
  int64_t seconds = 0;
};
RetryAfter retry_after_headers(Millis wait, Millis cap, Duration time_left);

}  // namespace ballast
