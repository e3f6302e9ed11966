#include "policy/failover.hpp"

#include <algorithm>
#include <climits>
#include <vector>

namespace ballast {

namespace {

NextAttempt none(RetryDenial why) {
  NextAttempt n;
  n.denied = why;
  return n;
}

// The lowest tier above `tier` that has an available endpoint (untried ones preferred), or -1.
int next_tier_pick(std::span<const Candidate> c, int tier, const std::vector<bool>& tried,
                   const std::function<double()>& unit) {
  for (bool allow_tried : {false, true}) {
    int next = INT_MAX;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i].available && c[i].weight > 0 && c[i].priority > tier && (allow_tried || !tried[i]))
        next = std::min(next, c[i].priority);
    }
    if (next == INT_MAX) continue;
    return pick_among(
        c, [&](size_t i) { return c[i].priority == next && (allow_tried || !tried[i]); }, unit);
  }
  return -1;
}

}  // namespace

std::string_view denial_name(RetryDenial denial) {
  switch (denial) {
    case RetryDenial::none:
      return "none";
    case RetryDenial::not_retryable:
      return "not_retryable";
    case RetryDenial::max_attempts:
      return "max_attempts";
    case RetryDenial::deadline:
      return "deadline";
    case RetryDenial::no_endpoint:
      return "no_endpoint";
    case RetryDenial::budget:
      return "budget";
  }
  return "none";
}

NextAttempt next_attempt(const RetryPolicy& policy, std::span<const Candidate> c,
                         std::span<const AttemptFact> history, Duration time_left,
                         const std::function<double()>& unit) {
  if (history.empty()) return none(RetryDenial::no_endpoint);
  const AttemptFact& last = history.back();
  const size_t failed = last.endpoint;
  const int tier = c[failed].priority;
  std::vector<bool> tried(c.size());
  for (const auto& a : history) tried[a.endpoint] = true;
  auto go = [&](NextAttempt::Where where, int endpoint, Millis wait, bool retry) {
    if (time_left <= wait) return none(RetryDenial::deadline);
    NextAttempt n;
    n.where = where;
    n.endpoint = endpoint;
    n.wait = wait;
    n.spends_budget = retry;
    return n;
  };

  if (last.fallback) {
    // The upstream said this request cannot succeed on this model: once, to the next tier.
    bool fell_back =
        std::any_of(history.begin(), history.end() - 1, [](const auto& a) { return a.fallback; });
    if (fell_back) return none(RetryDenial::no_endpoint);
    int next = next_tier_pick(c, tier, tried, unit);
    if (next < 0) return none(RetryDenial::no_endpoint);
    return go(NextAttempt::Where::next_tier, next, Millis(0), false);
  }
  if (!last.retryable) return none(RetryDenial::not_retryable);
  if (static_cast<int>(history.size()) >= policy.max_attempts) return none(RetryDenial::max_attempts);

  // Another endpoint of the same tier, at once.
  int other = pick_among(
      c, [&](size_t i) { return i != failed && !tried[i] && c[i].priority == tier; }, unit);
  if (other >= 0) return go(NextAttempt::Where::other_in_tier, other, Millis(0), true);

  // Back to an endpoint of this tier whose one failure was fast and transient, when the wait is
  // short: a blip is cheaper to wait out than a fallback is to take. The one that just failed
  // first, else one tried earlier (A answered a quick 503, then B went silent: A may take the
  // attempt that is left). Not with the last attempt allowed while a next tier could take it:
  // the fallback must get its chance.
  const bool last_attempt = static_cast<int>(history.size()) + 1 >= policy.max_attempts;
  const int fallback = next_tier_pick(c, tier, tried, unit);
  if (!(last_attempt && fallback >= 0)) {
    const int retry = static_cast<int>(history.size());
    for (size_t k = history.size(); k-- > 0;) {
      const AttemptFact& a = history[k];
      const auto failures = std::count_if(history.begin(), history.end(),
                                          [&](const auto& b) { return b.endpoint == a.endpoint; });
      if (a.silent || !a.retryable || failures != 1 || !c[a.endpoint].available ||
          c[a.endpoint].priority != tier)
        continue;
      Millis wait = a.hint ? *a.hint : backoff(policy, retry, unit());
      if (wait <= std::min(policy.max_same_wait, policy.retry_after_cap))
        return go(NextAttempt::Where::same_endpoint, static_cast<int>(a.endpoint), wait, true);
    }
  }

  // Otherwise the next tier, at once: no backoff before a different endpoint.
  if (fallback >= 0) return go(NextAttempt::Where::next_tier, fallback, Millis(0), true);
  return none(RetryDenial::no_endpoint);
}

}  // namespace ballast
