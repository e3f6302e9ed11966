#include "policy/failure_message.hpp"

#include <fmt/format.h>

#include "policy/duration.hpp"
#include "policy/url.hpp"

namespace ballast {

namespace {

// The endpoint as messages name it: its host:port (the default name), or its configured name with
// its host:port beside it.
std::string endpoint_text(const FailureContext& c) {
  auto u = c.url.empty() ? std::nullopt : parse_url(c.url);
  if (!u) return std::string(c.endpoint);
  std::string address = u->host_port();
  if (c.endpoint.empty() || c.endpoint == address) return address;
  return fmt::format("{} ({})", c.endpoint, address);
}

std::string bound_text(Millis bound, std::string_view key) {
  return fmt::format("{} (timeouts.{})", format_duration(bound), key);
}

std::string deadline_text(const FailureContext& c) {
  if (!c.deadline) return "the deadline";
  auto ms = std::chrono::duration_cast<Millis>(c.deadline->budget);
  if (c.deadline->from_client) {
    ms = std::chrono::duration_cast<Millis>(c.deadline->client_timeout);
    return fmt::format("the client's own deadline of {} (x-stainless-timeout or x-ballast-timeout)",
                       format_duration(ms));
  }
  return fmt::format("the total bound of {}", bound_text(ms, "total"));
}

// The client's read timeout, which ended the attempt in place of one of ballast's own bounds.
std::string read_timeout_text(const FailureContext& c) {
  if (!c.deadline) return "the client's read timeout";
  auto read = std::chrono::duration_cast<Millis>(c.deadline->patience);
  return fmt::format(
      "the client's read timeout of {} (x-stainless-read-timeout; answered {} early, so "
      "that the client reads this)",
      format_duration(read),
      format_duration(std::chrono::duration_cast<Millis>(c.deadline->patience - c.deadline->read_gap)));
}

std::string describe_read_cut(ErrorCode code, const Outcome& o, const FailureContext& c) {
  const std::string endpoint = endpoint_text(c);
  std::string timings = describe_timings(o.timings);
  switch (code) {
    case ErrorCode::connect_timeout:
      return fmt::format(
          "connect to {} got no answer before {}: is the host reachable (firewall, VPN, security group), "
          "and is the address right?",
          endpoint, read_timeout_text(c));
    case ErrorCode::first_token_timeout:
      return fmt::format(
          "upstream {} streamed no token before {} ({}): the model is queueing or slow to start; raise the "
          "client's timeout, or lower the load on the upstream.",
          endpoint, read_timeout_text(c), timings);
    case ErrorCode::stream_idle_timeout:
      return fmt::format(
          "upstream {} went silent mid-response for longer than {} ({}): the stream stalled; the response "
          "is incomplete.",
          endpoint, read_timeout_text(c), timings);
    default:
      return fmt::format(
          "upstream {} had not answered before {} ({}): it is overloaded or slow for this request; raise "
          "the client's timeout, or lower the load on the upstream.",
          endpoint, read_timeout_text(c), timings);
  }
}

}  // namespace

std::string describe_timings(const PhaseTimings& t) {
  std::string out;
  auto add = [&](std::string_view name, const std::optional<double>& v) {
    if (!v) return;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {:.1f}ms", name, *v);
  };
  add("dns", t.dns_ms);
  add("connect", t.connect_ms);
  add("tls", t.tls_ms);
  add("first byte", t.first_byte_ms);
  add("first token", t.first_token_ms);
  if (!out.empty()) out += ", ";
  out += fmt::format("total {:.1f}ms", t.total_ms);
  return out;
}

void scrub_secret(std::string& text, std::string_view secret) {
  if (secret.size() < 4) return;  // too short to be a key; replacing it would garble the text
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
}

std::string describe_failure(ErrorCode code, const Outcome& o, const FailureContext& c) {
  const PhaseBounds defaults;
  const PhaseBounds& b = c.bounds ? *c.bounds : defaults;
  const std::string endpoint = endpoint_text(c);
  std::string timings = describe_timings(o.timings);
  std::string container_hint;
  if (c.in_container && is_loopback_host(c.host)) {
    container_hint =
        " (ballast runs in a container: if the model server runs on the host or in another container, "
        "localhost here is this container itself; use host.docker.internal or the server's service name.)";
  }
  // The client's read timeout cut the attempt (ballast's timer, or curl's connect bound set by it).
  if (o.client_read && (o.timer == code || o.timer == ErrorCode::ok)) return describe_read_cut(code, o, c);
  switch (code) {
    case ErrorCode::dns_failure:
      return fmt::format(
          "upstream {}: DNS lookup of '{}' failed ({}): is the host name in base_url/endpoint "
          "right, and can this machine resolve it?",
          endpoint, c.host, o.detail.empty() ? "no address" : o.detail);
    case ErrorCode::proxy_failure:
      return fmt::format(
          "proxy {} (from {}) failed on the way to {}: {} — check the proxy address, or add "
          "'{}' to NO_PROXY if it should be reached directly.",
          redact_credentials(c.proxy), c.proxy_source, endpoint, o.detail.empty() ? "no answer" : o.detail,
          c.host);
    case ErrorCode::connect_refused:
      return fmt::format(
          "connect to {} refused (nothing listening) after {}: is the model server running, "
          "and is the port right?{}",
          endpoint, timings, container_hint);
    case ErrorCode::connect_timeout:
      return fmt::format(
          "connect to {} got no answer within {}: is the host reachable (firewall, VPN, "
          "security group), and is the address right?{}",
          endpoint, bound_text(b.connect, "connect"), container_hint);
    case ErrorCode::tls_failure:
      return fmt::format(
          "TLS with {} failed: {} — if the endpoint speaks plain HTTP use http:// in its URL; "
          "if it uses a private CA, set the endpoint's ca_bundle (or, for every endpoint without one, "
          "SSL_CERT_FILE, CURL_CA_BUNDLE or REQUESTS_CA_BUNDLE).",
          endpoint, o.detail.empty() ? "handshake failed" : o.detail);
    case ErrorCode::first_byte_timeout:
      return fmt::format(
          "upstream {} sent no response headers within {} ({}): it is overloaded or stuck; "
          "lower the load on it, or raise timeouts.first_byte if it is just slow.",
          endpoint, bound_text(b.first_byte, "first_byte"), timings);
    case ErrorCode::first_token_timeout:
      return fmt::format(
          "upstream {} streamed no token within {} ({}): the model is queueing or slow to "
          "start; lower the load on it, or raise timeouts.first_token.",
          endpoint, bound_text(b.first_token, "first_token"), timings);
    case ErrorCode::stream_idle_timeout:
      return fmt::format(
          "upstream {} went silent mid-response for {} ({}): the stream stalled; the "
          "response is incomplete.",
          endpoint, bound_text(b.stream_idle, "stream_idle"), timings);
    case ErrorCode::deadline_exceeded:
      return fmt::format("upstream {} did not finish within {} ({}).", endpoint, deadline_text(c), timings);
    case ErrorCode::upstream_reset:
      if (o.oversized) {
        return fmt::format(
            "upstream {} sent {} ({}): not retried, the same request would get the same answer.", endpoint,
            o.detail, timings);
      }
      if (o.malformed) {
        return fmt::format(
            "upstream {} answered 2xx with a body that is not the API's (not JSON) ({}): the model server "
            "or a proxy in front of it sent something other than an API response.",
            endpoint, timings);
      }
      if (o.truncated && o.status >= 200 && o.status < 300) {
        return fmt::format(
            "upstream {} ended the response before it was complete ({}){}: the response is "
            "incomplete; the model server may have crashed or restarted.",
            endpoint, timings, o.detail.empty() ? "" : ": " + o.detail);
      }
      return fmt::format(
          "upstream {} closed the connection before answering ({}){}: the model server may "
          "have crashed, restarted, or an idle connection was cut by a load balancer.",
          endpoint, timings, o.detail.empty() ? "" : ": " + o.detail);
    case ErrorCode::upstream_error:
      return fmt::format(
          "upstream {} reported an error inside its stream ({}){}: the response is incomplete.", endpoint,
          timings, o.detail.empty() ? "" : ": " + o.detail);
    case ErrorCode::upstream_status:
      return fmt::format("upstream {} answered {}.", endpoint, o.status);
    case ErrorCode::shutting_down:
      return fmt::format(
          "ballast is shutting down and its shutdown_grace ran out while this request to {} was in flight "
          "({}): retry it, on another replica if there is one.",
          endpoint, timings);
    case ErrorCode::client_disconnected:
      return fmt::format("the client disconnected after {}; the upstream request to {} was cancelled.",
                         timings, endpoint);
    default:
      return fmt::format("upstream {}: {}", endpoint, code_name(code));
  }
}

}  // namespace ballast
