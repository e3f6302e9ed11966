#include "config/load.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "policy/duration.hpp"
#include "policy/url.hpp"

namespace ballast::config {

std::string expand_env(std::string_view text, const GetEnv& getenv, std::vector<std::string>& missing) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("${", i);
    if (open == std::string_view::npos) break;
    size_t close = text.find('}', open);
    if (close == std::string_view::npos) break;
    out.append(text.substr(i, open - i));
    std::string_view inner = text.substr(open + 2, close - open - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (size_t d = inner.find(":-"); d != std::string_view::npos) {
      name = inner.substr(0, d);
      fallback = inner.substr(d + 2);
    }
    std::string key(name);
    const char* v = getenv(key.c_str());
    if (v && *v)
      out.append(v);
    else if (fallback)
      out.append(*fallback);
    else
      missing.push_back(key);
    i = close + 1;
  }
  out.append(text.substr(i));
  return out;
}

namespace {

// Walks the YAML tree, converting values and collecting every problem with its line and key.
class Reader {
 public:
  Reader(std::string file, const GetEnv& getenv) : file_(std::move(file)), getenv_(getenv) {}

  // Every problem, in the order of the file's lines.
  std::vector<std::string> errors() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& e : errors_) out.push_back(std::move(e.second));
    return out;
  }

  void error(const YAML::Node& at, std::string_view key, std::string_view what) {
    int line = at.IsDefined() ? at.Mark().line + 1 : 0;
    add_error(line, key, what);
  }
  void add_error(int line, std::string_view key, std::string_view what) {
    if (line > 0)
      errors_.emplace_back(line, fmt::format("{}:{}: {}: {}", file_, line, key, what));
    else
      errors_.emplace_back(0, fmt::format("{}: {}: {}", file_, key, what));
  }

  bool is_map(const YAML::Node& n, std::string_view key) {
    if (n.IsMap()) return true;
    error(n, key, "must be a mapping (key: value lines)");
    return false;
  }

  // Reports every key of `map` that is not in `allowed`.
  void only_keys(const YAML::Node& map, std::string_view path,
                 std::initializer_list<std::string_view> allowed) {
    for (const auto& kv : map) {
      auto name = kv.first.Scalar();
      bool known = false;
      for (auto a : allowed) known = known || a == name;
      if (known) continue;
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      error(kv.first, join(path, name), fmt::format("unknown key (expected one of: {})", list));
    }
  }

  std::optional<std::string> string(const YAML::Node& n, std::string_view key) {
    if (!n.IsScalar()) {
      error(n, key, "must be a single value");
      return std::nullopt;
    }
    std::vector<std::string> missing;
    std::string v = expand_env(n.Scalar(), getenv_, missing);
    for (const auto& name : missing) {
      error(
          n, key,
          fmt::format("environment variable {} is not set (use ${{{}:-default}} for a default)", name, name));
    }
    if (!missing.empty()) return std::nullopt;
    return v;
  }

  std::optional<Millis> duration(const YAML::Node& n, std::string_view key) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d || d->count() <= 0) {
      error(n, key, fmt::format("'{}' is not a positive duration (write e.g. 250ms, 5s, 2m)", *s));
      return std::nullopt;
    }
    return d;
  }

  std::optional<int64_t> integer(const YAML::Node& n, std::string_view key, int64_t min, int64_t max) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || v < min || v > max) {
      error(n, key, fmt::format("'{}' is not a whole number from {} to {}", *s, min, max));
      return std::nullopt;
    }
    return v;
  }

  std::optional<double> number(const YAML::Node& n, std::string_view key, double min, double max) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    double v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || !(v >= min && v <= max)) {
      error(n, key, fmt::format("'{}' is not a number from {} to {}", *s, min, max));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& n, std::string_view key) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "on" || *s == "yes") return true;
    if (*s == "false" || *s == "off" || *s == "no") return false;
    error(n, key, fmt::format("'{}' is not true or false", *s));
    return std::nullopt;
  }

  // "32MiB", "512KiB", "1000000" (bytes).
  std::optional<size_t> size(const YAML::Node& n, std::string_view key) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    size_t num_end = s->find_first_not_of("0123456789");
    uint64_t v = 0;
    std::from_chars(s->data(), s->data() + (num_end == std::string::npos ? s->size() : num_end), v);
    std::string unit = num_end == std::string::npos ? "" : s->substr(num_end);
    uint64_t mult = unit.empty() || unit == "B" ? 1
                    : unit == "KiB"             ? 1024
                    : unit == "MiB"             ? uint64_t{1024} * 1024
                    : unit == "GiB"             ? 1024ull * 1024 * 1024
                                                : 0;
    if (num_end == 0 || mult == 0 || v == 0) {
      error(n, key, fmt::format("'{}' is not a size (write e.g. 512KiB, 32MiB)", *s));
      return std::nullopt;
    }
    if (v > (uint64_t{1} << 50) / mult) {  // a petabyte: past any sane bound, and no overflow below it
      error(n, key, fmt::format("'{}' is too large", *s));
      return std::nullopt;
    }
    return static_cast<size_t>(v * mult);
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

  // map[key] into `slot` when the key is there; a bad value is reported and leaves `slot` alone.
  void set(const YAML::Node& map, const std::string& path, const char* key, Millis& slot) {
    if (map[key])
      if (auto v = duration(map[key], join(path, key))) slot = *v;
  }
  void set(const YAML::Node& map, const std::string& path, const char* key, std::optional<Millis>& slot) {
    if (map[key]) slot = duration(map[key], join(path, key));
  }
  void set(const YAML::Node& map, const std::string& path, const char* key, int& slot, int64_t min,
           int64_t max) {
    if (map[key])
      if (auto v = integer(map[key], join(path, key), min, max)) slot = static_cast<int>(*v);
  }
  void set(const YAML::Node& map, const std::string& path, const char* key, double& slot, double min,
           double max) {
    if (map[key])
      if (auto v = number(map[key], join(path, key), min, max)) slot = *v;
  }

 private:
  std::string file_;
  const GetEnv& getenv_;
  std::vector<std::pair<int, std::string>> errors_;
};

