#include "policy/endpoint_pool.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace ballast {

Millis bound_retry_after(Millis wait, Millis cap, Duration time_left) {
  Millis left = std::chrono::floor<Millis>(time_left);
  return std::max(Millis(1), std::min({wait, cap, left}));
}

RetryAfter retry_after_headers(Millis wait, Millis cap, Duration time_left) {
  RetryAfter r;
  r.ms = bound_retry_after(wait, cap, time_left);
  const int64_t limit_ms = std::max<int64_t>(0, std::min(cap, std::chrono::floor<Millis>(time_left)).count());
  r.seconds = std::min((r.ms.count() + 999) / 1000, limit_ms / 1000);
  return r;
}

EndpointState::EndpointState(const EndpointSpec& spec, const OutlierPolicy& o, TimePoint now)
    : outlier(o),
      admission(spec.admission),
      health(outlier),
      rpm(spec.rpm > 0 ? TokenBucket(spec.rpm, now) : TokenBucket()),
      tpm(spec.tpm > 0 ? TokenBucket(spec.tpm, now) : TokenBucket()) {}

Admission::Changes EndpointState::retune(const EndpointSpec& spec, const OutlierPolicy& o, TimePoint now) {
  outlier = o;  // health reads it from here
  rpm.retune(spec.rpm, now);
  tpm.retune(spec.tpm, now);
  return admission.retune(spec.admission, now);
}

EndpointSpec scoped(const EndpointSpec& spec, LimitScope scope, int replicas) {
  EndpointSpec out = spec;
  if (scope == LimitScope::shared) {
    out.rpm = out.tpm = 0;
  } else if (scope == LimitScope::fallback && replicas > 1) {
    // Its share, never nothing: a limit smaller than the replicas still lets each one work.
    auto share = [replicas](int limit) { return std::max(1, limit / replicas); };
    AdmissionPolicy& a = out.admission;
    if (a.max_in_flight > 0) a.max_in_flight = share(a.max_in_flight);
    if (a.adaptive) {
      a.max_limit = share(a.max_limit);
      a.min_limit = std::min(a.min_limit, a.max_limit);
      a.initial_limit = std::clamp(share(a.initial_limit), a.min_limit, a.max_limit);
    }
    out.rpm /= replicas;
    out.tpm /= replicas;
  }
  return out;
}

EndpointPool::EndpointPool(std::string model, std::vector<EndpointSpec> endpoints,
                           const OutlierPolicy& outlier, const RetryPolicy& retries, Millis refusal_cap,
                           uint64_t seed, TimePoint now)
    : model_(std::move(model)),
      outlier_(outlier),
      retries_(retries),
      budget_(retries),
      refusal_cap_(refusal_cap),
      rng_(seed) {
  for (auto& e : endpoints) {
    states_.push_back(std::make_shared<EndpointState>(e, outlier_, now));
    specs_.push_back(std::move(e));
    scopes_.push_back(LimitScope::local);
  }
}

std::vector<std::pair<size_t, Admission::Changes>> EndpointPool::adopt(const EndpointPool& previous,
                                                                       TimePoint now) {
  std::vector<std::pair<size_t, Admission::Changes>> changes;
  for (size_t i = 0; i < specs_.size(); ++i) {
    for (size_t j = 0; j < previous.specs_.size(); ++j) {
      if (previous.specs_[j].name != specs_[i].name) continue;
      states_[i] = previous.states_[j];
      changes.emplace_back(i, states_[i]->retune(specs_[i], outlier_, now));
      scopes_[i] = LimitScope::local;
      break;
    }
  }
  return changes;
}

Admission::Changes EndpointPool::scope(size_t endpoint, LimitScope scope, int replicas, TimePoint now) {
  scopes_[endpoint] = scope;
  return states_[endpoint]->retune(scoped(specs_[endpoint], scope, replicas), outlier_, now);
}

std::vector<Candidate> EndpointPool::candidates(double tokens, TimePoint now,
                                                std::optional<Millis>* rate_wait) {
  std::vector<Candidate> out(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    EndpointState& ep = *states_[i];
    Candidate& c = out[i];
    c.weight = specs_[i].weight;
    c.priority = specs_[i].priority;
    c.outstanding = ep.admission.in_flight() + ep.admission.queued();
    const bool healthy = ep.health.available(now);
    std::optional<Millis> wait;
    if (ep.rpm.enabled()) wait = ep.rpm.wait_for(1, now);
    if (!wait && ep.tpm.enabled()) wait = ep.tpm.wait_for(tokens, now);
    if (healthy && wait) *rate_wait = *rate_wait ? std::min(**rate_wait, *wait) : *wait;
    c.available = healthy && !wait;
  }
  return out;
}

void EndpointPool::claim(size_t endpoint, double tokens, TimePoint now) {
  EndpointState& ep = *states_[endpoint];
  ep.health.on_send(now);
  if (ep.rpm.enabled()) ep.rpm.take(1, now);
  if (ep.tpm.enabled()) ep.tpm.take(tokens, now);
}

