// What one attempt did, as plain facts. The upstream client fills these in; the classifier,
// the access log and (later) retry, health and metrics read them. Nothing here interprets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "policy/error_code.hpp"

namespace ballast {

// How the transport failed, translated once from curl at the edge of the upstream client.
enum class TransportError : uint8_t {
  none,
  dns,              // the endpoint's host did not resolve
  proxy,            // the egress proxy was unreachable, did not resolve, or refused the CONNECT
  connect_refused,  // the address answered with RST: nothing listening
  connect_timeout,  // no answer to the connect (or TLS handshake) within the bound
  tls,              // handshake or certificate verification failed
  reset,            // the connection closed or broke before the response was complete
  other,
};

// Milliseconds from the attempt's start to each milestone it reached; absent if not reached.
struct PhaseTimings {
  std::optional<double> dns_ms;
  std::optional<double> connect_ms;
  std::optional<double> tls_ms;
  std::optional<double> first_byte_ms;
  std::optional<double> first_token_ms;
  double total_ms = 0;
};

struct Outcome {
  TransportError transport = TransportError::none;
  // Which of ballast's own bounds ended the attempt: first_byte_timeout, first_token_timeout,
  // stream_idle_timeout or deadline_exceeded; ok when none fired.
  ErrorCode timer = ErrorCode::ok;
  bool client_read =
      false;  // the client's read timeout, not ballast's own bound, set the timer (or curl's connect bound)
  int status = 0;                  // the upstream's HTTP status, 0 if none arrived
  bool reused_connection = false;  // sent on a kept-alive connection
  bool response_started = false;   // response bytes reached the client: nothing may be retried after
  bool client_gone = false;        // the client disconnected first
  bool shutting_down = false;      // ballast's drain ran out of grace with this attempt in flight
  bool truncated = false;          // body shorter than announced, or a stream ended before it was complete
  bool malformed = false;          // a 2xx body that is not valid JSON
  bool upstream_error = false;     // the upstream's own error event inside a stream
  bool oversized = false;          // more than ballast holds: an SSE line or a buffered answer over its limit
  int malformed_events = 0;        // stream events whose data was not JSON: dropped, not relayed
  std::string detail;              // the transport's own words (curl's error text), for the message
  PhaseTimings timings;
};

}  // namespace ballast