// `learn_patience`: the top-level timeouts only, which also take client_patience: learn | off.
void read_timeouts(Reader& r, const YAML::Node& n, const std::string& path, TimeoutOverrides& out,
                   bool* learn_patience = nullptr) {
  if (!r.is_map(n, path)) return;
  if (learn_patience) {
    r.only_keys(n, path,
                {"connect", "first_byte", "first_token", "stream_idle", "total", "queue", "client_patience"});
    if (n["client_patience"]) {
      if (auto v = r.string(n["client_patience"], "timeouts.client_patience")) {
        if (*v == "learn" || *v == "off")
          *learn_patience = *v == "learn";
        else
          r.error(n["client_patience"], "timeouts.client_patience",
                  fmt::format("'{}' is not learn or off", bounded_echo(*v)));
      }
    }
  } else {
    r.only_keys(n, path, {"connect", "first_byte", "first_token", "stream_idle", "total", "queue"});
  }
  for (auto [key, slot] :
       {std::pair{"connect", &out.connect}, std::pair{"first_byte", &out.first_byte},
        std::pair{"first_token", &out.first_token}, std::pair{"stream_idle", &out.stream_idle},
        std::pair{"total", &out.total}, std::pair{"queue", &out.queue}}) {
    r.set(n, path, key, *slot);
  }
}

void read_retries(Reader& r, const YAML::Node& n, const std::string& path, RetryPolicy& p) {
  if (!r.is_map(n, path)) return;
  r.only_keys(n, path,
              {"max_attempts", "base", "cap", "retry_after_cap", "max_same_wait", "budget_ratio",
               "budget_min_per_s"});
  r.set(n, path, "max_attempts", p.max_attempts, 1, 10);
  r.set(n, path, "base", p.base);
  r.set(n, path, "cap", p.cap);
  r.set(n, path, "retry_after_cap", p.retry_after_cap);
  r.set(n, path, "max_same_wait", p.max_same_wait);
  r.set(n, path, "budget_ratio", p.budget_ratio, 0, 10);
  r.set(n, path, "budget_min_per_s", p.budget_min_per_s, 0, 1e6);
}