EndpointPool::Choice EndpointPool::refuse(const std::optional<Millis>& rate_wait, Duration time_left,
                                          TimePoint now) {
  Choice c;
  bool any_healthy =
      std::any_of(states_.begin(), states_.end(), [&](const auto& ep) { return ep->health.available(now); });
  if (any_healthy && rate_wait) {
    c.refusal = ErrorCode::rate_limited;
    c.retry_after = bound_retry_after(*rate_wait, refusal_cap_, time_left);
    c.why = fmt::format("every endpoint of model '{}' is at its rpm or tpm limit", model_);
    return c;
  }
  TimePoint soonest = TimePoint::max();
  for (const auto& ep : states_) soonest = std::min(soonest, ep->health.ejected_until());
  c.refusal = ErrorCode::all_endpoints_down;
  c.retry_after = bound_retry_after(std::max(Millis(1000), std::chrono::ceil<Millis>(soonest - now)),
                                    refusal_cap_, time_left);
  c.why = fmt::format("every endpoint of model '{}' is ejected after repeated failures, or probing", model_);
  return c;
}

EndpointPool::Choice EndpointPool::choose(std::span<const AttemptFact> history, double tokens,
                                          Duration time_left, TimePoint now) {
  std::optional<Millis> rate_wait;
  std::vector<Candidate> c = candidates(tokens, now, &rate_wait);
  std::uniform_real_distribution<double> unit01(0.0, 1.0);
  auto unit = [&] { return unit01(rng_); };
  Choice choice;
  if (history.empty()) {
    choice.endpoint = pick_endpoint(c, unit);
    if (choice.endpoint < 0) return refuse(rate_wait, time_left, now);
  } else {
    NextAttempt next = next_attempt(retries_, c, history, time_left, unit);
    if (next.endpoint < 0) {
      choice.denied = next.denied;
      return choice;
    }
    if (next.spends_budget && !budget_.try_spend(now)) {
      choice.denied = RetryDenial::budget;
      return choice;
    }
    choice.endpoint = next.endpoint;
    choice.wait = next.wait;
    choice.where = next.where;
    choice.retry = next.spends_budget;
  }
  claim(static_cast<size_t>(choice.endpoint), tokens, now);
  return choice;
}

HealthEvent EndpointPool::report(size_t endpoint, Verdict::Health health, TimePoint now) {
  EndpointState& ep = *states_[endpoint];
  switch (health) {
    case Verdict::Health::success:
      return ep.health.report_success(now);
    case Verdict::Health::failure: {
      // Never eject the last endpoint standing: with none left, every request would fail.
      int standing = 0;
      for (const auto& other : states_) standing += other->health.ejected(now) ? 0 : 1;
      return ep.health.report_failure(now, standing > 1);
    }
    case Verdict::Health::neutral:
      ep.health.report_neutral();
      return HealthEvent::none;
  }
  return HealthEvent::none;
}

void EndpointPool::unsent(size_t endpoint) {
  states_[endpoint]->health.report_neutral();
}

HealthEvent EndpointPool::check_result(size_t endpoint, bool ok, TimePoint now) {
  if (ok) return states_[endpoint]->health.check_passed(now);
  return report(endpoint, Verdict::Health::failure, now);
}

void EndpointPool::correct_tokens(size_t endpoint, double delta, TimePoint now) {
  EndpointState& ep = *states_[endpoint];
  if (ep.tpm.enabled() && delta != 0) ep.tpm.adjust(delta, now);
}

void EndpointPool::record_request(bool client_retry, TimePoint now) {
  if (client_retry)
    budget_.record_client_retry(now);
  else
    budget_.record_request(now);
}

ModelView EndpointPool::view(TimePoint now) {
  ModelView m;
  m.name = model_;
  m.retry_budget_used = budget_.retries(now);
  m.retry_budget_allowed = budget_.allowed(now);
  for (size_t i = 0; i < specs_.size(); ++i) {
    EndpointState& ep = *states_[i];
    EndpointView v;
    v.name = specs_[i].name;
    v.priority = specs_[i].priority;
    v.weight = specs_[i].weight;
    v.health = ep.health.state(now);
    if (v.health == OutlierState::State::ejected) v.ejected_for = ep.health.ejected_until() - now;
    v.in_flight = ep.admission.in_flight();
    v.queued = ep.admission.queued();
    if (ep.admission.bounded()) v.max_in_flight = ep.admission.limit();
    if (ep.rpm.enabled()) v.rpm_available = ep.rpm.level(now);
    if (ep.tpm.enabled()) v.tpm_available = ep.tpm.level(now);
    v.window_requests = ep.health.window_requests(now);
    v.window_failures = ep.health.window_failures(now);
    m.endpoints.push_back(std::move(v));
  }
  return m;
}

}  // namespace ballast
