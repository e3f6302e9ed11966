// Which endpoint of a model takes the next attempt: the first priority tier with a healthy
// endpoint, then power of two choices on least outstanding requests per unit of weight. An
// endpoint already tried by this request is passed over while another is available, so a retry
// goes elsewhere (and to the next tier before it comes back to the same endpoint).
#pragma once

#include <functional>
#include <span>

namespace ballast {

struct Candidate {
  double weight = 1;      // share of traffic within its tier
  int priority = 0;       // 0 first; a higher tier takes over when every lower one is unavailable
  bool available = true;  // healthy (not ejected), or half-open and free to take its probe
  int outstanding = 0;    // requests in flight or queued at this endpoint, from every worker
  bool tried = false;     // this request already had an attempt here
};

// The index of the chosen candidate, or -1 when none is available. `unit` returns random numbers
// in [0, 1).
int pick_endpoint(std::span<const Candidate> candidates, const std::function<double()>& unit);

}  // namespace ballast