void read_outlier(Reader& r, const YAML::Node& n, const std::string& path, OutlierPolicy& p) {
  if (!r.is_map(n, path)) return;
  r.only_keys(
      n, path,
      {"consecutive_failures", "min_requests", "window", "failure_rate", "base_ejection", "max_ejection"});
  r.set(n, path, "consecutive_failures", p.consecutive_failures, 1, 1000);
  r.set(n, path, "min_requests", p.min_requests, 1, 1000000);
  r.set(n, path, "window", p.window);
  if (n["window"] && p.window < Millis(10))
    r.error(n["window"], Reader::join(path, "window"), "must be at least 10ms");
  if (n["failure_rate"]) {
    // 50% or 0.5: operators write both.
    auto key = Reader::join(path, "failure_rate");
    if (auto text = r.string(n["failure_rate"], key)) {
      std::string t = *text;
      bool percent = !t.empty() && t.back() == '%';
      if (percent) t.pop_back();
      double v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (percent) v /= 100;
      if (ec != std::errc() || end != t.data() + t.size() || !(v > 0 && v <= 1))
        r.error(n["failure_rate"], key,
                fmt::format("'{}' is not a share above 0 and at most 1 (e.g. 0.5 or 50%)", *text));
      else
        p.failure_rate = v;
    }
  }
  r.set(n, path, "base_ejection", p.base_ejection);
  r.set(n, path, "max_ejection", p.max_ejection);
}

void read_health_check(Reader& r, const YAML::Node& n, const std::string& path, HealthCheck& h) {
  if (n.IsScalar()) {
    h.enabled = r.boolean(n, path);
    return;
  }
  if (!r.is_map(n, path)) return;
  r.only_keys(n, path, {"enabled", "path", "interval"});
  if (n["enabled"]) h.enabled = r.boolean(n["enabled"], Reader::join(path, "enabled"));
  if (n["path"]) {
    if (auto v = r.string(n["path"], Reader::join(path, "path"))) {
      if (v->empty() || v->front() != '/')
        r.error(n["path"], Reader::join(path, "path"), fmt::format("'{}' must start with /", *v));
      else
        h.path = *v;
    }
  }
  r.set(n, path, "interval", h.interval);
  if (!h.enabled && (n["path"] || n["interval"])) h.enabled = true;
}

void check_url(Reader& r, const YAML::Node& n, const std::string& key, const std::string& value) {
  std::string why;
  if (!parse_url(value, &why)) r.error(n, key, fmt::format("'{}' {}", redact_credentials(value), why));
}

// A value that ends up in a request or response header: CR, LF or NUL in it would let it write
// headers of its own. The value is not shown: it may be a key.
void check_header_value(Reader& r, const YAML::Node& n, const std::string& key, const std::string& value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    r.error(n, key, "must not contain a line break or a NUL character (the value is not shown)");
}

void read_redis(Reader& r, const YAML::Node& n, Config& c) {
  if (!r.is_map(n, "redis")) return;
  r.only_keys(n, "redis", {"url", "password", "prefix", "timeout", "lease_ttl", "replicas"});
  Redis redis;
  if (!n["url"]) {
    r.error(n, "redis.url", "is required (redis://HOST:PORT/DB)");
  } else if (auto url = r.string(n["url"], "redis.url")) {
    if (auto err = parse_redis_url(*url, redis); !err.empty()) r.error(n["url"], "redis.url", err);
  }
  if (n["password"]) {
    if (!redis.password.empty())
      r.error(n["password"], "redis.password", "is given twice: in redis.url and here (keep one)");
    if (auto v = r.string(n["password"], "redis.password")) redis.password = *v;
  }
  if (n["prefix"])
    if (auto v = r.string(n["prefix"], "redis.prefix")) redis.prefix = *v;
  r.set(n, "redis", "timeout", redis.timeout);
  if (redis.timeout > Millis(1000))
    r.error(n["timeout"], "redis.timeout",
            "must be at most 1s: a request waits up to this long for a Redis that stalls, before the local "
            "shares take over");
  r.set(n, "redis", "lease_ttl", redis.lease_ttl);
  if (redis.lease_ttl < Millis(1000))
    r.error(n["lease_ttl"], "redis.lease_ttl", "must be at least 1s (slots are renewed every third of it)");
  r.set(n, "redis", "replicas", redis.replicas, 1, 10000);
  c.redis = std::move(redis);
}

