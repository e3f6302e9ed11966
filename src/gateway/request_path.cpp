// A request's whole journey through the gateway, top to bottom:
//   admit → route → plan the deadline → attempt loop (pick an endpoint, wait for a slot, send,
//   classify, report, decide) → relay → log.
// Policies are called from here; mechanism lives in downstream/ and upstream/.
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <climits>
#include <initializer_list>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "gateway/shared_limits.hpp"
#include "observability/endpoint_status.hpp"

#include "gateway/gateway.hpp"
#include "policy/classify.hpp"
#include "policy/deadline.hpp"
#include "policy/duration.hpp"
#include "policy/endpoint_pool.hpp"
#include "policy/failure_message.hpp"
#include "policy/header_filter.hpp"
#include "policy/json_members.hpp"
#include "policy/request_fields.hpp"
#include "policy/retry.hpp"
#include "policy/sse_scanner.hpp"
#include "policy/upstream_target.hpp"
#include "policy/url.hpp"

namespace ballast {

namespace asio = boost::asio;

// One request as it passes through: what was asked, the deadline, the log record being filled.
struct Exchange {
  Request& req;
  Downstream& down;
  // The configuration this request started under, kept until it ends (a reload does not change it).
  std::shared_ptr<Generation> generation;
  const config::Config& cfg;
  Upstreams& upstreams;
  std::string id;
  RequestDeadline deadline;
  AccessRecord record;
  int key = -1;                                // the client key's index under keys:, if keys are configured
  std::string fair_key;                        // whose turn it is in endpoint queues: the client key
  double tokens = 0;                           // estimated for tpm limits until usage says
  bool key_charged = false;                    // `tokens` were charged to the client key's limits
  const std::string* metric_labels = nullptr;  // model and endpoint, once an endpoint is picked
  const config::Endpoint* endpoint = nullptr;  // the last attempt's, once one is picked
  Millis queue_cap{30'000};         // the longest Retry-After a refusal may promise: timeouts.queue in force
  std::string_view upstream_model;  // the model that endpoint's upstream was asked for
  // Who this request teaches about patience (keys[N], else the client's address): empty when it
  // teaches nothing (its client sent a deadline, or client_patience is off).
  std::string patience_client;
  std::optional<TimePoint> answered;   // when the first byte of the answer went to the client
  std::optional<TimePoint> left;       // when its client was seen to leave during an attempt
  std::optional<Duration> queue_wait;  // a shorter wait for a slot than timeouts.queue (kUnknownPatienceWait)

  // Ours, on every answer: the request id and, once an endpoint was picked, which one and the
  // model it was asked for.
  void add_own(Headers& headers) const {
    headers.emplace_back("x-ballast-request-id", id);
    if (endpoint) {
      headers.emplace_back("x-ballast-endpoint", endpoint->name);
      headers.emplace_back("x-ballast-model", std::string(upstream_model));
    }
  }
  Headers headers(std::string_view content_type = "application/json") const {
    Headers h{{"content-type", std::string(content_type)}};
    add_own(h);
    return h;
  }
};

// What one attempt left behind. A response that was not sent yet (an upstream error status) is
// kept here so the attempt loop can still choose between answering with it and trying again.
struct AttemptResult {
  Outcome outcome;
  Verdict verdict;  // what the outcome means, decided once by classify()
  AttemptRecord record;
  Headers headers;
  std::string body;
  std::string message;   // the failure described, when there is one
  bool deliver = false;  // a whole successful answer, in headers and body, still to be sent
};

namespace {

struct ApiRoute {
  std::string_view method;
  std::string_view path;  // after the optional /v1 prefix
  bool has_model;
};

// What ballast serves. Clients may include /v1 in base_url or not.
constexpr ApiRoute kRoutes[] = {
    {"POST", "/chat/completions", true}, {"POST", "/completions", true}, {"POST", "/embeddings", true},
    {"POST", "/responses", true},        {"GET", "/models", false},
};

const ApiRoute* find_route(std::string_view path) {
  if (path.starts_with("/v1/")) path.remove_prefix(3);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  for (const auto& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

// Azure OpenAI's shape, as AzureOpenAI and AzureChatOpenAI send it:
// /openai/deployments/{deployment}/chat/completions?api-version=V.
struct AzurePath {
  std::string deployment;     // as the client named it, its %XX escapes decoded
  std::string_view api_path;  // "/chat/completions"
};

std::optional<AzurePath> azure_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/openai/deployments/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const size_t slash = path.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  return AzurePath{percent_decoded(path.substr(0, slash)), path.substr(slash)};
}

bool is_loopback(std::string_view peer) {
  return peer.starts_with("127.") || peer == "::1" || peer.starts_with("::ffff:127.");
}

// The shortest time in seconds among the headers `names`: every occurrence of each, and every
// value of a comma-separated list, as proxies join repeated headers. Values that are no duration
// (0, negative, not a number) are ignored.
std::optional<Duration> shortest_seconds(const Request& req, std::initializer_list<std::string_view> names) {
  std::optional<Duration> shortest;
  for (const auto& header : req.headers) {
    const std::string& name = header.first;
    if (std::none_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(name, n); }))
      continue;
    std::string_view rest = header.second;
    for (;;) {
      const size_t comma = rest.find(',');
      if (auto d = parse_seconds(rest.substr(0, comma)); d && (!shortest || *d < *shortest)) shortest = d;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return shortest;
}

std::optional<Duration> client_timeout(const Request& req) {
  return shortest_seconds(req, {"x-ballast-timeout", "x-stainless-timeout"});
}

// openai-python's httpx read timeout ("600.0" by default): how long it waits for each byte.
std::optional<Duration> read_timeout(const Request& req) {
  return shortest_seconds(req, {"x-stainless-read-timeout"});
}

Due due(const Exchange& x, bool stream) {
  Due d{x.deadline.at, x.deadline.first_byte_by, stream};
  if (x.deadline.source == DeadlineSource::none) d.queue_wait = x.queue_wait;
  return d;
}

// Both read x-stainless-retry-count, which the OpenAI SDKs send on every attempt (0 on the first).
// The client's SDK is retrying this request itself (above 0).
bool is_client_retry(const Request& req) {
  const auto* v = req.header("x-stainless-retry-count");
  return v && !v->empty() && *v != "0";
}

// The client's SDK retries a refused request itself, after the Retry-After it is given, and has a
// retry left: below the SDKs' default max_retries (2).
bool comes_back(const Request& req) {
  const auto* v = req.header("x-stainless-retry-count");
  return v && (*v == "0" || *v == "1");
}

bool known_key(const config::Config& config, const std::string& presented) {
  if (presented.empty()) return false;
  return std::any_of(config.keys.begin(), config.keys.end(),
                     [&](const config::ClientKey& k) { return k.key == presented; });
}

bool key_may_use(const config::ClientKey& key, std::string_view model) {
  return key.models.empty() || std::find(key.models.begin(), key.models.end(), model) != key.models.end() ||
         std::find(key.models.begin(), key.models.end(), "*") != key.models.end();
}

std::string presented_key(const Request& req) {
  if (const auto* auth = req.header("authorization")) {
    std::string_view v = *auth;
    if (v.size() > 7 && iequals(v.substr(0, 7), "bearer ")) return std::string(v.substr(7));
  }
  for (const char* name : {"api-key", "x-api-key"}) {
    if (const auto* v = req.header(name)) return *v;
  }
  return {};
}

bool is_event_stream(const Headers& headers) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, "content-type")) return v.find("text/event-stream") != std::string::npos;
  }
  return false;
}

