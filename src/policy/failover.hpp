// Where a request's next attempt goes after a failed one, and after how long. Tiers are fallbacks:
// another endpoint of the same tier first; the same endpoint again only for a fast, transient
// failure that happened once, after a short wait; otherwise the next tier, at once. A silent
// failure (connect, first-byte or first-token timeout) never goes back to the endpoint that was
// silent. An upstream error code named in the model's fallback_on goes once to the next tier.
// Pure: the endpoints' state, the time left and randomness are arguments.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "common/time.hpp"
#include "policy/balancer.hpp"
#include "policy/retry.hpp"

namespace ballast {

// What one failed attempt of the request tells the next decision.
struct AttemptFact {
  size_t endpoint = 0;
  bool retryable = false;  // transient, and nothing reached the client (the classifier's verdict)
  bool silent = false;     // the endpoint said nothing in time: connect, first-byte or first-token timeout
  bool fallback = false;   // the upstream's error code is one of the model's fallback_on
  std::optional<Millis> hint;  // how long the upstream asked to be left alone
};

// Why a wanted retry is not made.
enum class RetryDenial { none, not_retryable, max_attempts, deadline, no_endpoint, budget };
std::string_view denial_name(RetryDenial denial);  // for metrics: "max_attempts", …

struct NextAttempt {
  enum class Where { none, other_in_tier, same_endpoint, next_tier };
  Where where = Where::none;
  int endpoint = -1;
  Millis wait{0};
  bool spends_budget = false;              // a retry; a fallback_on hop is a routing decision, not a retry
  RetryDenial denied = RetryDenial::none;  // why there is none
};

// After the last of `history` failed. `candidates` is every endpoint of the model as it stands now
// (health and rate limits folded into `available`); `unit` returns random numbers in [0, 1).
NextAttempt next_attempt(const RetryPolicy& policy, std::span<const Candidate> candidates,
                         std::span<const AttemptFact> history, Duration time_left,
                         const std::function<double()>& unit);

}  // namespace ballast