void read_endpoint(Reader& r, const YAML::Node& n, const std::string& path, Endpoint& ep) {
  if (!r.is_map(n, path)) return;
  ep.line = n.Mark().line + 1;
  r.only_keys(n, path, {"name",       "provider",    "model",   "base_url",     "endpoint",
                        "deployment", "api_version", "api_key", "proxy",        "ca_bundle",
                        "timeouts",   "sim",         "weight",  "priority",     "max_in_flight",
                        "queue",      "rpm",         "tpm",     "health_check", "shared"});
  auto str = [&](const char* key, std::string& slot) {
    if (!n[key]) return;
    if (auto v = r.string(n[key], Reader::join(path, key))) slot = *v;
  };
  std::string provider = "openai";
  str("provider", provider);
  if (provider == "openai")
    ep.provider = Provider::openai;
  else if (provider == "azure")
    ep.provider = Provider::azure;
  else if (provider == "sim")
    ep.provider = Provider::sim;
  else
    r.error(n["provider"], Reader::join(path, "provider"),
            fmt::format("'{}' is not one of openai, azure, sim", provider));
  str("name", ep.name);
  str("model", ep.model);
  if (n["model"] && ep.model.empty()) r.error(n["model"], Reader::join(path, "model"), "must not be empty");
  str("base_url", ep.base_url);
  str("endpoint", ep.endpoint);
  str("deployment", ep.deployment);
  str("api_version", ep.api_version);
  str("api_key", ep.api_key);
  str("proxy", ep.proxy);
  str("ca_bundle", ep.ca_bundle);
  if (!ep.ca_bundle.empty()) ep.ca_bundle_source = "ca_bundle";
  if (n["timeouts"]) read_timeouts(r, n["timeouts"], Reader::join(path, "timeouts"), ep.timeouts);
  auto key = [&](const char* k) { return Reader::join(path, k); };
  r.set(n, path, "weight", ep.weight, 0, 1e6);
  r.set(n, path, "priority", ep.priority, 0, 100);
  if (const auto& m = n["max_in_flight"]) {
    int v = 0;
    const std::string text = m.IsScalar() ? m.Scalar() : "";
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text == "auto")
      ep.admission.adaptive = true;
    else if (ec == std::errc() && end == text.data() + text.size() && v >= 1 && v <= 100000)
      ep.admission.max_in_flight = v;
    else
      r.error(m, key("max_in_flight"),
              fmt::format("'{}' is not a whole number from 1 to 100000, or auto", text));
  }
  r.set(n, path, "queue", ep.admission.queue_size, 0, 1000000);
  if (n["queue"] && !n["max_in_flight"])
    r.error(n["queue"], key("queue"), "only applies with max_in_flight: requests queue for its slots");
  r.set(n, path, "rpm", ep.rpm, 0, 1e9);
  r.set(n, path, "tpm", ep.tpm, 0, 1e12);
  if (n["shared"])
    if (auto v = r.boolean(n["shared"], key("shared"))) ep.shared = *v;
  if (n["health_check"]) read_health_check(r, n["health_check"], key("health_check"), ep.health_check);

  auto need = [&](const char* key, const std::string& value, const char* why) {
    if (value.empty()) r.error(n, Reader::join(path, key), why);
  };
  switch (ep.provider) {
    case Provider::openai:
      need("base_url", ep.base_url, "is required for provider openai (e.g. https://api.openai.com/v1)");
      break;
    case Provider::azure:
      if (ep.base_url.empty()) {
        need("endpoint", ep.endpoint,
             "is required for provider azure (https://RESOURCE.openai.azure.com), "
             "or give base_url for the /openai/v1 form");
        need("deployment", ep.deployment,
             "is required for provider azure: the deployment name in Azure AI Foundry");
        need("api_version", ep.api_version, "is required for provider azure (e.g. 2024-10-21)");
      }
      need("api_key", ep.api_key, "is required for provider azure (e.g. ${AZURE_OPENAI_API_KEY})");
      break;
    case Provider::sim:
      if (!ep.base_url.empty())
        r.error(n["base_url"], Reader::join(path, "base_url"),
                "is not used by provider sim (the simulator runs inside ballast)");
      break;
  }
  for (auto [k, value] :
       {std::pair{"api_key", &ep.api_key}, std::pair{"name", &ep.name}, std::pair{"model", &ep.model},
        std::pair{"proxy", &ep.proxy}, std::pair{"deployment", &ep.deployment}}) {
    if (n[k]) check_header_value(r, n[k], Reader::join(path, k), *value);
  }
  if (!ep.base_url.empty()) check_url(r, n["base_url"], Reader::join(path, "base_url"), ep.base_url);
  if (!ep.endpoint.empty()) check_url(r, n["endpoint"], Reader::join(path, "endpoint"), ep.endpoint);
  if (!ep.proxy.empty()) check_url(r, n["proxy"], Reader::join(path, "proxy"), ep.proxy);
  if (!ep.ca_bundle.empty() && !std::ifstream(ep.ca_bundle)) {
    r.error(n["ca_bundle"], Reader::join(path, "ca_bundle"), fmt::format("cannot read '{}'", ep.ca_bundle));
  }
  if (!ep.api_version.empty() &&
      ep.api_version.find_first_not_of("0123456789-abcdefghijklmnopqrstuvwxyz") != std::string::npos) {
    r.error(
        n["api_version"], Reader::join(path, "api_version"),
        fmt::format("'{}' is not an api-version (e.g. 2024-10-21 or 2025-01-01-preview)", ep.api_version));
  }
  if (const auto& s = n["sim"]) {
    std::string sp = Reader::join(path, "sim");
    if (ep.provider != Provider::sim) r.error(s, sp, "is only for provider sim");
    if (r.is_map(s, sp)) {
      r.only_keys(s, sp, {"ttft", "itl", "tokens"});
      r.set(s, sp, "ttft", ep.sim.ttft);
      r.set(s, sp, "itl", ep.sim.itl);
      r.set(s, sp, "tokens", ep.sim.tokens, 1, 100000);
    }
  }
  if (ep.name.empty()) {
    if (ep.provider == Provider::sim)
      ep.name = "sim";
    else if (auto u = parse_url(ep.base_url.empty() ? ep.endpoint : ep.base_url))
      ep.name = u->host_port();
  }
}

