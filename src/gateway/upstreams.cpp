#include "gateway/upstreams.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/json_writer.hpp"
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
  Wakeup* wake;
  bool gone = false;  // the waiter has returned: its Wakeup no longer exists
};

double estimate_tokens(size_t body_bytes, std::optional<int64_t> max_tokens) {
  return static_cast<double>(body_bytes) / 4 + static_cast<double>(max_tokens.value_or(0));
}

Upstreams::EndpointState::EndpointState(const config::Endpoint& ep, const config::Config& config,
                                        const config::Model& model, const OutlierPolicy& outlier,
                                        TimePoint now)
    : name(ep.name),
      metric_labels(Metrics::endpoint_labels(ep.name)),
      weight(ep.weight),
      priority(ep.priority),
      queue_timeout(config::effective_queue_timeout(config, model, ep)),
      admission(ep.admission),
      health(outlier),
      rpm(ep.rpm > 0 ? TokenBucket(ep.rpm, now) : TokenBucket()),
      tpm(ep.tpm > 0 ? TokenBucket(ep.tpm, now) : TokenBucket()) {}

Upstreams::ModelState::ModelState(const config::Model& model, const config::Config& config,
                                  const OutlierPolicy& outlier, TimePoint now)
    : name(model.name), budget(model.retries), rng(std::random_device{}()) {
  endpoints.reserve(model.endpoints.size());
  for (const auto& ep : model.endpoints) endpoints.emplace_back(ep, config, model, outlier, now);
}

Upstreams::Upstreams(const config::Config& config, Metrics& metrics)
    : metrics_(metrics), outlier_(config.outlier) {
  TimePoint now = Clock::now();
  // Endpoints point at this copy of the outlier policy, which lives as long as they do.
  for (const auto& m : config.models)
    models_.push_back(std::make_unique<ModelState>(m, config, outlier_, now));
  for (const auto& k : config.keys) {
    auto ks = std::make_unique<KeyState>();
    if (k.rpm > 0) ks->rpm = TokenBucket(k.rpm, now);
    if (k.tpm > 0) ks->tpm = TokenBucket(k.tpm, now);
    keys_.push_back(std::move(ks));
  }
}

Upstreams::Pick Upstreams::pick(size_t model, const std::vector<bool>& tried, double tokens, TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(m.mu);
  std::vector<Candidate> candidates(m.endpoints.size());
  std::optional<Millis> rate_wait;
  bool any_healthy = false;
  for (size_t i = 0; i < m.endpoints.size(); ++i) {
    EndpointState& ep = m.endpoints[i];
    Candidate& c = candidates[i];
    c.weight = ep.weight;
    c.priority = ep.priority;
    c.outstanding = ep.admission.in_flight() + ep.admission.queued();
    c.tried = i < tried.size() && tried[i];
    bool healthy = ep.health.available(now);
    any_healthy = any_healthy || healthy;
    std::optional<Millis> wait;
    if (ep.rpm.enabled()) wait = ep.rpm.wait_for(1, now);
    if (!wait && ep.tpm.enabled()) wait = ep.tpm.wait_for(tokens, now);
    if (healthy && wait) rate_wait = rate_wait ? std::min(*rate_wait, *wait) : *wait;
    c.available = healthy && !wait;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int chosen = pick_endpoint(candidates, [&] { return unit(m.rng); });
  Pick p;
  if (chosen < 0) {
    if (any_healthy && rate_wait) {
      p.refusal = ErrorCode::rate_limited;
      p.retry_after = *rate_wait;
      p.why = fmt::format("every endpoint of model '{}' is at its rpm or tpm limit", m.name);
    } else {
      TimePoint soonest = TimePoint::max();
      for (auto& ep : m.endpoints) soonest = std::min(soonest, ep.health.ejected_until());
      p.refusal = ErrorCode::all_endpoints_down;
      p.retry_after = std::max(Millis(1000), std::chrono::ceil<Millis>(soonest - now));
      p.why =
          fmt::format("every endpoint of model '{}' is ejected after repeated failures, or probing", m.name);
    }
    return p;
  }
  EndpointState& ep = m.endpoints[static_cast<size_t>(chosen)];
  ep.health.on_send(now);
  if (ep.rpm.enabled()) ep.rpm.take(1, now);
  if (ep.tpm.enabled()) ep.tpm.take(tokens, now);
  p.endpoint = chosen;
  return p;
}

asio::awaitable<Upstreams::Admit> Upstreams::admit(size_t model, size_t endpoint, const std::string& fair_key,
                                                   TimePoint deadline, Downstream& down, Wakeup& wake) {
  ModelState& m = *models_[model];
  EndpointState& ep = m.endpoints[endpoint];
  const TimePoint arrived = Clock::now();
  TimePoint start_by;
  uint64_t ticket = 0;
  std::shared_ptr<Waiter> waiter;
  const auto executor = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(m.mu);
    // Starting later than this could not finish before the deadline: an average slot's time
    // before it, and never past the queue timeout.
    start_by =
        std::min(arrived + ep.queue_timeout, deadline - ep.admission.mean_hold().value_or(Duration(0)));
    auto a = ep.admission.arrive(fair_key, arrived, start_by);
    switch (a.decision) {
      case Admission::Decision::admitted:
        if (ep.admission.bounded()) metrics_.queue_wait(ep.metric_labels, 0);
        co_return Admit{};
      case Admission::Decision::queue_full:
        co_return Admit{Admit::queue_full, a.retry_after, {}, true};
      case Admission::Decision::too_late:
        co_return Admit{Admit::queue_timeout, a.retry_after, {}, true};
      case Admission::Decision::queued:
        break;
    }
    ticket = a.ticket;
    waiter = std::make_shared<Waiter>();
    waiter->executor = executor;
    waiter->wake = &wake;
    ep.waiters.emplace(ticket, waiter);
  }
  down.watch_disconnect(wake);
  Admit result;
  for (;;) {
    co_await wake.wait_until(start_by);
    std::lock_guard lock(m.mu);
    TimePoint now = Clock::now();
    result.waited = now - arrived;
    if (waiter->state == Waiter::State::granted) {
      result.kind = Admit::admitted;
      break;
    }
    if (waiter->state == Waiter::State::refused) {
      result = {Admit::queue_timeout, waiter->retry_after, now - arrived, false};
      break;
    }
    bool gone = down.client_gone();
    if (gone || now >= start_by) {
      // Still waiting (the state would say otherwise): leave the queue.
      ep.admission.cancel(ticket);
      ep.waiters.erase(ticket);
      result.kind = gone ? Admit::client_gone : Admit::queue_timeout;
      result.retry_after = ep.admission.retry_after(now);
      break;
    }
  }
  waiter->gone = true;
  down.stop_watching();
  metrics_.queue_wait(ep.metric_labels, std::chrono::duration<double>(result.waited).count());
  co_return result;
}

