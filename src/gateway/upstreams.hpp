// What every worker shares about the configured upstreams: one EndpointPool per model (slots and
// fair queues, health, rate limits, retry budget, failover; all decided in policy/endpoint_pool)
// and each client key's rate limits. What lives here is the locking and the waiting: one lock per
// model, held for one short decision at a time, and the queued requests, each waiting on its own
// worker's loop and woken from whichever worker frees a slot.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/wakeup.hpp"
#include "config/config.hpp"
#include "downstream/http_types.hpp"
#include "observability/metrics.hpp"
#include "policy/admission.hpp"
#include "policy/endpoint_pool.hpp"
#include "policy/patience.hpp"

namespace ballast {

class SharedLimits;

class Upstreams {
 public:
  // `previous`: the configuration being replaced by a reload. Each model, endpoint and client key
  // that it has too, by name, keeps its state (slots, queue, health, adaptive limit, rate buckets)
  // under the new settings; `previous` stays usable by the requests that started under it.
  // `shared`: with redis: configured, where the limits every replica shares are kept
  // (gateway/shared_limits); it outlives every configuration.
  Upstreams(const config::Config& config, Metrics& metrics, Upstreams* previous = nullptr,
            SharedLimits* shared = nullptr);
  ~Upstreams() = default;
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;
  Upstreams(Upstreams&&) = delete;
  Upstreams& operator=(Upstreams&&) = delete;

  // The endpoint for a request's first attempt (`history` empty) or its next one, its rate limits
  // charged; or why there is none.
  EndpointPool::Choice choose(size_t model, std::span<const AttemptFact> history, double tokens,
                              Duration time_left, TimePoint now);

  // The endpoint's rates shared across replicas (rpm, tpm), charged for an attempt: nothing when
  // they allow it (or are not shared, or Redis did not answer), else how long until they would. An
  // endpoint whose slots are shared too is charged with its slot instead, in admit().
  boost::asio::awaitable<std::optional<Millis>> charge_shared(size_t model, size_t endpoint, double tokens);

  // A slot of the endpoint's max_in_flight, waiting in its queue if need be; with shared limits,
  // then a slot of the limit every replica shares (its lease, for finish()), and with it `tokens`
  // of the endpoint's shared rates (rate_limited when they refuse).
  struct Admit {
    enum Kind { admitted, queue_full, queue_timeout, client_gone, rate_limited } kind = admitted;
    Millis retry_after{0};
    Duration waited{0};
    bool at_once = false;           // refused on arrival: it could not have started in time
    bool first_byte_bound = false;  // at once, and only because of the first-byte bound in `due`
    bool draining = false;          // refused because the process is shutting down before it could finish
    std::string lease;              // admitted under a shared limit: the slot's lease, for finish()
  };
  boost::asio::awaitable<Admit> admit(size_t model, size_t endpoint, const std::string& fair_key,
                                      const Due& due, double tokens, Downstream& down, Wakeup& wake);

  // An admitted attempt ended: free its slot, report what it says about the endpoint's health
  // and capacity, and correct the token estimate it was charged (`tokens_delta` = estimate - actual).
  // `failure`: the attempt's failure message (policy/failure_message), kept as the endpoint's last
  // failure and named by an ejection it causes.
  // `lease`: the shared slot it held (Admit::lease), freed for every replica.
  void finish(size_t model, size_t endpoint, TimePoint admitted_at, const Verdict& verdict,
              std::optional<Duration> first_token, bool stream, double tokens_delta, TimePoint now,
              std::string_view failure = {}, const std::string& lease = {});

  // A slot just granted, kept if its request can still be served as `due` says (its client's
  // patience may have been learned meanwhile); else given back, and when to come back is returned.
  // (A slot given back frees its `lease` too.)
  std::optional<Millis> keep_if_in_time(size_t model, size_t endpoint, const Due& due, TimePoint now,
                                        const std::string& lease = {});

  // The process is shutting down and ends at `until`: queued requests that could not start and
  // finish before it are refused now (Admission::drain), and new ones are held to it.
  void drain(TimePoint until);

  // How long the endpoint's slots are held, on average (none before the first request ends).
  std::optional<Duration> mean_hold(size_t model, size_t endpoint);

  // The chosen endpoint was not sent to after all (refused a slot, or the client left): its
  // half-open probe, if this was it, is free again.
  void finish_unsent(size_t model, size_t endpoint);

  // The retry budget's base: a request the client itself is retrying counts as a retry.
  void record_request(size_t model, bool client_retry, TimePoint now);

  // A client key's own rpm/tpm (shared across replicas with redis:): nothing when within them,
  // else how long until they allow it.
  boost::asio::awaitable<std::optional<Millis>> charge_key(size_t key, double tokens);
  void correct_key(size_t key, double tokens_delta, TimePoint now);