// `m.retries` arrives holding the global policy; the model's own block overrides it key by key.
void read_model(Reader& r, const YAML::Node& n, const std::string& path, Model& m) {
  if (!r.is_map(n, path)) return;
  r.only_keys(n, path, {"name", "endpoints", "timeouts", "retries", "fallback_on"});
  if (n["retries"]) read_retries(r, n["retries"], Reader::join(path, "retries"), m.retries);
  if (!n["name"])
    r.error(n, Reader::join(path, "name"), "is required: the model name clients send");
  else if (auto v = r.string(n["name"], Reader::join(path, "name")))
    m.name = *v;
  if (n["name"] && m.name.empty()) r.error(n["name"], Reader::join(path, "name"), "must not be empty");
  if (n["timeouts"]) read_timeouts(r, n["timeouts"], Reader::join(path, "timeouts"), m.timeouts);
  if (const auto& f = n["fallback_on"]) {
    const std::string key = Reader::join(path, "fallback_on");
    if (!f.IsSequence()) {
      r.error(f, key, "must be a list of upstream error codes, e.g. [context_length_exceeded]");
    } else {
      for (size_t i = 0; i < f.size(); ++i) {
        auto code = r.string(f[i], fmt::format("{}[{}]", key, i));
        if (code && code->empty()) r.error(f[i], fmt::format("{}[{}]", key, i), "must not be empty");
        if (code && !code->empty()) m.fallback_on.push_back(*code);
      }
    }
  }
  const auto& eps = n["endpoints"];
  if (!eps || !eps.IsSequence() || eps.size() == 0) {
    r.error(eps ? eps : n, Reader::join(path, "endpoints"), "must list at least one endpoint");
    return;
  }
  for (size_t i = 0; i < eps.size(); ++i) {
    Endpoint ep;
    read_endpoint(r, eps[i], fmt::format("{}.endpoints[{}]", path, i), ep);
    m.endpoints.push_back(std::move(ep));
  }
  if (!m.fallback_on.empty()) {
    // fallback_on sends to the next tier: without one it would silently do nothing.
    int lowest = m.endpoints.front().priority;
    bool next_tier = false;
    for (const auto& ep : m.endpoints) lowest = std::min(lowest, ep.priority);
    for (const auto& ep : m.endpoints) next_tier = next_tier || ep.priority > lowest;
    if (!next_tier)
      r.error(n["fallback_on"], Reader::join(path, "fallback_on"),
              "sends a request to the next tier, but every endpoint of this model has the same priority: "
              "give the fallback endpoint a higher priority (e.g. priority: 1)");
  }
}