void Upstreams::wake(EndpointState& ep, const Admission::Changes& changes) {
  auto post = [&](uint64_t ticket, Waiter::State state, Millis retry_after) {
    auto it = ep.waiters.find(ticket);
    if (it == ep.waiters.end()) return;
    std::shared_ptr<Waiter> w = std::move(it->second);
    ep.waiters.erase(it);
    w->state = state;
    w->retry_after = retry_after;
    asio::post(w->executor, [w] {
      if (!w->gone) w->wake->notify();
    });
  };
  for (uint64_t t : changes.granted) post(t, Waiter::State::granted, Millis(0));
  for (auto [t, ra] : changes.refused) post(t, Waiter::State::refused, ra);
}

void Upstreams::report_health(ModelState& m, EndpointState& ep, Verdict::Health health, TimePoint now,
                              const std::string& detail) {
  HealthEvent event = HealthEvent::none;
  switch (health) {
    case Verdict::Health::success:
      event = ep.health.report_success(now);
      break;
    case Verdict::Health::failure: {
      // Never eject the last endpoint standing: with none left, every request would fail.
      int standing = 0;
      for (auto& other : m.endpoints) standing += other.health.ejected(now) ? 0 : 1;
      event = ep.health.report_failure(now, standing > 1);
      break;
    }
    case Verdict::Health::neutral:
      ep.health.report_neutral();
      break;
  }
  if (event == HealthEvent::ejected) {
    metrics_.ejection(ep.name);
    spdlog::warn("endpoint {} of model '{}' ejected for {} after repeated failures (last: {})", ep.name,
                 m.name, format_duration(ep.health.last_ejection()), detail);
  } else if (event == HealthEvent::readmitted) {
    spdlog::info("endpoint {} of model '{}' readmitted: its probe succeeded", ep.name, m.name);
  }
}

void Upstreams::finish(size_t model, size_t endpoint, TimePoint admitted_at, const Verdict& verdict,
                       std::optional<Duration> first_token, double tokens_delta, TimePoint now) {
  ModelState& m = *models_[model];
  EndpointState& ep = m.endpoints[endpoint];
  std::lock_guard lock(m.mu);
  wake(ep, ep.admission.finish(now, admitted_at, verdict.load, first_token));
  report_health(m, ep, verdict.health, now, std::string(code_name(verdict.code)));
  if (ep.tpm.enabled() && tokens_delta != 0) ep.tpm.adjust(tokens_delta, now);
}

void Upstreams::finish_unsent(size_t model, size_t endpoint) {
  ModelState& m = *models_[model];
  std::lock_guard lock(m.mu);
  m.endpoints[endpoint].health.report_neutral();
}

