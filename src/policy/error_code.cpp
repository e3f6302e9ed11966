#include "policy/error_code.hpp"

#include <fmt/format.h>

#include "common/json_writer.hpp"

namespace ballast {

std::string_view code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::invalid_request:
      return "invalid_request";
    case ErrorCode::unauthorized:
      return "unauthorized";
    case ErrorCode::unknown_model:
      return "unknown_model";
    case ErrorCode::payload_too_large:
      return "payload_too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::queue_full:
      return "queue_full";
    case ErrorCode::queue_timeout:
      return "queue_timeout";
    case ErrorCode::deadline_exceeded:
      return "deadline_exceeded";
    case ErrorCode::dns_failure:
      return "dns_failure";
    case ErrorCode::proxy_failure:
      return "proxy_failure";
    case ErrorCode::connect_refused:
      return "connect_refused";
    case ErrorCode::connect_timeout:
      return "connect_timeout";
    case ErrorCode::tls_failure:
      return "tls_failure";
    case ErrorCode::first_byte_timeout:
      return "first_byte_timeout";
    case ErrorCode::first_token_timeout:
      return "first_token_timeout";
    case ErrorCode::stream_idle_timeout:
      return "stream_idle_timeout";
    case ErrorCode::upstream_reset:
      return "upstream_reset";
    case ErrorCode::upstream_error:
      return "upstream_error";
    case ErrorCode::upstream_status:
      return "upstream_status";
    case ErrorCode::all_endpoints_down:
      return "all_endpoints_down";
    case ErrorCode::shutting_down:
      return "shutting_down";
    case ErrorCode::client_disconnected:
      return "client_disconnected";
  }
  return "unknown";
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return 200;
    case ErrorCode::invalid_request:
      return 400;
    case ErrorCode::unauthorized:
      return 401;
    case ErrorCode::unknown_model:
      return 404;
    case ErrorCode::payload_too_large:
      return 413;
    case ErrorCode::rate_limited:
      return 429;
    case ErrorCode::queue_full:
    case ErrorCode::queue_timeout:
    case ErrorCode::all_endpoints_down:
    case ErrorCode::shutting_down:
      return 503;
    case ErrorCode::deadline_exceeded:
    case ErrorCode::connect_timeout:
    case ErrorCode::first_byte_timeout:
    case ErrorCode::first_token_timeout:
    case ErrorCode::stream_idle_timeout:
      return 504;
    case ErrorCode::dns_failure:
    case ErrorCode::proxy_failure:
    case ErrorCode::connect_refused:
    case ErrorCode::tls_failure:
    case ErrorCode::upstream_reset:
    case ErrorCode::upstream_error:
    case ErrorCode::upstream_status:
      return 502;
    // Logged only: nobody is left to answer. 499 is the status proxies log for it.
    case ErrorCode::client_disconnected:
      return 499;
  }
  return 500;
}

std::string_view error_type(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_request:
    case ErrorCode::unknown_model:
    case ErrorCode::payload_too_large:
      return "invalid_request_error";
    case ErrorCode::unauthorized:
      return "authentication_error";
    case ErrorCode::rate_limited:
      return "rate_limit_error";
    case ErrorCode::queue_full:
    case ErrorCode::queue_timeout:
    case ErrorCode::shutting_down:
      return "overloaded_error";
    case ErrorCode::deadline_exceeded:
    case ErrorCode::connect_timeout:
    case ErrorCode::first_byte_timeout:
    case ErrorCode::first_token_timeout:
    case ErrorCode::stream_idle_timeout:
      return "timeout_error";
    default:
      return "upstream_error";
  }
}

std::string error_body(ErrorCode code, std::string_view message) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  w.field("message", fmt::format("{}: {}", code_name(code), message));
  w.field("type", error_type(code)).field("code", code_name(code));
  w.key("param").null();
  w.end_object().end_object();
  return w.take();
}

std::string sse_error_event(ErrorCode code, std::string_view message) {
  return "event: error\ndata: " + error_body(code, message) + "\n\n";
}

}  // namespace ballast
