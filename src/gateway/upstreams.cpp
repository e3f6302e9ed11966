#include "gateway/upstreams.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/shared_limits.hpp"
#include "policy/duration.hpp"

namespace ballast {

namespace asio = boost::asio;

// A request queued for a slot. Its state is written under the model's lock by whichever worker
// grants or refuses it; `wake` and `gone` belong to the waiter's own thread, which the granting
// worker reaches by posting to `executor`.
struct Upstreams::Waiter {
  enum class State { waiting, granted, refused } state = State::waiting;
  Millis retry_after{0};
  asio::any_io_executor executor;
  Wakeup* wake = nullptr;
  bool gone = false;  // the waiter has returned: its Wakeup no longer exists
};

double estimate_tokens(size_t body_bytes, std::optional<int64_t> max_tokens) {
  // max_tokens was validated (0 to 2^31); the clamp keeps every limiter's arithmetic finite anyway.
  double estimate =
      static_cast<double>(body_bytes) / 4 + static_cast<double>(std::max<int64_t>(0, max_tokens.value_or(0)));
  return std::min(estimate, 1e12);
}

namespace {

// What a request of `tokens` takes from shared buckets of `rpm` and `tpm` (0: none).
std::vector<SharedLimits::Charge> charges_for(const std::string& rpm_key, double rpm,
                                              const std::string& tpm_key, double tpm, double tokens) {
  std::vector<SharedLimits::Charge> charges;
  if (rpm > 0) charges.push_back({rpm_key, rpm, 1});
  if (tpm > 0) charges.push_back({tpm_key, tpm, tokens});
  return charges;
}

std::vector<EndpointSpec> endpoint_specs(const config::Model& model, const config::Config& config) {
  std::vector<EndpointSpec> specs;
  for (const auto& ep : model.endpoints) {
    EndpointSpec s;
    s.name = ep.name;
    s.weight = ep.weight;
    s.priority = ep.priority;
    s.admission = ep.admission;
    s.admission.queue_timeout = config::effective_queue_timeout(config, model, ep);
    s.rpm = ep.rpm;
    s.tpm = ep.tpm;
    specs.push_back(std::move(s));
  }
  return specs;
}

}  // namespace

Upstreams::ModelState::ModelState(const config::Model& model, const config::Config& config, TimePoint now)
    : pool(model.name, endpoint_specs(model, config), config.outlier, model.retries,
           config::effective_queue_timeout(config, model, config::Endpoint{}), std::random_device{}(), now),
      waiters(model.endpoints.size()),
      failures(model.endpoints.size()) {
  for (const auto& ep : model.endpoints) metric_labels.push_back(Metrics::endpoint_labels(ep.name));
  for (auto& w : waiters) w = std::make_shared<Waiters>();
  for (auto& f : failures) f = std::make_shared<Failures>();
}

Upstreams::Upstreams(const config::Config& config, Metrics& metrics, Upstreams* previous,
                     SharedLimits* shared)
    : metrics_(metrics),
      shared_(shared),
      patience_(previous ? previous->patience_ : std::make_shared<Patience>()) {
  TimePoint now = Clock::now();
  for (const auto& m : config.models) {
    auto state = std::make_unique<ModelState>(m, config, now);
    state->sharing.resize(m.endpoints.size());
    for (size_t e = 0; shared_ && e < m.endpoints.size(); ++e) {
      const config::Endpoint& ep = m.endpoints[e];
      Sharing& sh = state->sharing[e];
      sh.shared = ep.shared;
      sh.slots = shared_->slots_key(m.name, ep.name);
      sh.rpm = shared_->bucket_key("rpm", m.name, ep.name);
      sh.tpm = shared_->bucket_key("tpm", m.name, ep.name);
      sh.with_slots = ep.admission.max_in_flight > 0 || ep.admission.adaptive;
      sh.rpm_limit = ep.rpm;
      sh.tpm_limit = ep.tpm;
    }
    if (previous) {
      for (auto& old : previous->models_) {
        if (old->pool.model() == m.name) adopt(*state, *old, now);
      }
    }
    models_.push_back(std::move(state));
  }
  for (size_t i = 0; i < config.keys.size(); ++i) {
    const config::ClientKey& k = config.keys[i];
    std::shared_ptr<KeyState> ks;
    if (previous) {
      for (size_t j = 0; j < previous->keys_.size() && !ks; ++j) {
        if (previous->key_names_[j] == k.key) ks = previous->keys_[j];
      }
    }
    if (ks) {
      std::lock_guard lock(ks->mu);
      ks->rpm.retune(k.rpm, now);
      ks->tpm.retune(k.tpm, now);
    } else {
      ks = std::make_shared<KeyState>();
      if (k.rpm > 0) ks->rpm = TokenBucket(k.rpm, now);
      if (k.tpm > 0) ks->tpm = TokenBucket(k.tpm, now);
    }
    if (shared_) {
      std::lock_guard lock(ks->mu);
      Sharing& sh = ks->sharing;
      sh.shared = true;
      sh.rpm = shared_->client_bucket_key("rpm", k.key);
      sh.tpm = shared_->client_bucket_key("tpm", k.key);
      sh.rpm_limit = k.rpm;
      sh.tpm_limit = k.tpm;
      ks->epoch = UINT64_MAX;  // scoped anew under these limits
    }
    keys_.push_back(std::move(ks));
    key_names_.push_back(k.key);
  }
}

void Upstreams::adopt(ModelState& m, ModelState& previous, TimePoint now) {
  std::lock_guard lock(*previous.mu);
  m.mu = previous.mu;
  for (size_t i = 0; i < m.pool.size(); ++i) {
    for (size_t j = 0; j < previous.pool.size(); ++j) {
      if (previous.pool.name(j) == m.pool.name(i)) {
        m.waiters[i] = previous.waiters[j];
        m.failures[i] = previous.failures[j];
      }
    }
  }
  for (const auto& [endpoint, changes] : m.pool.adopt(previous.pool, now)) wake(m, endpoint, changes);
  // adopt() retuned them to the whole limits: scoped again at the next look.
  m.epoch = UINT64_MAX;
}

void Upstreams::rescope(ModelState& m, TimePoint now) {
  if (!shared_) return;
  const uint64_t epoch = shared_->epoch();
  if (epoch == m.epoch) return;
  m.epoch = epoch;
  const LimitScope scope = shared_->up() ? LimitScope::shared : LimitScope::fallback;
  for (size_t e = 0; e < m.pool.size(); ++e) {
    if (m.sharing[e].shared) wake(m, e, m.pool.scope(e, scope, shared_->config().replicas, now));
  }
}

void Upstreams::rescope(KeyState& k, TimePoint now) {
  if (!shared_) return;
  const uint64_t epoch = shared_->epoch();
  if (epoch == k.epoch) return;
  k.epoch = epoch;
  // Shared: Redis keeps the key's buckets and these are off; else this replica's share.
  const double share = shared_->up() ? 0 : 1.0 / shared_->config().replicas;
  k.rpm.retune(k.sharing.rpm_limit * share, now);
  k.tpm.retune(k.sharing.tpm_limit * share, now);
}

void Upstreams::release(ModelState& m, size_t endpoint, const std::string& lease) {
  if (shared_ && !lease.empty()) shared_->release(m.sharing[endpoint].slots, lease);
}

EndpointPool::Choice Upstreams::choose(size_t model, std::span<const AttemptFact> history, double tokens,
                                       Duration time_left, TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  rescope(m, now);
  return m.pool.choose(history, tokens, time_left, now);
}

asio::awaitable<std::optional<Millis>> Upstreams::charge_shared(size_t model, size_t endpoint,
                                                                double tokens) {
  const Sharing& sh = models_[model]->sharing[endpoint];
  if (!shared_ || !sh.shared || sh.with_slots || (sh.rpm_limit <= 0 && sh.tpm_limit <= 0) || !shared_->up())
    co_return std::nullopt;
  std::vector<SharedLimits::Charge> charges = charges_for(sh.rpm, sh.rpm_limit, sh.tpm, sh.tpm_limit, tokens);
  // Redis not answering lets it through: the local shares take over as soon as that is known.
  auto verdict = co_await shared_->charge(std::move(charges));
  co_return verdict.wait;
}

asio::awaitable<Upstreams::Admit> Upstreams::admit(size_t model, size_t endpoint, const std::string& fair_key,
                                                   const Due& due, double tokens, Downstream& down,
                                                   Wakeup& wake) {
  ModelState& m = *models_[model];
  const Sharing& sh = m.sharing[endpoint];
  Admission& admission = m.pool.admission(endpoint);
  const TimePoint arrived = Clock::now();
  Duration waited{0};
  for (;;) {
    Admit result = co_await admit_here(model, endpoint, fair_key, due, down, wake);
    result.waited += waited;
    if (result.kind != Admit::admitted || !shared_ || !sh.shared) co_return result;
    {
      std::lock_guard lock(*m.mu);
      if (!admission.bounded()) co_return result;
    }
    // Then a slot of the limit every replica shares.
    const TimePoint began = Clock::now();
    const SharedSlot got = co_await shared_slot(m, endpoint, arrived, due, tokens, down, wake, result);
    result.waited += Clock::now() - began;
    if (got != SharedSlot::requeue) co_return result;
    // Redis went away while it waited: back in this replica's queue, under its share.
    waited = result.waited;
  }
}

asio::awaitable<Upstreams::SharedSlot> Upstreams::shared_slot(ModelState& m, size_t endpoint,
                                                              TimePoint arrived, const Due& due,
                                                              double tokens, Downstream& down, Wakeup& wake,
                                                              Admit& result) {
  const Sharing& sh = m.sharing[endpoint];
  Admission& admission = m.pool.admission(endpoint);
  const std::vector<SharedLimits::Charge> charges =
      charges_for(sh.rpm, sh.rpm_limit, sh.tpm, sh.tpm_limit, tokens);
  Millis rate_wait{0};
  const auto executor = co_await asio::this_coro::executor;
  std::optional<SharedLimits::Watch> watch;
  SharedSlot got = SharedSlot::taken;
  for (;;) {
    int limit = 0;
    TimePoint start_by;
    {
      std::lock_guard lock(*m.mu);
      limit = admission.limit();
      start_by = admission.start_by(arrived, due);
    }
    const SharedLimits::Take take =
        co_await shared_->acquire(sh.slots, limit, result.lease, charges, rate_wait);
    if (take == SharedLimits::Take::granted) break;
    if (take == SharedLimits::Take::rate_limited) {
      std::lock_guard lock(*m.mu);
      this->wake(m, endpoint, admission.give_back(Clock::now()));
      result.kind = Admit::rate_limited;
      result.retry_after = rate_wait;
      got = SharedSlot::refused;
      break;
    }
    if (take == SharedLimits::Take::unavailable) {
      // The local share bounds it now, and its lease counts once Redis is back. Those that took a
      // local slot under the whole limit, waiting for Redis's say, are more than the share: the
      // ones past it queue again here rather than all going at once.
      std::lock_guard lock(*m.mu);
      const TimePoint now = Clock::now();
      rescope(m, now);
      if (admission.in_flight() <= admission.limit()) break;
      shared_->release(sh.slots, result.lease);
      result.lease.clear();
      this->wake(m, endpoint, admission.give_back(now));
      got = SharedSlot::requeue;
      break;
    }
    if (!watch) {
      watch.emplace(*shared_, sh.slots, executor, wake);
      down.watch_disconnect(wake);
      continue;  // a slot may have freed before the watch began
    }
    const TimePoint now = Clock::now();
    const bool gone = down.client_gone();
    if (gone || now >= start_by) {
      std::lock_guard lock(*m.mu);
      this->wake(m, endpoint, admission.give_back(now));
      result.kind = gone ? Admit::client_gone : Admit::queue_timeout;
      result.retry_after = admission.retry_after(now, due.deadline);
      got = SharedSlot::refused;
      break;
    }
    // A freed slot is published; a lease that expired (its replica died) is not, hence the look
    // every so often.
    co_await wake.wait_until(std::min(start_by, now + kSharedSlotPoll));
  }
  if (watch) down.stop_watching();
  co_return got;
}

asio::awaitable<Upstreams::Admit> Upstreams::admit_here(size_t model, size_t endpoint,
                                                        const std::string& fair_key, const Due& due,
                                                        Downstream& down, Wakeup& wake) {
  ModelState& m = *models_[model];
  Admission& admission = m.pool.admission(endpoint);
  const std::string& labels = m.metric_labels[endpoint];
  const TimePoint arrived = Clock::now();
  TimePoint start_by;
  uint64_t ticket = 0;
  std::shared_ptr<Waiter> waiter;
  const auto executor = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(*m.mu);
    rescope(m, arrived);
    start_by = admission.start_by(arrived, due);
    auto a = admission.arrive(fair_key, arrived, due);
    switch (a.decision) {
      case Admission::Decision::admitted:
        if (admission.bounded()) metrics_.queue_wait(labels, 0);
        co_return Admit{};
      case Admission::Decision::queue_full:
        co_return Admit{Admit::queue_full, a.retry_after, {}, true};
      case Admission::Decision::too_late:
        co_return Admit{Admit::queue_timeout, a.retry_after,       {}, true,
                        a.first_byte_bound,   admission.draining()};
      case Admission::Decision::queued:
        break;
    }
    ticket = a.ticket;
    waiter = std::make_shared<Waiter>();
    waiter->executor = executor;
    waiter->wake = &wake;
    m.waiters[endpoint]->emplace(ticket, waiter);
  }
  down.watch_disconnect(wake);
  Admit result;
  for (;;) {
    co_await wake.wait_until(start_by);
    std::lock_guard lock(*m.mu);
    TimePoint now = Clock::now();
    result.waited = now - arrived;
    result.draining = admission.draining();
    // A drain (or new averages) may have brought it closer.
    start_by = std::min(start_by, admission.start_by(arrived, due));
    if (waiter->state == Waiter::State::granted) {
      // Granted while its client may have left: a burst of clients that give up together would
      // otherwise pass each freed slot down the line of the gone, each sending the upstream work
      // nobody will read. The socket says so even before the disconnect watcher has run.
      if (down.client_gone() || down.peer_closed()) {
        this->wake(m, endpoint, admission.give_back(now));
        result.kind = Admit::client_gone;
      } else {
        result.kind = Admit::admitted;
      }
      break;
    }
    if (waiter->state == Waiter::State::refused) {
      result.kind = Admit::queue_timeout;
      result.retry_after = waiter->retry_after;
      break;
    }
    bool gone = down.client_gone();
    if (gone || now >= start_by) {
      // Still waiting (the state would say otherwise): leave the queue.
      admission.cancel(ticket);
      m.waiters[endpoint]->erase(ticket);
      result.kind = gone ? Admit::client_gone : Admit::queue_timeout;
      result.retry_after = admission.retry_after(now, due.deadline);
      break;
    }
  }
  waiter->gone = true;
  down.stop_watching();
  metrics_.queue_wait(labels, std::chrono::duration<double>(result.waited).count());
  co_return result;
}