void Upstreams::record_request(size_t model, bool client_retry, TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(m.mu);
  if (client_retry)
    m.budget.record_client_retry(now);
  else
    m.budget.record_request(now);
}

bool Upstreams::try_spend_retry(size_t model, TimePoint now) {
  ModelState& m = *models_[model];
  std::lock_guard lock(m.mu);
  return m.budget.try_spend(now);
}

std::optional<Millis> Upstreams::charge_key(size_t key, double tokens, TimePoint now) {
  KeyState& k = *keys_[key];
  std::lock_guard lock(k.mu);
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
  std::lock_guard lock(k.mu);
  if (k.tpm.enabled() && tokens_delta != 0) k.tpm.adjust(tokens_delta, now);
}

void Upstreams::check_result(size_t model, size_t endpoint, bool ok, const std::string& detail,
                             TimePoint now) {
  ModelState& m = *models_[model];
  EndpointState& ep = m.endpoints[endpoint];
  std::lock_guard lock(m.mu);
  if (ok) {
    if (ep.health.check_passed(now) == HealthEvent::readmitted)
      spdlog::info("endpoint {} of model '{}' readmitted: its health check passed", ep.name, m.name);
    return;
  }
  report_health(m, ep, Verdict::Health::failure, now, "health check: " + detail);
}

void Upstreams::render_gauges(std::string& out, TimePoint now) {
  struct Row {
    std::string labels;
    double in_flight, queued, limit, healthy, rpm, tpm;
    bool has_rpm, has_tpm;
  };
  std::vector<Row> rows;
  for (auto& m : models_) {
    std::lock_guard lock(m->mu);
    for (auto& ep : m->endpoints) {
      Row r;
      r.labels = label("model", m->name) + "," + label("endpoint", ep.name);
      r.in_flight = ep.admission.in_flight();
      r.queued = ep.admission.queued();
      r.limit = ep.admission.bounded() ? ep.admission.limit() : -1;
      r.healthy = ep.health.ejected(now) ? 0 : 1;
      r.has_rpm = ep.rpm.enabled();
      r.has_tpm = ep.tpm.enabled();
      r.rpm = r.has_rpm ? ep.rpm.level(now) : 0;
      r.tpm = r.has_tpm ? ep.tpm.level(now) : 0;
      rows.push_back(std::move(r));
    }
  }
  auto gauge = [&](std::string_view name, std::string_view help, auto value, auto present) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const auto& r : rows) {
      if (present(r)) fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, r.labels, value(r));
    }
  };
  auto always = [](const Row&) { return true; };
  gauge(
      "ballast_in_flight", "Requests in flight to each endpoint.", [](const Row& r) { return r.in_flight; },
      always);
  gauge(
      "ballast_queue_depth", "Requests waiting for one of the endpoint's max_in_flight slots.",
      [](const Row& r) { return r.queued; }, always);
  gauge(
      "ballast_max_in_flight", "The endpoint's concurrency limit (adapted when max_in_flight: auto).",
      [](const Row& r) { return r.limit; }, [](const Row& r) { return r.limit >= 0; });
  gauge(
      "ballast_endpoint_healthy", "1 unless outlier detection has ejected the endpoint.",
      [](const Row& r) { return r.healthy; }, always);
  gauge(
      "ballast_rpm_available", "Requests the endpoint's rpm limiter would let through now.",
      [](const Row& r) { return r.rpm; }, [](const Row& r) { return r.has_rpm; });
  gauge(
      "ballast_tpm_available", "Tokens the endpoint's tpm limiter would let through now.",
      [](const Row& r) { return r.tpm; }, [](const Row& r) { return r.has_tpm; });
}

std::string Upstreams::status_json(TimePoint now) {
  JsonWriter w;
  w.begin_object().key("models").begin_array();
  for (auto& m : models_) {
    std::lock_guard lock(m->mu);
    w.begin_object().field("name", m->name);
    w.field("retry_budget_used", m->budget.retries(now))
        .field("retry_budget_allowed", m->budget.allowed(now));
    w.key("endpoints").begin_array();
    for (auto& ep : m->endpoints) {
      w.begin_object().field("name", ep.name).field("priority", ep.priority).field("weight", ep.weight);
      auto state = ep.health.state(now);
      w.field("health", state == OutlierState::State::healthy   ? "healthy"
                        : state == OutlierState::State::ejected ? "ejected"
                                                                : "half_open");
      if (state == OutlierState::State::ejected)
        w.field("ejected_for_ms",
                std::chrono::duration<double, std::milli>(ep.health.ejected_until() - now).count());
      w.field("in_flight", ep.admission.in_flight()).field("queued", ep.admission.queued());
      if (ep.admission.bounded()) w.field("max_in_flight", ep.admission.limit());
      w.end_object();
    }
    w.end_array().end_object();
  }
  w.end_array().end_object();
  return w.take();
}

}  // namespace ballast