// The upstream's response headers that cross to the client (moved: they are used once), and ours.
Headers forwardable(Headers upstream, const Exchange& x) {
  std::erase_if(upstream, [](const auto& h) { return !forward_response_header(h.first); });
  x.add_own(upstream);
  return upstream;
}

// retry-after-ms, which the OpenAI SDKs read first, and Retry-After in whole seconds, bounded as
// the moment of answering allows (retry_after_headers: never past timeouts.queue nor the client's
// deadline).
void add_retry_after(Headers& headers, Millis wait, Exchange& x) {
  RetryAfter r = retry_after_headers(wait, x.queue_cap, x.deadline.at - Clock::now());
  headers.emplace_back("retry-after", std::to_string(r.seconds));
  headers.emplace_back("retry-after-ms", std::to_string(r.ms.count()));
  x.record.retry_after_ms = static_cast<int>(r.ms.count());
}

std::string describe_refusal(ErrorCode code, const config::Endpoint& endpoint,
                             const Upstreams::Admit& admit) {
  if (admit.draining) {
    return fmt::format(
        "this ballast is shutting down (SIGTERM: shutdown_grace) and endpoint {} could not serve this "
        "request before it ends: refused now rather than cut then; retry after {}, on another replica or "
        "this one restarted",
        endpoint.name, format_duration(admit.retry_after));
  }
  if (code == ErrorCode::rate_limited) {
    return fmt::format(
        "endpoint {} is at its rpm or tpm limit, shared by every ballast replica (rpm {}, tpm {}): retry "
        "after {}",
        endpoint.name, endpoint.rpm, endpoint.tpm, format_duration(admit.retry_after));
  }
  if (code == ErrorCode::queue_full) {
    return fmt::format(
        "endpoint {} is at max_in_flight and its queue is full: retry after {}, or raise max_in_flight or "
        "queue if the upstream can take more",
        endpoint.name, format_duration(admit.retry_after));
  }
  if (admit.at_once) {
    return fmt::format(
        "endpoint {} is at max_in_flight and this request could not start before its deadline or "
        "timeouts.queue: refused at once; retry after {}",
        endpoint.name, format_duration(admit.retry_after));
  }
  return fmt::format(
      "endpoint {} is at max_in_flight: waited {} for a slot (timeouts.queue, or the client's deadline); "
      "retry after {}",
      endpoint.name, format_duration(std::chrono::duration_cast<Millis>(admit.waited)),
      format_duration(admit.retry_after));
}

// The upstream refused this request in a way another model may not (fallback_on: an error code such
// as context_length_exceeded in its 4xx body).
bool falls_back(const config::Model& model, const AttemptResult& r) {
  StatusClass c = status_class(r.outcome.status);
  if (model.fallback_on.empty() || c == StatusClass::none || c == StatusClass::success ||
      c == StatusClass::server_error)
    return false;
  std::string code = upstream_error_code(r.body);
  return !code.empty() &&
         std::find(model.fallback_on.begin(), model.fallback_on.end(), code) != model.fallback_on.end();
}

// A non-streamed answer larger than this is refused rather than held in memory.
constexpr size_t kMaxBufferedResponse = size_t{128} * 1024 * 1024;

}  // namespace

asio::awaitable<void> Gateway::handle(Request& req, Downstream& down) {
  return serve(req, down, Side::main);
}

asio::awaitable<void> Gateway::handle_admin(Request& req, Downstream& down) {
  return serve(req, down, Side::admin);
}