void Upstreams::drain(TimePoint until) {
  for (auto& model : models_) {
    ModelState& m = *model;
    std::lock_guard lock(*m.mu);
    const TimePoint now = Clock::now();
    for (size_t e = 0; e < m.pool.size(); ++e) {
      wake(m, e, m.pool.admission(e).drain(until, now));
      // Those still waiting look again at when they must give up.
      for (auto& [ticket, w] : *m.waiters[e]) {
        asio::post(w->executor, [w = w] {
          if (!w->gone) w->wake->notify();
        });
      }
    }
  }
}

void Upstreams::wake(ModelState& m, size_t endpoint, const Admission::Changes& changes) {
  Waiters& waiters = *m.waiters[endpoint];
  auto post = [&](uint64_t ticket, Waiter::State state, Millis retry_after) {
    auto it = waiters.find(ticket);
    if (it == waiters.end()) return;
    std::shared_ptr<Waiter> w = std::move(it->second);
    waiters.erase(it);
    w->state = state;
    w->retry_after = retry_after;
    asio::post(w->executor, [w] {
      if (!w->gone) w->wake->notify();
    });
  };
  for (uint64_t t : changes.granted) post(t, Waiter::State::granted, Millis(0));
  for (auto [t, ra] : changes.refused) post(t, Waiter::State::refused, ra);
}

