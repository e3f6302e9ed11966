// Passive outlier detection for one endpoint: traffic decides. Consecutive failures, or a failure
// rate over a window with enough requests in it, eject the endpoint for a time that grows with
// each ejection; when the time is up it is half-open and takes one probe request, whose outcome
// readmits or re-ejects it. An active health check that passes readmits an endpoint whose ejection
// has run out, and nothing more: it never clears the count of failing traffic. The data path only
// reports outcomes; this decides. Whether an ejection is allowed at all (never every endpoint of a
// model) is the caller's, who sees them all.
#pragma once

#include <array>
#include <cstdint>

#include "common/time.hpp"

namespace ballast {

struct OutlierPolicy {
  int consecutive_failures = 5;  // local-origin failures or 5xx in a row that eject
  int min_requests = 10;         // failure-rate ejection: at least this many requests in the window …
  Millis window{10'000};         // … of this length …
  double failure_rate = 0.5;     // … of which at least this share failed
  Millis base_ejection{30'000};  // the n-th ejection in a row lasts n × this …
  Millis max_ejection{300'000};  // … up to this
};

enum class HealthEvent { none, ejected, readmitted };

class OutlierState {
 public:
  enum class State { healthy, ejected, half_open };

  explicit OutlierState(const OutlierPolicy& policy) : policy_(&policy) {}

  // May a request be sent now? Healthy: yes. Ejected: no, until the ejection ends. Half-open:
  // one probe at a time.
  bool available(TimePoint now) const;
  // The request chosen to go here is about to be sent (claims the probe when half-open).
  void on_send(TimePoint now);
  // `may_eject` is false when ejecting would leave the model with no endpoint.
  HealthEvent report_failure(TimePoint now, bool may_eject);
  HealthEvent report_success(TimePoint now);
  // An active health check passed: an endpoint whose ejection has run out is readmitted without
  // waiting for a probe request. A current ejection stands, and traffic failures still count.
  HealthEvent check_passed(TimePoint now);
  // The probe's request ended without a verdict on the endpoint (a client that left, a 4xx).
  void report_neutral();

  State state(TimePoint now) const;
  bool ejected(TimePoint now) const { return state(now) == State::ejected; }
  int ejections() const { return ejections_; }
  TimePoint ejected_until() const { return until_; }
  Millis last_ejection() const { return last_ejection_; }
  // Requests and failures counted in the current window (for the status page and tests).
  int window_requests(TimePoint now) const;
  int window_failures(TimePoint now) const;

 private:
  HealthEvent eject(TimePoint now);
  HealthEvent readmit(TimePoint now);
  // The window is kept as 10 slots of a tenth of it each, so old traffic ages out smoothly.
  struct Slot {
    int64_t index = -1;
    int requests = 0;
    int failures = 0;
  };
  static constexpr size_t kSlots = 10;
  int64_t slot_index(TimePoint now) const;
  int window_sum(TimePoint now, int Slot::*field) const;
  void count(TimePoint now, bool failed);
  bool rate_exceeded(TimePoint now) const;

  const OutlierPolicy* policy_;
  int failures_ = 0;   // consecutive
  int ejections_ = 0;  // in a row: reset after a healthy max_ejection
  bool is_ejected_ = false;
  bool probing_ = false;  // a half-open probe is in flight
  TimePoint until_{};
  TimePoint readmitted_at_{};
  Millis last_ejection_{0};
  std::array<Slot, kSlots> slots_{};
};

}  // namespace ballast