asio::awaitable<void> Gateway::serve(Request& req, Downstream& down, Side side) {
  std::shared_ptr<Generation> generation = generation_;
  Exchange x{req, down, generation, generation->config, generation->upstreams, next_request_id(), {}, {}};
  x.record.id = x.id;
  // What the client sent is echoed into logs and messages only bounded (see bounded_echo).
  x.record.method = bounded_echo(req.method, 16);
  x.record.path = bounded_echo(req.path);
  x.record.peer = req.peer;
  x.record.bytes_in = req.body.size();

  if (!req.framing_error.empty()) {
    // The connection closes after this answer: what follows on it cannot be trusted to be framed.
    x.down.close_after_response();
    if (req.headers_too_large)
      co_return co_await fail(x, ErrorCode::invalid_request,
                              "the request's headers are larger than 64 KiB: send fewer or shorter headers",
                              431);
    co_return co_await fail(
        x, ErrorCode::invalid_request,
        fmt::format("the HTTP request could not be read ({}): ballast refuses malformed or "
                    "ambiguous framing, such as Content-Length with Transfer-Encoding",
                    bounded_echo(req.framing_error)));
  }
  if (req.path == "/healthz") {
    co_await down.respond(200, x.headers(), R"({"status":"ok"})");
    co_return;
  }
  if (req.path == "/readyz") {
    // Not ready while draining, on the admin listener (which stays open until the process exits)
    // or a connection still open on the main one. Before the configuration is loaded nothing
    // listens at all.
    if (draining_ || down.draining()) {
      x.down.close_after_response();
      co_await down.respond(503, x.headers(), R"({"status":"draining"})");
    } else {
      co_await down.respond(200, x.headers(), R"({"status":"ready"})");
    }
    co_return;
  }
  const bool admin_page = req.path == "/metrics" || req.path == "/ballast/status";
  if (side == Side::admin && !admin_page) {
    co_return co_await fail(x, ErrorCode::invalid_request,
                            "this is ballast's admin listener: it serves GET /metrics, /ballast/status, "
                            "/healthz and /readyz; the API is on the main listener");
  }
  if (admin_page && side == Side::main && admin_elsewhere_) {
    co_return co_await fail(
        x, ErrorCode::invalid_request,
        fmt::format("{} is served on the admin listener (admin_listen), not here", req.path));
  }
  if (admin_page && side == Side::main && !is_loopback(req.peer) && !known_key(x.cfg, presented_key(req))) {
    // Endpoint names, limits and traffic are the operator's: loopback, or a configured client key.
    co_return co_await fail(
        x, ErrorCode::unauthorized,
        fmt::format("{} answers loopback clients and clients with one of the keys configured "
                    "under keys: (as 'Authorization: Bearer KEY')",
                    req.path));
  }
  if (req.path == "/metrics") {
    std::string text = metrics_.render();
    render_endpoint_gauges(text, x.upstreams.view(Clock::now()));
    if (const SharedLimits* shared = x.upstreams.shared())
      render_shared_limits_gauges(text, shared->view(Clock::now()));
    fmt::format_to(std::back_inserter(text),
                   "# HELP ballast_log_lines_dropped_total Log lines that could not be written (the reader "
                   "went away, a full disk); serving went on.\n"
                   "# TYPE ballast_log_lines_dropped_total counter\n"
                   "ballast_log_lines_dropped_total{{log=\"access\"}} {}\n"
                   "ballast_log_lines_dropped_total{{log=\"server\"}} {}\n",
                   access_log_.dropped(), server_log_lines_dropped.load(std::memory_order_relaxed));
    co_await down.respond(200, x.headers("text/plain; version=0.0.4"), std::move(text));
    co_return;
  }
  if (req.path == "/ballast/status") {
    // Made before the co_await: GCC 12 destroys a conditional's temporaries in a coroutine wrongly.
    std::optional<SharedLimitsView> redis;
    if (const SharedLimits* shared = x.upstreams.shared()) redis = shared->view(Clock::now());
    std::string status =
        endpoint_status_json(x.upstreams.view(Clock::now()), x.upstreams.patience_view(Clock::now()), redis);
    co_await down.respond(200, x.headers(), std::move(status));
    co_return;
  }
  if (req.over_buffer_bound) {
    x.queue_cap = x.cfg.queue_timeout;
    x.deadline = plan_deadline(req.received, x.cfg.timeouts.total, client_timeout(req));
    co_return co_await refuse(
        x, ErrorCode::queue_full,
        fmt::format("ballast already holds limits.max_buffered_bytes ({} bytes) of request bodies in "
                    "flight: retry shortly, or raise the limit",
                    x.cfg.max_buffered_bytes),
        Millis(1000));
  }
  if (req.too_large) {
    co_return co_await fail(x, ErrorCode::payload_too_large,
                            fmt::format("the request body is larger than limits.max_request_body ({} bytes): "
                                        "send less, or raise the limit in the config",
                                        x.cfg.max_request_bytes));
  }

  // Admit: a known path, and a client allowed to use it. An Azure client's deployment is the model
  // it asks for; its api-version is its own, not the upstream's.
  std::string_view api_path = req.path;
  if (auto azure = azure_path(req.path); azure && find_route(azure->api_path)) {
    req.body = with_model(req.body, azure->deployment);
    api_path = azure->api_path;
    req.query.clear();
  }
  const ApiRoute* route = find_route(api_path);
  if (!route) {
    co_return co_await fail(
        x, ErrorCode::invalid_request,
        fmt::format("ballast serves POST /v1/chat/completions, /v1/completions, /v1/embeddings, "
                    "/v1/responses and GET /v1/models (and Azure's /openai/deployments/NAME/...), not {} {}: "
                    "is the client's base_url http://HOST:PORT/v1?",
                    x.record.method, x.record.path));
  }
  if (req.method != route->method) {
    co_return co_await fail(
        x, ErrorCode::invalid_request,
        fmt::format("{} takes {}, not {}", x.record.path, route->method, x.record.method));
  }
  const config::ClientKey* key = nullptr;
  if (!x.cfg.keys.empty()) {
    std::string presented = presented_key(req);
    for (const auto& k : x.cfg.keys) {
      if (k.key == presented) key = &k;
    }
    if (key) {
      x.key = static_cast<int>(key - x.cfg.keys.data());
      x.fair_key = std::to_string(x.key);
    }
    if (!key) {
      co_return co_await fail(x, ErrorCode::unauthorized,
                              presented.empty()
                                  ? "no client key: send one of the keys configured under keys: "
                                    "as 'Authorization: Bearer KEY'"
                                  : "this client key is not one of those configured under keys:");
    }
  } else if (!is_loopback(req.peer)) {
    co_return co_await fail(
        x, ErrorCode::unauthorized,
        "with no keys: configured, ballast serves loopback clients only: add keys: to the "
        "config to serve other hosts");
  }

  // Route: the model names the route; the listing is answered here unless a wildcard fronts a provider.
  if (!route->has_model) {
    const config::Model* wildcard = x.cfg.find_model("*");
    if (wildcard && wildcard->endpoints.front().provider == config::Provider::openai) {
      co_return co_await proxy(x, *wildcard, route->path, false);
    }
    JsonWriter w;
    w.begin_object().field("object", "list").key("data").begin_array();
    for (const auto& m : x.cfg.models) {
      // The client-facing names, and only those this client's key may use.
      if (m.name == "*" || (key && !key_may_use(*key, m.name))) continue;
      w.begin_object()
          .field("id", m.name)
          .field("object", "model")
          .field("created", 0)
          .field("owned_by", "ballast");
      w.end_object();
    }
    w.end_array().end_object();
    x.record.status = 200;
    x.record.bytes_out = w.str().size();
    co_await down.respond(200, x.headers(), w.take());
    finish(x);
    co_return;
  }
  RequestFieldsResult fields = read_request_fields(req.body);
  if (!fields.error.empty()) co_return co_await fail(x, ErrorCode::invalid_request, fields.error);
  const std::string& name = fields.fields.model;
  x.record.model = bounded_echo(name);
  x.record.stream = fields.fields.stream;
  if (name.empty()) co_return co_await fail(x, ErrorCode::invalid_request, "'model' is required");
  const config::Model* model = x.cfg.find_model(name);
  if (!model) {
    std::string names;
    for (const auto& m : x.cfg.models) names += (names.empty() ? "" : ", ") + m.name;
    co_return co_await fail(
        x, ErrorCode::unknown_model,
        fmt::format("model '{}' is not configured (configured: {}): use one of those names, "
                    "or add it under models: in {}",
                    x.record.model, names, x.cfg.source));
  }
  if (key && !key_may_use(*key, model->name)) {
    co_return co_await fail(
        x, ErrorCode::unauthorized,
        fmt::format("this client key may not use model '{}' (see its models: under keys:)", x.record.model));
  }
  x.tokens = estimate_tokens(req.body.size(), fields.fields.max_tokens);
  if (key && (key->rpm > 0 || key->tpm > 0)) {
    if (auto wait = co_await x.upstreams.charge_key(static_cast<size_t>(x.key), x.tokens)) {
      x.queue_cap = x.cfg.queue_timeout;
      x.deadline = plan_deadline(req.received, x.cfg.timeouts.total, client_timeout(req));
      // The message says what the header will: a wait past the queue timeout is cut to it.
      const Millis said = retry_after_headers(*wait, x.queue_cap, x.deadline.at - Clock::now()).ms;
      // Made before the co_await: GCC 12 destroys a conditional's temporaries in a coroutine wrongly.
      std::string later;
      if (said < *wait) later = fmt::format(" (its limits allow this request in {})", format_duration(*wait));
      std::string message = fmt::format(
          "this client key is over its limit (keys[{}]: rpm {}, tpm {}): retry after {}{}, or "
          "raise the key's limits",
          x.key, key->rpm, key->tpm, format_duration(said), later);
      co_return co_await refuse(x, ErrorCode::rate_limited, std::move(message), *wait);
    }
    x.key_charged = true;
  }
  co_await proxy(x, *model, route->path, fields.fields.stream);
}

