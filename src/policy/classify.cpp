#include "policy/classify.hpp"

namespace ballast {

bool retryable_status(int status) {
  switch (status) {
    case 408:
    case 409:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
      return true;
    default:
      return false;
  }
}

ErrorCode code_for(TransportError error) {
  switch (error) {
    case TransportError::none:
      return ErrorCode::ok;
    case TransportError::dns:
      return ErrorCode::dns_failure;
    case TransportError::proxy:
      return ErrorCode::proxy_failure;
    case TransportError::connect_refused:
      return ErrorCode::connect_refused;
    case TransportError::connect_timeout:
      return ErrorCode::connect_timeout;
    case TransportError::tls:
      return ErrorCode::tls_failure;
    case TransportError::reset:
    case TransportError::other:
      return ErrorCode::upstream_reset;
  }
  return ErrorCode::upstream_reset;
}

StatusClass status_class(int status) {
  if (status <= 0) return StatusClass::none;
  if (status >= 200 && status < 300) return StatusClass::success;
  if (status == 401 || status == 403) return StatusClass::unauthorized;
  if (status == 404) return StatusClass::not_found;
  if (status == 429) return StatusClass::rate_limited;
  if (status >= 500) return StatusClass::server_error;
  return StatusClass::client_error;
}

bool health_check_passed(TransportError error, int status) {
  StatusClass c = status_class(status);
  return error == TransportError::none && c != StatusClass::none && c != StatusClass::server_error;
}

namespace {

Verdict judge(const Outcome& o) {
  const bool fresh = !o.response_started;
  if (o.client_gone) return {ErrorCode::client_disconnected, false};
  if (o.shutting_down) return {ErrorCode::shutting_down, false};
  if (o.timer != ErrorCode::ok) {
    // The deadline is the client's whole budget: nothing is left for another attempt.
    bool transient = o.timer == ErrorCode::first_byte_timeout || o.timer == ErrorCode::first_token_timeout;
    return {o.timer, transient && fresh};
  }
  // Over a limit of ballast's own (a response header block, a non-streamed answer, an SSE line):
  // the same upstream would send the same again.
  if (o.oversized) return {ErrorCode::upstream_reset, false};
  if (o.transport != TransportError::none) {
    // A TLS or DNS failure repeats on every attempt to the same host; another endpoint may differ,
    // so they stay retryable and the retry policy prefers another endpoint.
    return {code_for(o.transport), fresh};
  }
  if (status_class(o.status) == StatusClass::success) {
    // The upstream's own failure, told inside its stream: like an error status before the first
    // token, a failure of an answer that had begun after it.
    if (o.upstream_error) return {ErrorCode::upstream_error, fresh};
    if (o.truncated || o.malformed) return {ErrorCode::upstream_reset, fresh};
    return {ErrorCode::ok, false};
  }
  if (o.status == 0) return {ErrorCode::upstream_reset, fresh};
  return {ErrorCode::upstream_status, fresh && retryable_status(o.status)};
}

}  // namespace

Verdict classify(const Outcome& o) {
  Verdict v = judge(o);
  switch (v.code) {
    case ErrorCode::ok:
      v.health = Verdict::Health::success;
      v.load = LoadSignal::success;
      break;
    case ErrorCode::connect_timeout:
    case ErrorCode::first_byte_timeout:
    case ErrorCode::first_token_timeout:
      v.health = Verdict::Health::failure;
      v.load = LoadSignal::overload;
      v.silent = true;
      break;
    case ErrorCode::dns_failure:
    case ErrorCode::proxy_failure:
    case ErrorCode::connect_refused:
    case ErrorCode::tls_failure:
    case ErrorCode::upstream_reset:
    case ErrorCode::upstream_error:
    case ErrorCode::stream_idle_timeout:
      v.health = Verdict::Health::failure;
      break;
    case ErrorCode::upstream_status:
      if (o.status >= 500) v.health = Verdict::Health::failure;
      if (o.status == 429 || o.status == 503 || o.status == 529) v.load = LoadSignal::overload;
      break;
    default:
      break;
  }
  return v;
}

}  // namespace ballast
