// The error taxonomy: one code per way a request can fail, shared by error bodies, log lines,
// metrics and doctor. This file owns each code's name, HTTP status and OpenAI error type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ballast {

enum class ErrorCode : uint8_t {
  ok,
  invalid_request,
  unauthorized,
  unknown_model,
  payload_too_large,
  rate_limited,
  queue_full,
  queue_timeout,
  deadline_exceeded,
  dns_failure,
  proxy_failure,
  connect_refused,
  connect_timeout,
  tls_failure,
  first_byte_timeout,
  first_token_timeout,
  stream_idle_timeout,
  upstream_reset,
  upstream_error,  // the upstream's own error event inside a stream
  upstream_status,
  all_endpoints_down,
  shutting_down,  // the drain's grace period ran out with the request in flight
  client_disconnected,
};

std::string_view code_name(ErrorCode code);
// The status ballast answers with. upstream_status has none of its own: the upstream's is passed through.
int http_status(ErrorCode code);
// The OpenAI-shape "type" field: what the SDKs show next to the message.
std::string_view error_type(ErrorCode code);

// {"error":{"message":"CODE: …","type":…,"code":"CODE","param":null}}. The message leads with the code:
// the SDKs' exception text (openai-python's "Error code: 504 - MESSAGE") carries the message alone.
std::string error_body(ErrorCode code, std::string_view message);
// The SSE event that ends a stream which failed after it began: the OpenAI SDKs raise it as an APIError.
std::string sse_error_event(ErrorCode code, std::string_view message);

}  // namespace ballast