asio::awaitable<void> Gateway::proxy(Exchange& x, const config::Model& model, std::string_view api_path,
                                     bool stream) {
  // Plan the deadline: the total bound, capped by the client's own deadline. Its read timeout, when
  // it sent one, bounds every silence as well, whichever runs out first. With neither, the patience
  // it has shown before bounds its wait for the first byte.
  config::Endpoint no_endpoint;
  Millis total = config::effective_bounds(x.cfg, model, no_endpoint).total;
  const auto client = client_timeout(x.req);
  const auto read = read_timeout(x.req);
  x.deadline = plan_deadline(x.req.received, total, client);
  if (read) bound_silence(x.deadline, *read);
  if (client) {
    x.deadline.source = DeadlineSource::sent;  // what the log names; a read timeout still applies
    x.record.client_timeout_ms = to_ms(*client);
  } else if (read) {
    x.record.client_timeout_ms = to_ms(*read);
  } else if (x.cfg.learn_patience) {
    x.patience_client = x.key >= 0 ? fmt::format("keys[{}]", x.key) : x.req.peer;
    if (auto learned = x.upstreams.patience(x.patience_client, model.name, Clock::now())) {
      bound_first_byte(x.deadline, learned->patience, DeadlineSource::learned);
      x.record.client_timeout_ms = to_ms(learned->patience);
    } else if (comes_back(x.req)) {
      x.queue_wait = kUnknownPatienceWait;
    }
  }
  x.record.client_timeout_source = source_name(x.deadline.source);
  x.queue_cap = config::effective_queue_timeout(x.cfg, model, no_endpoint);
  const size_t mi = x.generation->model_index(model);
  x.upstreams.record_request(mi, is_client_retry(x.req), Clock::now());

  // The attempt loop: choose an endpoint, wait for a slot, send, classify, report, decide.
  Wakeup wake(co_await asio::this_coro::executor);
  AttemptResult last;
  std::vector<AttemptFact> history;   // every failed attempt so far, for the failover decision
  ErrorCode refusal = ErrorCode::ok;  // ballast's own answer, when it could not make an attempt
  std::string refusal_message;
  std::optional<Millis> retry_after;  // for the client, when waiting helps
  bool budget_spent = false;
  bool client_left = false;
  for (;;) {
    EndpointPool::Choice choice =
        x.upstreams.choose(mi, history, x.tokens, answer_by(x.deadline) - Clock::now(), Clock::now());
    if (choice.endpoint < 0) {
      if (history.empty()) {
        refusal = choice.refusal;
        refusal_message = std::move(choice.why);
        retry_after = choice.retry_after;
      } else {
        // Another attempt was wanted but is not made: the last failure is the answer.
        metrics_.retry_denied(model.name, denial_name(choice.denied));
        budget_spent = choice.denied == RetryDenial::budget;
        if (history.back().hint && choice.denied == RetryDenial::deadline) retry_after = history.back().hint;
      }
      break;
    }
    if (!history.empty()) {
      metrics_.retry(model.name, last.verdict.code);
      TimePoint paused = Clock::now();
      bool stayed = co_await pause(x, wake, choice.wait);
      x.record.backoff_ms += to_ms(Clock::now() - paused);
      if (!stayed) {
        x.upstreams.finish_unsent(mi, static_cast<size_t>(choice.endpoint));
        client_left = true;
        break;
      }
    }
    const size_t ei = static_cast<size_t>(choice.endpoint);
    const config::Endpoint& endpoint = model.endpoints[ei];
    // Its rates shared by every replica (redis:), charged in Redis: past them, no attempt is made.
    if (auto wait = co_await x.upstreams.charge_shared(mi, ei, x.tokens)) {
      x.upstreams.finish_unsent(mi, ei);
      if (history.empty()) {
        refusal = ErrorCode::rate_limited;
        Upstreams::Admit refused;
        refused.retry_after = *wait;
        refusal_message = describe_refusal(refusal, endpoint, refused);
        retry_after = *wait;
      } else if (history.back().hint) {
        retry_after = history.back().hint;
      }
      break;
    }
    x.endpoint = &endpoint;
    x.upstream_model = endpoint.model.empty() ? std::string_view(x.record.model) : endpoint.model;
    x.record.endpoint = endpoint.name;
    x.record.upstream_model = x.upstream_model;
    x.queue_cap = config::effective_queue_timeout(x.cfg, model, endpoint);
    x.metric_labels = &x.generation->facts(endpoint).model_endpoint_labels;

    Upstreams::Admit admit;
    for (;;) {
      admit = co_await x.upstreams.admit(mi, ei, x.fair_key, due(x, stream), x.tokens, x.down, wake);
      x.record.queue_ms += to_ms(admit.waited);
      // Refused only for the patience learned before: now and then, such a request tests it
      // instead, held outside the queue (policy/patience: take_probe). Never an SDK's own retry,
      // which may be its last.
      if (!admit.first_byte_bound || x.deadline.source != DeadlineSource::learned || is_client_retry(x.req))
        break;
      auto hold = x.upstreams.probe(x.patience_client, model.name, Clock::now());
      if (!hold) break;
      TimePoint held = Clock::now();
      bool stayed = co_await pause(x, wake, std::chrono::ceil<Millis>(x.req.received + *hold - held));
      x.record.queue_ms += to_ms(Clock::now() - held);
      if (!stayed) {
        admit.kind = Upstreams::Admit::client_gone;
        break;
      }
      // Its client outlasted what was learned: its patience is unknown again.
      x.upstreams.outlasted(x.patience_client, model.name, Clock::now() - x.req.received, Clock::now());
      x.deadline.first_byte_by = TimePoint::max();
      x.deadline.source = DeadlineSource::none;
      x.record.client_timeout_ms.reset();
      x.record.client_timeout_source = source_name(x.deadline.source);
    }
    if (admit.kind == Upstreams::Admit::admitted && x.deadline.source == DeadlineSource::none &&
        !x.patience_client.empty()) {
      // Its client's patience may have been learned while it waited (clients that gave up
      // together, just now): a slot it can no longer use in time goes to the next in line.
      if (auto learned = x.upstreams.patience(x.patience_client, model.name, Clock::now())) {
        bound_first_byte(x.deadline, learned->patience, DeadlineSource::learned);
        x.record.client_timeout_ms = to_ms(x.deadline.patience);
        x.record.client_timeout_source = source_name(x.deadline.source);
        if (auto come_back = x.upstreams.keep_if_in_time(mi, ei, due(x, stream), Clock::now(), admit.lease)) {
          admit.kind = Upstreams::Admit::queue_timeout;
          admit.retry_after = *come_back;
        }
      }
    }
    if (admit.kind != Upstreams::Admit::admitted) {
      x.upstreams.finish_unsent(mi, ei);
      if (admit.kind == Upstreams::Admit::client_gone) {
        client_left = true;
        break;
      }
      if (admit.kind == Upstreams::Admit::rate_limited && !history.empty()) {
        // A retry its shared rates refuse: the last failure is the answer.
        if (history.back().hint) retry_after = history.back().hint;
        break;
      }
      refusal = admit.kind == Upstreams::Admit::queue_full     ? ErrorCode::queue_full
                : admit.kind == Upstreams::Admit::rate_limited ? ErrorCode::rate_limited
                                                               : ErrorCode::queue_timeout;
      retry_after = admit.retry_after;
      refusal_message = describe_refusal(refusal, endpoint, admit);
      break;
    }
    const TimePoint admitted_at = Clock::now();
    last = co_await attempt(x, model, endpoint, api_path, stream);
    x.record.attempts.push_back(last.record);
    metrics_.attempt(x.generation->facts(endpoint).endpoint_labels, last.record.code, last.outcome.timings);
    if (last.outcome.malformed_events > 0) {
      x.record.malformed_events += last.outcome.malformed_events;
      metrics_.malformed_events(endpoint.name, last.outcome.malformed_events);
    }
    const Verdict& verdict = last.verdict;
    if (last.outcome.client_gone) x.left = Clock::now();
    if (last.outcome.client_gone && !stream && !x.down.shutting_down()) {
      // Most servers notice a non-streamed client's going only when they write its answer: the
      // endpoint stays busy with it for the rest of its usual time, and so does its slot.
      if (auto hold = x.upstreams.mean_hold(mi, ei)) {
        const TimePoint until = admitted_at + std::min<Duration>(*hold, std::chrono::seconds(30));
        while (Clock::now() < until && !x.down.shutting_down()) co_await wake.wait_until(until);
      }
    }
    const PhaseTimings& t = last.outcome.timings;
    std::optional<Duration> first_token;
    if (auto ms = t.first_token_ms ? t.first_token_ms : t.first_byte_ms)
      first_token = std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(*ms));
    // The tpm estimate charged for this attempt, corrected: by usage when it came, in full when it failed.
    double tokens_delta =
        verdict.code == ErrorCode::ok
            ? (x.record.usage ? x.tokens - static_cast<double>(x.record.usage->total_tokens) : 0)
            : x.tokens;
    x.upstreams.finish(mi, ei, admitted_at, verdict, first_token, stream, tokens_delta, Clock::now(),
                       last.message, admit.lease);

    // Decide: done, or another attempt (failover decides where) if it may help.
    if (verdict.code == ErrorCode::ok) break;
    AttemptFact fact;
    fact.endpoint = ei;
    fact.retryable = verdict.retryable;
    fact.silent = verdict.silent;
    fact.fallback = !last.outcome.response_started && falls_back(model, last);
    fact.hint = retry_hint(last.headers, std::chrono::system_clock::now());
    if (!fact.retryable && !fact.fallback) break;
    history.push_back(fact);
  }

  // No attempt could be made: ballast's own refusal, with when to come back.
  if (x.record.attempts.empty() && refusal != ErrorCode::ok) {
    co_return co_await refuse(x, refusal, std::move(refusal_message), retry_after.value_or(Millis(1000)));
  }
  if (x.record.attempts.empty() || client_left) {
    x.record.code = ErrorCode::client_disconnected;
    x.record.status = http_status(ErrorCode::client_disconnected);
    finish(x);
    co_return;
  }

  if (last.deliver) {
    x.record.status = last.outcome.status;
    x.record.bytes_out = last.body.size();
    const TimePoint answering = Clock::now();
    if (co_await x.down.respond(last.outcome.status, forwardable(std::move(last.headers), x),
                                std::move(last.body))) {
      x.answered = answering;
    } else {
      x.record.code = ErrorCode::client_disconnected;
      x.record.status = http_status(ErrorCode::client_disconnected);
    }
    finish(x);
    co_return;
  }

  // A failure that no byte of has reached the client yet is answered here, whole.
  const Outcome& o = last.outcome;
  const Verdict& verdict = last.verdict;
  x.record.code = verdict.code;
  x.record.message = last.message;
  if (!o.response_started && !o.client_gone) {
    Headers headers;
    std::string body;
    int status = 0;
    if (verdict.code == ErrorCode::upstream_status) {
      // The upstream's own answer, passed through: the SDKs know how to read it. An upstream that
      // echoes the request's Authorization in its error must not hand the endpoint's key over.
      status = o.status;
      if (auto hint = retry_hint(last.headers, std::chrono::system_clock::now()))
        x.record.retry_after_ms = static_cast<int>(std::min<int64_t>(hint->count(), INT32_MAX));
      headers = forwardable(std::move(last.headers), x);
      body = std::move(last.body);
      if (x.endpoint) {
        scrub_secret(body, x.endpoint->api_key);
        for (auto& h : headers) scrub_secret(h.second, x.endpoint->api_key);  // WWW-Authenticate, say
      }
    } else {
      status = http_status(verdict.code);
      headers = x.headers();
      body = error_body(verdict.code, last.message);
    }
    headers.emplace_back("x-ballast-attempts", std::to_string(x.record.attempts.size()));
    // The client's own retries would stack on ours, or could not help (a replica shutting down is
    // the exception: elsewhere, the same request can succeed).
    if (verdict.code != ErrorCode::shutting_down &&
        (!verdict.retryable || x.record.attempts.size() > 1 || budget_spent))
      headers.emplace_back("x-should-retry", "false");
    if (retry_after && verdict.code != ErrorCode::upstream_status) add_retry_after(headers, *retry_after, x);
    x.record.status = status;
    x.record.bytes_out = body.size();
    x.answered = Clock::now();
    co_await x.down.respond(status, headers, std::move(body));
  } else {
    x.record.status = o.client_gone ? http_status(ErrorCode::client_disconnected) : o.status;
  }
  finish(x);
}