void Upstreams::log_health(ModelState& m, size_t endpoint, HealthEvent event, const std::string& failure,
                           std::string_view readmitted_because, TimePoint now) {
  const std::string& name = m.pool.name(endpoint);
  Failures& f = *m.failures[endpoint];
  if (!failure.empty()) {
    f.last = failure;
    f.last_at = now;
  }
  if (event == HealthEvent::ejected) {
    metrics_.ejection(name);
    f.ejected_because = f.last;
    spdlog::warn(
        "endpoint {} of model '{}' ejected for {}: its requests failed (outlier thresholds; last: {})", name,
        m.pool.model(), format_duration(m.pool.last_ejection(endpoint)), f.last);
  } else if (event == HealthEvent::readmitted) {
    f.ejected_because.clear();
    spdlog::info("endpoint {} of model '{}' readmitted: {}", name, m.pool.model(), readmitted_because);
  }
}

void Upstreams::finish(size_t model, size_t endpoint, TimePoint admitted_at, const Verdict& verdict,
                       std::optional<Duration> first_token, bool stream, double tokens_delta, TimePoint now,
                       std::string_view failure, const std::string& lease) {
  ModelState& m = *models_[model];
  release(m, endpoint, lease);
  const Sharing& sh = m.sharing[endpoint];
  if (shared_ && sh.shared && sh.tpm_limit > 0 && tokens_delta != 0 && shared_->up())
    shared_->adjust({sh.tpm, sh.tpm_limit, tokens_delta});
  std::lock_guard lock(*m.mu);
  rescope(m, now);
  Admission& admission = m.pool.admission(endpoint);
  // An attempt its client ended says nothing about how long the endpoint takes.
  wake(m, endpoint,
       verdict.code == ErrorCode::client_disconnected
           ? admission.give_back(now)
           : admission.finish(now, admitted_at, verdict.load, first_token, stream));
  HealthEvent event = m.pool.report(endpoint, verdict.health, now);
  // ballast's own cause, its code first: curl's words are at most a detail inside the message.
  std::string failed;
  if (verdict.health == Verdict::Health::failure)
    failed = failure.empty() ? std::string(code_name(verdict.code))
                             : fmt::format("{}: {}", code_name(verdict.code), failure);
  log_health(m, endpoint, event, failed, "its probe succeeded", now);
  m.pool.correct_tokens(endpoint, tokens_delta, now);
}