bool valid_listen(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  int port = -1;
  auto p = s.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  return ec == std::errc() && end == p.data() + p.size() && port >= 0 && port <= 65535;
}

}  // namespace

LoadResult load_yaml(std::string_view text, const std::string& name, const GetEnv& getenv) {
  LoadResult out;
  out.config.source = name;
  Reader r(name, getenv);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    out.errors.push_back(fmt::format("{}:{}: YAML syntax: {}", name, e.mark.line + 1, e.msg));
    return out;
  }
  if (!root.IsMap()) {
    out.errors.push_back(fmt::format("{}: the file must be a mapping with at least 'models:'", name));
    return out;
  }
  Config& c = out.config;
  r.only_keys(root, "",
              {"listen", "admin_listen", "workers", "models", "timeouts", "retries", "outlier", "keys",
               "limits", "shutdown_grace", "log", "redis"});
  r.set(root, "", "workers", c.workers, 0, 256);
  // HOST:PORT keys: `listen` and `admin_listen`.
  for (auto [key, out] : {std::pair{"listen", &c.listen}, std::pair{"admin_listen", &c.admin_listen}}) {
    if (!root[key]) continue;
    if (auto v = r.string(root[key], key)) {
      if (valid_listen(*v))
        *out = *v;
      else
        r.error(root[key], key, fmt::format("'{}' is not HOST:PORT", *v));
    }
  }
  if (root["timeouts"]) {
    TimeoutOverrides t;
    read_timeouts(r, root["timeouts"], "timeouts", t, &c.learn_patience);
    Model none;
    Endpoint nothing;
    none.timeouts = t;
    c.timeouts = effective_bounds(c, none, nothing);
    if (t.queue) c.queue_timeout = *t.queue;
  }
  if (root["retries"]) read_retries(r, root["retries"], "retries", c.retries);
  if (root["outlier"]) read_outlier(r, root["outlier"], "outlier", c.outlier);
  if (const auto& limits = root["limits"]) {
    if (r.is_map(limits, "limits")) {
      r.only_keys(limits, "limits",
                  {"max_request_body", "max_sse_line", "max_connections", "max_buffered_bytes"});
      if (limits["max_connections"]) {
        if (auto v = r.integer(limits["max_connections"], "limits.max_connections", 1, 1'000'000))
          c.max_connections = *v;
      }
      if (limits["max_buffered_bytes"]) {
        if (auto v = r.size(limits["max_buffered_bytes"], "limits.max_buffered_bytes"))
          c.max_buffered_bytes = *v;
      }
      if (limits["max_sse_line"]) {
        if (auto v = r.size(limits["max_sse_line"], "limits.max_sse_line")) c.max_sse_line = *v;
      }
      if (limits["max_request_body"]) {
        if (auto v = r.size(limits["max_request_body"], "limits.max_request_body")) c.max_request_bytes = *v;
      }
    }
  }
  r.set(root, "", "shutdown_grace", c.shutdown_grace);
  if (const auto& redis = root["redis"]) read_redis(r, redis, c);
  if (const auto& log = root["log"]) {
    if (r.is_map(log, "log")) {
      r.only_keys(log, "log", {"access", "level"});
      if (log["access"])
        if (auto v = r.string(log["access"], "log.access")) c.access_log = *v;
      if (log["level"]) {
        if (auto v = r.string(log["level"], "log.level")) {
          static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
          if (levels.count(*v))
            c.log_level = *v;
          else
            r.error(log["level"], "log.level",
                    fmt::format("'{}' is not one of trace, debug, info, warn, error, off", *v));
        }
      }
    }
  }
  const auto& models = root["models"];
  if (!models || !models.IsSequence() || models.size() == 0) {
    r.error(models ? models : root, "models", "must list at least one model");
  } else {
    std::set<std::string> seen;
    for (size_t i = 0; i < models.size(); ++i) {
      Model m;
      m.retries = c.retries;
      std::string path = fmt::format("models[{}]", i);
      read_model(r, models[i], path, m);
      if (!m.name.empty() && !seen.insert(m.name).second) {
        r.error(models[i]["name"], path + ".name", fmt::format("model '{}' is declared twice", m.name));
      }
      c.models.push_back(std::move(m));
    }
  }
  if (const auto& keys = root["keys"]) {
    if (!keys.IsSequence()) {
      r.error(keys, "keys", "must be a list of {key, models}");
    } else {
      for (size_t i = 0; i < keys.size(); ++i) {
        std::string path = fmt::format("keys[{}]", i);
        const auto& k = keys[i];
        if (!r.is_map(k, path)) continue;
        r.only_keys(k, path, {"key", "models", "rpm", "tpm"});
        ClientKey ck;
        if (!k["key"])
          r.error(k, path + ".key", "is required");
        else if (auto v = r.string(k["key"], path + ".key"))
          ck.key = *v;
        if (k["key"] && ck.key.empty()) r.error(k["key"], path + ".key", "must not be empty");
        r.set(k, path, "rpm", ck.rpm, 0, 1e9);
        r.set(k, path, "tpm", ck.tpm, 0, 1e12);
        if (const auto& ms = k["models"]) {
          if (!ms.IsSequence()) {
            r.error(ms, path + ".models", "must be a list of model names");
          } else {
            for (size_t j = 0; j < ms.size(); ++j) {
              auto name = r.string(ms[j], fmt::format("{}.models[{}]", path, j));
              if (!name) continue;
              bool configured = *name == "*" || std::any_of(c.models.begin(), c.models.end(),
                                                            [&](const Model& m) { return m.name == *name; });
              if (!configured) {
                r.error(ms[j], fmt::format("{}.models[{}]", path, j),
                        fmt::format("no model '{}' is configured", *name));
              }
              ck.models.push_back(*name);
            }
          }
        }
        c.keys.push_back(std::move(ck));
      }
    }
  }
  out.errors = r.errors();
  return out;
}