asio::awaitable<AttemptResult> Gateway::attempt(Exchange& x, const config::Model& model,
                                                const config::Endpoint& endpoint, std::string_view api_path,
                                                bool stream) {
  AttemptResult r;
  Outcome& o = r.outcome;
  const PhaseBounds bounds = config::effective_bounds(x.cfg, model, endpoint);

  // Build the upstream request: the provider's URL, the client's headers less hop-by-hop ones
  // and credentials, the endpoint's own key, the proxy that applies.
  UpstreamTarget target = upstream_target(endpoint, api_path, x.req.query);
  const Generation::EndpointFacts& facts = x.generation->facts(endpoint);
  const ProxyChoice& proxy = facts.proxy;
  UpstreamRequest request;
  request.method = x.req.method;
  request.url = target.url;
  // The body as the client sent it, but for the model its upstream knows where the endpoint names
  // one. The rewritten copy lives as long as this attempt's transfer.
  std::string rewritten;
  if (!endpoint.model.empty() && !x.req.body.empty()) rewritten = with_model(x.req.body, endpoint.model);
  request.body = rewritten.empty() ? std::string_view(x.req.body) : std::string_view(rewritten);
  for (const auto& [k, v] : x.req.headers) {
    if (!forward_request_header(k)) continue;
    std::string& line = request.headers.emplace_back();
    line.reserve(k.size() + 2 + v.size());
    line.append(k).append(": ").append(v);
  }
  if (!target.credential.empty()) request.headers.push_back(target.credential);
  request.connect_timeout = connect_bound(x.deadline, bounds, Clock::now());
  // curl's connect bound is the client's read timeout, not timeouts.connect: its verdict says so.
  const bool read_bounds_connect =
      x.deadline.read_gap > Duration::zero() &&
      x.deadline.first_byte_by < std::min(x.deadline.at, Clock::now() + bounds.connect);
  request.proxy = proxy.url;
  request.ca_bundle = endpoint.ca_bundle;

  Wakeup wake(co_await asio::this_coro::executor);
  Transfer t(multi_, std::move(request), wake);
  t.start();
  x.down.watch_disconnect(wake);

  // How the response is handled once its headers arrive.
  enum class Mode { undecided, buffer, stream } mode = Mode::undecided;
  AttemptPhase phase = AttemptPhase::connecting;
  SseScanner scanner(x.cfg.max_sse_line);
  StreamProgress progress;  // whether what was relayed is a whole answer yet
  std::string held;         // stream events received before the first token: sent with it, or never
  std::optional<TimePoint> first_token_at;
  // When ballast last became ready to read more: the end of its latest write to the client. Time
  // spent waiting for a slow client (the upstream transfer paused meanwhile) is not upstream silence.
  TimePoint ready_since = t.started_at();
  // In a begun stream, progress is an event with data. A keep-alive comment, or the first bytes of an
  // event still arriving, hold off neither the stream's idle bound nor the client's read timeout.
  TimePoint last_data = t.started_at();  // the latest event with data received
  std::optional<TimePoint> last_write;   // the end of the latest write to the client that carried one

  for (;;) {
    if (x.down.client_gone()) {
      o.client_gone = true;
      break;
    }
    if (x.down.shutting_down()) {
      o.shutting_down = true;
      break;
    }
    if (mode == Mode::undecided && t.headers_done()) {
      bool success = status_class(t.status()) == StatusClass::success;
      mode = success && stream && is_event_stream(t.headers()) ? Mode::stream : Mode::buffer;
      phase = mode == Mode::stream ? AttemptPhase::awaiting_first_token : AttemptPhase::relaying;
    }
    if (mode == Mode::buffer && !t.buffered().empty()) {
      r.body += t.take();
      if (r.body.size() > kMaxBufferedResponse) {
        o.oversized = true;
        o.detail = "a response larger than 128 MiB, more than ballast holds for a non-streamed answer";
        break;
      }
    }
    // Once the upstream has ended, what it sent is all there is: the scanner is told, so that an
    // event whose last line ends in a lone \r is handed out rather than held for a \n.
    if (mode == Mode::stream && (!t.buffered().empty() || (t.done() && !scanner.ended()))) {
      scanner.feed(t.take());
      if (t.done()) scanner.end();
      std::string out;
      bool carries_data = false;
      while (auto ev = scanner.next()) {
        if (ev->upstream_error) {
          // The upstream's own failure. Once the answer has begun it is relayed, so the client's SDK
          // raises the upstream's reason, and ends the stream; before that, nothing was sent and it
          // is a failure like an error status (retried, or answered by ballast).
          // Its words go into ballast's own message and the log, and the event itself may be relayed:
          // neither may repeat the endpoint's key, should the upstream quote it.
          o.upstream_error = true;
          o.detail = ev->error_message;
          scrub_secret(o.detail, endpoint.api_key);
          if (first_token_at) {
            std::string event(ev->raw);
            scrub_secret(event, endpoint.api_key);
            out.append(event);
          }
          break;
        }
        if (ev->malformed) {
          ++o.malformed_events;  // dropped, not relayed: the rest of the stream may still be whole
          continue;
        }
        if (ev->usage) x.record.usage = ev->usage;
        if (!ev->comment_only) {
          carries_data = true;
          last_data = Clock::now();
        }
        progress.see(*ev);
        out.append(ev->raw);
        if (!first_token_at && (ev->has_content || ev->terminal)) first_token_at = Clock::now();
      }
      if (scanner.oversized()) {
        o.oversized = true;
        o.detail = fmt::format("an SSE line longer than limits.max_sse_line ({} bytes)", x.cfg.max_sse_line);
      }
      if ((o.upstream_error || o.oversized) && !first_token_at) break;
      if (!first_token_at) {
        held += out;
      } else if (!out.empty()) {
        if (!o.response_started) {
          // The first token: now the response begins, and from here on nothing is retried.
          o.response_started = true;
          phase = AttemptPhase::relaying;
          const TimePoint answering = Clock::now();
          if (!co_await x.down.begin_stream(t.status(), forwardable(t.take_headers(), x))) {
            o.client_gone = true;
            break;
          }
          x.answered = answering;
          out.insert(0, held);
          held.clear();
        }
        x.record.bytes_out += out.size();
        if (!co_await x.down.write_chunk(out)) {
          o.client_gone = true;
          break;
        }
        ready_since = Clock::now();
        if (carries_data) last_write = ready_since;
      }
      if (o.upstream_error || o.oversized) break;
    }
    if (t.done() && t.buffered().empty()) break;
    // Nothing new to handle: wait for the upstream, the client, or the bound of this phase.
    AttemptClock clock{t.started_at(), t.started_at(), std::max(t.last_activity(), ready_since), last_write};
    if (o.response_started) clock.last_activity = std::max(last_data, last_write.value_or(last_data));
    if (phase == AttemptPhase::connecting) {
      if (auto sent = t.sent_at()) {
        phase = AttemptPhase::awaiting_headers;
        clock.sent = *sent;
      }
    } else if (phase == AttemptPhase::awaiting_headers) {
      clock.sent = *t.sent_at();
    }
    Bound bound = next_bound(x.deadline, bounds, clock, phase);
    if (Clock::now() >= bound.at) {
      o.timer = bound.code;
      o.client_read = bound.client_read;
      break;
    }
    co_await wake.wait_until(bound.at);
  }

  // Facts of the attempt, for the classifier and the log.
  o.status = t.status();
  if (t.headers_too_large()) {
    o.oversized = true;
    o.detail = "response headers larger than 64 KiB, more than ballast reads";
  } else if (t.done() && t.error() != TransportError::none) {
    o.transport = t.error();
    o.detail = t.error_text();
    if (o.transport == TransportError::connect_timeout && read_bounds_connect) o.client_read = true;
  }
  if (mode == Mode::stream && t.done() && !progress.complete() && o.transport == TransportError::none &&
      !o.upstream_error) {
    o.truncated = true;  // ended cleanly, but before the answer was whole
  }
  if (mode == Mode::buffer && t.done() && o.transport == TransportError::none &&
      status_class(o.status) == StatusClass::success && !o.client_gone) {
    // A 2xx that is not JSON is no API answer, whatever its status says.
    auto body = read_response_body(r.body);
    if (!body.json)
      o.malformed = true;
    else if (!x.record.usage)
      x.record.usage = body.usage;
  }
  if (o.transport == TransportError::reset && t.headers_done() &&
      status_class(o.status) == StatusClass::success) {
    o.truncated = true;  // the response began, then the connection broke
  }
  o.reused_connection = t.reused_connection();
  o.timings = t.timings();
  if (first_token_at) o.timings.first_token_ms = to_ms(*first_token_at - t.started_at());
  o.timings.total_ms = to_ms(Clock::now() - t.started_at());
  t.cancel();
  x.down.stop_watching();

  r.verdict = classify(o);
  const Verdict& verdict = r.verdict;
  r.record = {endpoint.name, std::string(x.upstream_model), o.status,
              verdict.code,  o.reused_connection,           o.timings};
  if (verdict.code != ErrorCode::ok) {
    FailureContext ctx{endpoint.name, facts.host,  proxy.url,    proxy.source,
                       &bounds,       &x.deadline, in_container_};
    ctx.url = endpoint.base_url.empty() ? endpoint.endpoint : endpoint.base_url;
    r.message = describe_failure(verdict.code, o, ctx);
  }

  // A successful buffered answer is handed back whole: the attempt loop reports it (freeing the
  // endpoint's slot, correcting the token estimate) before it goes out. A begun stream gets its
  // honest end here.
  if (mode == Mode::buffer) {
    r.headers = t.take_headers();
    if (verdict.code == ErrorCode::ok && !o.client_gone) r.deliver = true;
  }
  if (o.response_started && mode == Mode::stream && !o.client_gone) {
    if (verdict.code != ErrorCode::ok && !o.upstream_error) {
      // Never a [DONE] or a made-up finish_reason: the client's SDK raises this as an error. (The
      // upstream's own error event, relayed above, already does.)
      std::string event = sse_error_event(verdict.code, r.message);
      x.record.bytes_out += event.size();
      co_await x.down.write_chunk(event);
    }
    co_await x.down.end_stream();
  }
  co_return r;
}