std::optional<Millis> Upstreams::keep_if_in_time(size_t model, size_t endpoint, const Due& due, TimePoint now,
                                                 const std::string& lease) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  Admission& admission = m.pool.admission(endpoint);
  if (admission.in_time(now, due)) return std::nullopt;
  release(m, endpoint, lease);
  wake(m, endpoint, admission.give_back(now));
  return admission.retry_after(now, due.deadline);
}

std::optional<Duration> Upstreams::mean_hold(size_t model, size_t endpoint) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  return m.pool.admission(endpoint).mean_hold();
}

void Upstreams::finish_unsent(size_t model, size_t endpoint) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  m.pool.unsent(endpoint);
}

void Upstreams::record_request(size_t model, bool client_retry, TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  m.pool.record_request(client_retry, now);
}

asio::awaitable<std::optional<Millis>> Upstreams::charge_key(size_t key, double tokens) {
  KeyState& k = *keys_[key];
  if (shared_ && shared_->up()) {
    auto verdict = co_await shared_->charge(
        charges_for(k.sharing.rpm, k.sharing.rpm_limit, k.sharing.tpm, k.sharing.tpm_limit, tokens));
    // Redis not answering lets it through: the shares kept here take over as soon as that is known.
    co_return verdict.wait;
  }
  co_return charge_key_here(k, tokens, Clock::now());
}

