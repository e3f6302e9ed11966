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

Verdict classify(const Outcome& o) {
  const bool fresh = !o.response_started;
  if (o.client_gone) return {ErrorCode::client_disconnected, false};
  if (o.timer != ErrorCode::ok) {
    // The deadline is the client's whole budget: nothing is left for another attempt.
    bool transient = o.timer == ErrorCode::first_byte_timeout || o.timer == ErrorCode::first_token_timeout;
    return {o.timer, transient && fresh};
  }
  if (o.transport != TransportError::none) {
    // A TLS or DNS failure repeats on every attempt to the same host; another endpoint may differ,
    // so they stay retryable and the retry policy prefers another endpoint.
    return {code_for(o.transport), fresh};
  }
  if (o.status >= 200 && o.status < 300) {
    if (o.truncated || o.malformed) return {ErrorCode::upstream_reset, fresh};
    return {ErrorCode::ok, false};
  }
  if (o.status == 0) return {ErrorCode::upstream_reset, fresh};
  return {ErrorCode::upstream_status, fresh && retryable_status(o.status)};
}

}  // namespace ballast