asio::awaitable<void> Gateway::refuse(Exchange& x, ErrorCode code, std::string message, Millis retry_after) {
  Headers headers = x.headers();
  add_retry_after(headers, retry_after, x);
  headers.emplace_back("x-ballast-attempts", std::to_string(x.record.attempts.size()));
  std::string body = error_body(code, message);
  x.record.status = http_status(code);
  x.record.code = code;
  x.record.bytes_out = body.size();
  x.record.message = std::move(message);
  x.answered = Clock::now();
  co_await x.down.respond(x.record.status, headers, std::move(body));
  finish(x);
}

asio::awaitable<bool> Gateway::pause(Exchange& x, Wakeup& wake, Millis d) {
  if (d <= Millis(0)) co_return true;
  TimePoint until = Clock::now() + d;
  x.down.watch_disconnect(wake);
  while (Clock::now() < until && !x.down.client_gone()) co_await wake.wait_until(until);
  x.down.stop_watching();
  co_return !x.down.client_gone();
}

asio::awaitable<void> Gateway::fail(Exchange& x, ErrorCode code, std::string message, int status) {
  Headers headers = x.headers();
  headers.emplace_back("x-should-retry", "false");
  std::string body = error_body(code, message);
  x.record.status = status ? status : http_status(code);
  x.record.code = code;
  x.record.bytes_out = body.size();
  x.record.message = std::move(message);
  if (code == ErrorCode::payload_too_large) x.down.close_after_response();
  co_await x.down.respond(x.record.status, headers, std::move(body));
  finish(x);
}