std::optional<Millis> Upstreams::charge_key_here(KeyState& k, double tokens, TimePoint now) {
  std::lock_guard lock(k.mu);
  rescope(k, now);
  std::optional<Millis> wait;
  if (k.rpm.enabled()) wait = k.rpm.wait_for(1, now);
  if (!wait && k.tpm.enabled()) wait = k.tpm.wait_for(tokens, now);
  if (wait) return wait;
  if (k.rpm.enabled()) k.rpm.take(1, now);
  if (k.tpm.enabled()) k.tpm.take(tokens, now);
  return std::nullopt;
}

void Upstreams::correct_key(size_t key, double tokens_delta, TimePoint now) {
  KeyState& k = *keys_[key];
  if (shared_ && k.sharing.tpm_limit > 0 && tokens_delta != 0 && shared_->up())
    shared_->adjust({k.sharing.tpm, k.sharing.tpm_limit, tokens_delta});
  std::lock_guard lock(k.mu);
  if (k.tpm.enabled() && tokens_delta != 0) k.tpm.adjust(tokens_delta, now);
}

std::optional<PatienceBook::Learned> Upstreams::patience(const std::string& client, const std::string& model,
                                                         TimePoint now) {
  if (!patience_->taught.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(patience_->mu);
  return patience_->book.learned(client, model, now);
}

void Upstreams::gave_up(const std::string& client, const std::string& model, Duration waited, TimePoint now) {
  std::lock_guard lock(patience_->mu);
  patience_->book.gave_up(client, model, waited, now);
  patience_->taught.store(true, std::memory_order_relaxed);
}

void Upstreams::outlasted(const std::string& client, const std::string& model, Duration waited,
                          TimePoint now) {
  if (!patience_->taught.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(patience_->mu);
  patience_->book.outlasted(client, model, waited, now);
}

std::optional<Duration> Upstreams::probe(const std::string& client, const std::string& model, TimePoint now) {
  if (!patience_->taught.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(patience_->mu);
  auto learned = patience_->book.learned(client, model, now);
  if (!learned || !patience_->book.take_probe(client, model, now)) return std::nullopt;
  return patience_->book.probe_wait(*learned);
}

std::vector<PatienceBook::View> Upstreams::patience_view(TimePoint now) {
  std::lock_guard lock(patience_->mu);
  return patience_->book.view(now);
}

void Upstreams::check_result(size_t model, size_t endpoint, bool ok, const std::string& detail,
                             TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(*m.mu);
  HealthEvent event = m.pool.check_result(endpoint, ok, now);
  log_health(m, endpoint, event, ok ? std::string() : "health check: " + detail,
             "its ejection ran out and its health check passed", now);
}

std::vector<ModelView> Upstreams::view(TimePoint now) {
  std::vector<ModelView> out;
  for (auto& m : models_) {
    std::lock_guard lock(*m->mu);
    rescope(*m, now);  // as it stands now, even with no request to have looked since Redis came or went
    ModelView v = m->pool.view(now);
    for (size_t i = 0; i < v.endpoints.size(); ++i) {
      const Failures& f = *m->failures[i];
      EndpointView& ep = v.endpoints[i];
      if (f.last.empty()) continue;
      ep.last_failure = f.last;
      ep.last_failure_ago = now - f.last_at;
      if (ep.health == OutlierState::State::ejected) ep.ejected_because = f.ejected_because;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace ballast
