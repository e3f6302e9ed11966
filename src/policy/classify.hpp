// The one place that decides what an attempt's outcome means: its taxonomy code and whether
// trying again could help. Statuses and transport errors are interpreted here and nowhere else.
#pragma once

#include "policy/admission.hpp"
#include "policy/outcome.hpp"

namespace ballast {

struct Verdict {
  ErrorCode code = ErrorCode::ok;
  // Another attempt could succeed: transient, and nothing has reached the client yet.
  bool retryable = false;
  // The endpoint said nothing in time (connect, first-byte or first-token timeout): retrying it
  // within the same request would only add another wait of the same length.
  bool silent = false;
  // For outlier detection: a local-origin failure or a 5xx counts against the endpoint's health;
  // a success clears the count; anything else (4xx, 429, the client leaving) says nothing.
  enum class Health { neutral, success, failure } health = Health::neutral;
  // For the adaptive concurrency limit: 429, 503, 529 and timeouts mean the endpoint has more
  // than it can serve.
  LoadSignal load = LoadSignal::neutral;
};

Verdict classify(const Outcome& outcome);

// Upstream statuses worth another attempt: 408, 409, 429, 500, 502, 503, 504, 529. 400, 401,
// 403, 404 and 422 are configuration or request bugs; repeating them only hides the cause.
bool retryable_status(int status);

ErrorCode code_for(TransportError error);

// What an upstream's HTTP status says, for every caller that judges one (the gateway, health
// checks, doctor, load): nothing else tests status ranges.
enum class StatusClass { none, success, unauthorized, not_found, rate_limited, client_error, server_error };
StatusClass status_class(int status);

// An active health check passes when the endpoint answered at all, with a status below 500: a 404
// on /models still proves the server is up, a 5xx does not.
bool health_check_passed(TransportError error, int status);

}  // namespace ballast
