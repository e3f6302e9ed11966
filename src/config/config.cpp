#include "config/config.hpp"

#include <charconv>

#include <fmt/format.h>

namespace ballast::config {

std::string_view provider_name(Provider p) {
  switch (p) {
    case Provider::openai:
      return "openai";
    case Provider::azure:
      return "azure";
    case Provider::sim:
      return "sim";
  }
  return "openai";
}

namespace {

// "p%40ss" → "p@ss"; nothing when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;  // unsigned: from_chars then takes no sign
    if (i + 2 >= s.size()) return std::nullopt;
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

}  // namespace

std::string parse_redis_url(std::string_view url, Redis& out) {
  constexpr std::string_view kScheme = "redis://";
  if (url.starts_with("rediss://"))
    return "rediss:// (TLS) is not supported: use redis:// on a private network, or a TLS tunnel such as "
           "stunnel";
  if (!url.starts_with(kScheme)) return "must start with redis:// (redis://HOST:PORT/DB)";
  std::string_view rest = url.substr(kScheme.size());
  std::string shown(kScheme);
  // [[USER]:PASSWORD@]: only the password is used (Redis 6 ACL users are not).
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    // user@ and user:password@ name a user (Redis 6 ACLs), which is not supported.
    if (auth.empty() || auth.front() != ':')
      return "a user name in the URL is not supported: write redis://:PASSWORD@HOST, or password:";
    auto password = percent_decode(auth.substr(1));
    if (!password) return "has a password with a broken %-escape (write %40 for @, %25 for %)";
    out.password = std::move(*password);
    rest = rest.substr(at + 1);
  }
  std::string_view hostport = rest.substr(0, rest.find('/'));
  std::string_view path = rest.substr(hostport.size());
  std::string_view host = hostport;
  std::string_view port;
  if (hostport.starts_with('[')) {  // [::1]:6379
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return "has an unclosed '[' in its host";
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has something after its [IPv6] host that is not :PORT";
      port = after.substr(1);
    }
  } else if (size_t colon = hostport.find(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.find(':') != std::string_view::npos)
      return "has more than one ':' after its host (an IPv6 address goes in brackets: redis://[::1]:6379)";
  }
  if (host.empty()) return "has no host (redis://HOST:PORT/DB)";
  out.host = std::string(host);
  out.port = 6379;
  if (!port.empty()) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535)
      return fmt::format("has port '{}', not a number from 1 to 65535", port);
    out.port = p;
  }
  out.db = 0;
  if (path.size() > 1) {
    std::string_view db = path.substr(1);
    int d = 0;
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), d);
    if (ec != std::errc() || end != db.data() + db.size() || d < 0 || d > 1'000'000)
      return fmt::format("has database '{}', not a whole number", db);
    out.db = d;
  }
  const bool v6 = out.host.find(':') != std::string::npos;
  shown += fmt::format("{}{}{}:{}/{}", v6 ? "[" : "", out.host, v6 ? "]" : "", out.port, out.db);
  out.url = std::move(shown);
  return "";
}

const Model* Config::find_model(std::string_view name) const {
  const Model* wildcard = nullptr;
  for (const auto& m : models) {
    if (m.name == name) return &m;
    if (m.name == "*" && !wildcard) wildcard = &m;
  }
  return wildcard;
}

PhaseBounds effective_bounds(const Config& config, const Model& model, const Endpoint& endpoint) {
  PhaseBounds b = config.timeouts;
  auto apply = [&b](const TimeoutOverrides& o) {
    if (o.connect) b.connect = *o.connect;
    if (o.first_byte) b.first_byte = *o.first_byte;
    if (o.first_token) b.first_token = *o.first_token;
    if (o.stream_idle) b.stream_idle = *o.stream_idle;
    if (o.total) b.total = *o.total;
  };
  apply(model.timeouts);
  apply(endpoint.timeouts);
  return b;
}

Millis effective_queue_timeout(const Config& config, const Model& model, const Endpoint& endpoint) {
  if (endpoint.timeouts.queue) return *endpoint.timeouts.queue;
  if (model.timeouts.queue) return *model.timeouts.queue;
  return config.queue_timeout;
}

}  // namespace ballast::config