void Gateway::finish(Exchange& x) {
  const TimePoint now = Clock::now();
  x.record.duration_ms = to_ms(now - x.req.received);
  if (!x.patience_client.empty() && !x.record.model.empty()) {
    // What this request shows of its client's patience: how long it waited for a first byte that
    // came, or how long it waited before leaving without one (not counting the slot kept after).
    if (x.answered)
      x.upstreams.outlasted(x.patience_client, x.record.model, *x.answered - x.req.received, now);
    else if (x.record.code == ErrorCode::client_disconnected)
      x.upstreams.gave_up(x.patience_client, x.record.model, x.left.value_or(now) - x.req.received, now);
  }
  if (!x.record.model.empty()) {
    const double seconds = x.record.duration_ms / 1000;
    if (x.metric_labels)
      metrics_.request(*x.metric_labels, x.record.code, seconds);
    else  // refused before an endpoint was picked: rare enough to make the labels here
      metrics_.request(Metrics::model_endpoint_labels(x.record.model, "", ""), x.record.code, seconds);
    // The key's tpm charge corrected: by usage when it came, in full when the request failed (as an
    // endpoint's is); an answer without usage keeps the estimate.
    if (x.key_charged && x.record.usage)
      x.upstreams.correct_key(static_cast<size_t>(x.key),
                              x.tokens - static_cast<double>(x.record.usage->total_tokens), Clock::now());
    else if (x.key_charged && x.record.code != ErrorCode::ok)
      x.upstreams.correct_key(static_cast<size_t>(x.key), x.tokens, Clock::now());
  }
  access_log_.write(x.record);
}

}  // namespace ballast