  // What clients' give-ups teach (policy/patience), shared by every worker and kept across reloads.
  // `client` is the client key's name (keys[N]) when keys are configured, else the address.
  std::optional<PatienceBook::Learned> patience(const std::string& client, const std::string& model,
                                                TimePoint now);
  void gave_up(const std::string& client, const std::string& model, Duration waited, TimePoint now);
  void outlasted(const std::string& client, const std::string& model, Duration waited, TimePoint now);
  // A probe of the learned patience, if one is due (PatienceBook::take_probe): how long after its
  // arrival the request is held.
  std::optional<Duration> probe(const std::string& client, const std::string& model, TimePoint now);
  std::vector<PatienceBook::View> patience_view(TimePoint now);

  // An active health check's result; `detail` says what it found, in ballast's words
  // ("GET /models: connect_refused: connect to … refused …").
  void check_result(size_t model, size_t endpoint, bool ok, const std::string& detail, TimePoint now);

  // Every model's endpoints as they stand, for /metrics and /ballast/status.
  std::vector<ModelView> view(TimePoint now);
  SharedLimits* shared() const { return shared_; }

 private:
  struct Waiter;
  using Waiters = std::unordered_map<uint64_t, std::shared_ptr<Waiter>>;  // by admission ticket
  // What an endpoint last failed of, for the ejection log line and /ballast/status.
  struct Failures {
    std::string last;  // "CODE: message", the latest failure that counted against its health
    TimePoint last_at;
    std::string ejected_because;  // the failure that ejected it, while ejected
  };
  // How an endpoint's or a key's limits are shared (nothing to share: `shared` false).
  struct Sharing {
    bool shared = false;
    bool with_slots = false;      // max_in_flight is set: the rates are charged with the slot
    std::string slots, rpm, tpm;  // Redis keys
    double rpm_limit = 0, tpm_limit = 0;
  };
  struct ModelState {
    ModelState(const config::Model& model, const config::Config& config, TimePoint now);
    // Shared with the same model's state before and after a reload, as its endpoints' are.
    std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
    EndpointPool pool;
    std::vector<std::string> metric_labels;           // endpoint="…", per endpoint
    std::vector<std::shared_ptr<Waiters>> waiters;    // per endpoint, shared as its state is
    std::vector<std::shared_ptr<Failures>> failures;  // per endpoint, shared as its state is
    std::vector<Sharing> sharing;                     // per endpoint
    uint64_t epoch = UINT64_MAX;  // SharedLimits::epoch() when the endpoints were last scoped
  };
  struct KeyState {
    std::mutex mu;
    TokenBucket rpm, tpm;
    Sharing sharing;
    uint64_t epoch = UINT64_MAX;
  };
  struct Patience {
    std::mutex mu;
    PatienceBook book;
    // Whether any client ever gave up: until then, which is always for most deployments, a
    // request reads nothing here and takes no lock shared by every worker.
    std::atomic<bool> taught{false};
  };
  void adopt(ModelState& m, ModelState& previous, TimePoint now);
  // Under the model's lock: its shared endpoints' limits scoped to whether Redis holds them now.
  void rescope(ModelState& m, TimePoint now);
  void rescope(KeyState& k, TimePoint now);
  // The local stage of admit(): a slot of this process's admission, queued if need be.
  boost::asio::awaitable<Admit> admit_here(size_t model, size_t endpoint, const std::string& fair_key,
                                           const Due& due, Downstream& down, Wakeup& wake);
  void release(ModelState& m, size_t endpoint, const std::string& lease);
  // The shared stage of admit(), for a request holding a local slot: a lease of the limit every
  // replica shares (or, with Redis away, the local share's say), waiting for one until the
  // request's start-by. `requeue`: Redis went away and this replica is past its share; the local
  // slot was given back.
  enum class SharedSlot { taken, refused, requeue };
  boost::asio::awaitable<SharedSlot> shared_slot(ModelState& m, size_t endpoint, TimePoint arrived,
                                                 const Due& due, double tokens, Downstream& down,
                                                 Wakeup& wake, Admit& result);
  std::optional<Millis> charge_key_here(KeyState& k, double tokens, TimePoint now);
  // How often a request waiting for a shared slot looks again without being told one freed.
  static constexpr Duration kSharedSlotPoll = std::chrono::milliseconds(200);
  void wake(ModelState& m, size_t endpoint, const Admission::Changes& changes);
  // Records a failure (when `failure` is set), and logs an ejection (naming the failure) or a readmission.
  void log_health(ModelState& m, size_t endpoint, HealthEvent event, const std::string& failure,
                  std::string_view readmitted_because, TimePoint now);

  Metrics& metrics_;
  SharedLimits* shared_;
  std::vector<std::unique_ptr<ModelState>> models_;
  std::vector<std::shared_ptr<KeyState>> keys_;  // shared with a reload that keeps the key
  std::vector<std::string> key_names_;           // the keys themselves, to find them again
  std::shared_ptr<Patience> patience_;           // shared with the configuration reloaded after this one
};

// Rough token count of a request for tpm limits before its usage is known: ~4 bytes per token of
// prompt, plus the output it may produce.
double estimate_tokens(size_t body_bytes, std::optional<int64_t> max_tokens);

}  // namespace ballast