LoadResult load_file(const std::string& path, const GetEnv& getenv) {
  std::ifstream in(path);
  if (!in) {
    LoadResult out;
    out.errors.push_back(fmt::format("{}: cannot read the config file", path));
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_yaml(ss.str(), path, getenv);
}

namespace {

bool readable_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && std::ifstream(path).good();
}

}  // namespace

CaBundleChoice choose_ca_bundle(std::string_view configured, const GetEnv& getenv) {
  if (!configured.empty()) return {std::string(configured), "ca_bundle"};
  for (const char* name : kCaBundleVariables) {
    const char* v = getenv(name);
    if (v && *v) return {v, name};
  }
  return {};
}

std::string apply_ca_environment(Endpoint& ep, const GetEnv& getenv) {
  if (ep.provider == Provider::sim || !ep.ca_bundle.empty()) return "";
  auto url = parse_url(ep.base_url.empty() ? ep.endpoint : ep.base_url);
  if (!url || url->scheme != "https") return "";
  CaBundleChoice choice = choose_ca_bundle("", getenv);
  if (choice.path.empty()) return "";
  ep.ca_bundle = choice.path;
  ep.ca_bundle_source = choice.source;
  if (readable_file(choice.path)) return "";
  return fmt::format(
      "{} names '{}', which is not a readable file: it is the CA bundle for https endpoints without a "
      "ca_bundle: of their own; point it at a PEM file of the CA certificates to trust, or unset it",
      choice.source, choice.path);
}

