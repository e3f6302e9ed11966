// Which endpoint of a model takes an attempt: the first priority tier with an available endpoint,
// then power of two choices on least outstanding requests per unit of weight. Where a retry or a
// fallback goes is failover's decision (policy/failover.hpp); it draws from the pool it chose here.
#pragma once

#include <functional>
#include <span>

namespace ballast {

struct Candidate {
  double weight = 1;      // share of traffic within its tier
  int priority = 0;       // 0 first; a higher tier takes over when every lower one is unavailable
  bool available = true;  // healthy (or half-open and free to take its probe) and within its rate limits
  int outstanding = 0;    // requests in flight or queued at this endpoint, from every worker
};

// The index of the chosen candidate for a request's first attempt, or -1 when none is available.
// `unit` returns random numbers in [0, 1).
int pick_endpoint(std::span<const Candidate> candidates, const std::function<double()>& unit);

// Power of two choices among the available candidates for which `eligible(index)` holds; -1 when
// there is none.
int pick_among(std::span<const Candidate> candidates, const std::function<bool(size_t)>& eligible,
               const std::function<double()>& unit);

}  // namespace ballast