void apply_ca_environment(LoadResult& result, const GetEnv& getenv) {
  std::set<std::string> reported;
  for (auto& m : result.config.models) {
    for (auto& ep : m.endpoints) {
      std::string problem = apply_ca_environment(ep, getenv);
      if (!problem.empty() && reported.insert(ep.ca_bundle_source).second)
        result.errors.push_back(fmt::format("{}: {}", result.config.source, problem));
    }
  }
}

Config builtin_sim() {
  Config c;
  Model m;
  m.name = "sim";
  Endpoint ep;
  ep.provider = Provider::sim;
  ep.name = "sim";
  m.endpoints.push_back(ep);
  c.models.push_back(std::move(m));
  return c;
}

EnvironmentResult from_environment(const GetEnv& getenv) {
  auto var = [&](const char* name) -> std::string {
    const char* v = getenv(name);
    return v ? v : "";
  };
  EnvironmentResult er;
  LoadResult& out = er.result;
  Config& c = out.config;
  Model m;
  m.name = "*";
  Endpoint ep;
  std::string azure_endpoint = var("AZURE_OPENAI_ENDPOINT");
  if (!azure_endpoint.empty()) {
    er.found = true;
    c.source = "environment (AZURE_OPENAI_*)";
    ep.provider = Provider::azure;
    ep.endpoint = azure_endpoint;
    ep.api_key = var("AZURE_OPENAI_API_KEY");
    ep.api_version = var("OPENAI_API_VERSION");
    ep.deployment = var("AZURE_OPENAI_DEPLOYMENT");
    for (auto [value, name] :
         {std::pair{ep.api_key, "AZURE_OPENAI_API_KEY"}, std::pair{ep.api_version, "OPENAI_API_VERSION"},
          std::pair{ep.deployment, "AZURE_OPENAI_DEPLOYMENT"}}) {
      if (value.empty())
        out.errors.push_back(fmt::format("environment: {} is not set (AZURE_OPENAI_ENDPOINT is)", name));
    }
    std::string why;
    if (!parse_url(ep.endpoint, &why))
      out.errors.push_back(fmt::format("environment: AZURE_OPENAI_ENDPOINT '{}' {}", ep.endpoint, why));
  } else if (!var("OPENAI_API_KEY").empty() || !var("OPENAI_BASE_URL").empty()) {
    er.found = true;
    c.source = "environment (OPENAI_*)";
    ep.provider = Provider::openai;
    ep.api_key = var("OPENAI_API_KEY");
    ep.base_url = var("OPENAI_BASE_URL");
    if (ep.base_url.empty()) ep.base_url = "https://api.openai.com/v1";
    std::string why;
    if (!parse_url(ep.base_url, &why))
      out.errors.push_back(fmt::format("environment: OPENAI_BASE_URL '{}' {}", ep.base_url, why));
  } else {
    return er;
  }
  for (auto [value, name] :
       {std::pair{ep.api_key, "the API key variable"}, std::pair{ep.deployment, "AZURE_OPENAI_DEPLOYMENT"}}) {
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      out.errors.push_back(fmt::format(
          "environment: {} must not contain a line break or a NUL character (the value is not shown)", name));
  }
  if (auto u = parse_url(ep.base_url.empty() ? ep.endpoint : ep.base_url)) ep.name = u->host_port();
  m.endpoints.push_back(ep);
  c.models.push_back(std::move(m));
  return er;
}

}  // namespace ballast::config
