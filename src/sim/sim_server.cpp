#include "sim/sim_server.hpp"

#include <simdjson.h>

#include <boost/asio/this_coro.hpp>
#include <random>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "common/wakeup.hpp"
#include "policy/json_read.hpp"
#include "sim/capacity.hpp"
#include "sim/rate_window.hpp"
#include "sim/request_check.hpp"
#include "sim/text.hpp"

namespace ballast::sim {

namespace asio = boost::asio;

namespace {

struct Route {
  Op op = Op::chat;
  bool azure = false;
  std::string deployment;
};

bool parse_route(const Request& req, Route& route) {
  std::string_view p = req.path;
  if (p.starts_with("/openai/deployments/")) {
    p.remove_prefix(20);
    size_t slash = p.find('/');
    if (slash == std::string_view::npos) return false;
    route.azure = true;
    route.deployment = std::string(p.substr(0, slash));
    p = p.substr(slash);
  } else if (p.starts_with("/v1/")) {
    p.remove_prefix(3);
  } else {
    return false;
  }
  if (p == "/chat/completions" && req.method == "POST")
    route.op = Op::chat;
  else if (p == "/completions" && req.method == "POST")
    route.op = Op::completions;
  else if (p == "/embeddings" && req.method == "POST")
    route.op = Op::embeddings;
  else if (p == "/responses" && req.method == "POST" && !route.azure)
    route.op = Op::responses;
  else if (p == "/models" && req.method == "GET" && !route.azure)
    route.op = Op::models;
  else
    return false;
  return true;
}

std::string query_param(std::string_view query, std::string_view name) {
  size_t i = 0;
  while (i <= query.size()) {
    size_t end = query.find('&', i);
    if (end == std::string_view::npos) end = query.size();
    std::string_view kv = query.substr(i, end - i);
    if (kv.starts_with(name) && kv.size() > name.size() && kv[name.size()] == '=') {
      return std::string(kv.substr(name.size() + 1));
    }
    i = end + 1;
  }
  return {};
}

std::string openai_error(std::string_view message, std::string_view type,
                         std::optional<std::string_view> code,
                         std::optional<std::string_view> param = std::nullopt) {
  JsonWriter w;
  w.begin_object().key("error").begin_object().field("message", message).field("type", type);
  w.field("param", param).field("code", code);
  w.end_object().end_object();
  return w.take();
}

std::string openai_error(const RequestError& e) {
  auto or_null = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string_view>(s);
  };
  return openai_error(e.message, "invalid_request_error", or_null(e.code), or_null(e.param));
}

// Statuses whose response has no body (HTTP forbids one): a fault may choose them.
bool bodiless(int status) {
  return status == 204 || status == 205 || status == 304;
}

std::string azure_error(std::string_view code, std::string_view message) {
  JsonWriter w;
  w.begin_object()
      .key("error")
      .begin_object()
      .field("code", code)
      .field("message", message)
      .end_object()
      .end_object();
  return w.take();
}

bool contains(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

constexpr int64_t kCreated = 1735689600;  // fixed, so answers are byte-identical under --seed

}  // namespace

struct SimServer::State : std::enable_shared_from_this<SimServer::State> {
  State(asio::io_context& io, SimOptions o)
      : io(io),
        options(std::move(o)),
        rng(options.seed),
        rpm(options.rpm, Clock::now()),
        tpm(options.tpm, Clock::now()),
        faults(options.faults) {}

  asio::io_context& io;
  SimOptions options;
  SimStats stats;
  std::mt19937_64 rng;
  RateWindow rpm;
  RateWindow tpm;
  std::vector<Fault> faults;  // as set by --fault, replaced by POST /sim/faults
  HttpServer* server = nullptr;
  uint64_t counter = 0;

  Capacity capacity{options.capacity, options.queue};

  asio::awaitable<void> handle(Request& req, Downstream& down);
  asio::awaitable<void> admin(Request& req, Downstream& down);
  asio::awaitable<void> answer(Downstream& down, int status, Headers headers, std::string body) {
    ++stats.by_status[status];
    if (bodiless(status)) body.clear();
    if (!body.empty()) headers.emplace_back("content-type", "application/json");
    co_await down.respond(status, headers, std::move(body));
  }
  Headers rate_headers(TimePoint now);
  // Takes one request and its tokens from the --rpm and --tpm windows, both or neither: the window
  // that refused, or none.
  RateWindow* charge(int64_t tokens, TimePoint now);
  asio::awaitable<void> generate(Route route, const SimRequest& sr, const FaultPlan& plan, uint64_t n,
                                 Downstream& down, Wakeup& wake, Headers headers);
  std::string stats_json() const;
};

Headers SimServer::State::rate_headers(TimePoint now) {
  Headers h;
  if (rpm.limited()) {
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(rpm.limit()));
    h.emplace_back("x-ratelimit-remaining-requests", std::to_string(rpm.remaining(now)));
    h.emplace_back("x-ratelimit-reset-requests", format_reset(rpm.until_full(now)));
  }
  if (tpm.limited()) {
    h.emplace_back("x-ratelimit-limit-tokens", std::to_string(tpm.limit()));
    h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(tpm.remaining(now)));
    h.emplace_back("x-ratelimit-reset-tokens", format_reset(tpm.until_full(now)));
  }
  return h;
}

RateWindow* SimServer::State::charge(int64_t tokens, TimePoint now) {
  if (!rpm.try_take(1, now)) return &rpm;
  if (!tpm.try_take(tokens, now)) {
    rpm.give_back(1, now);
    return &tpm;
  }
  return nullptr;
}

asio::awaitable<void> SimServer::State::handle(Request& req, Downstream& down) {
  auto self = shared_from_this();
  // What the HTTP server could not read whole is answered first, as any server answers it.
  if (!req.framing_error.empty()) {
    // What follows on this connection cannot be trusted to be framed: it closes after the answer.
    down.close_after_response();
    if (req.headers_too_large) {
      co_return co_await answer(down, 431, {},
                                openai_error("The request's headers are larger than 64 KiB.",
                                             "invalid_request_error", std::nullopt));
    }
    co_return co_await answer(
        down, 400, {},
        openai_error(fmt::format("The HTTP request could not be read: {}.", bounded_echo(req.framing_error)),
                     "invalid_request_error", std::nullopt));
  }
  if (req.too_large) {
    co_return co_await answer(
        down, 413, {},
        openai_error("The request body is larger than 32 MiB.", "invalid_request_error", std::nullopt));
  }
  if (req.over_buffer_bound) {
    Headers retry{{"retry-after", std::string("1")}};
    co_return co_await answer(
        down, 503, std::move(retry),
        openai_error("The server is overloaded or not ready yet.", "server_error", std::nullopt));
  }
  if (req.path.starts_with("/sim/")) co_return co_await admin(req, down);
  ++stats.requests;
  const uint64_t n = ++counter;
  Route route;
  if (!parse_route(req, route)) {
    co_return co_await answer(
        down, 404, {},
        openai_error(fmt::format("Invalid URL ({} {})", bounded_echo(req.method, 16), bounded_echo(req.path)),
                     "invalid_request_error", std::nullopt));
  }
  if (!options.api_key.empty()) {
    std::string presented;
    if (const auto* k = req.header("api-key")) presented = *k;
    if (const auto* a = req.header("authorization"); a && a->starts_with("Bearer ")) presented = a->substr(7);
    if (presented != options.api_key) {
      if (route.azure) {
        co_return co_await answer(down, 401, {},
                                  azure_error("401",
                                              "Access denied due to invalid subscription key or wrong API "
                                              "endpoint. Make sure to provide a valid key for an active "
                                              "subscription and use a correct regional API endpoint for "
                                              "your resource."));
      }
      std::string shown = presented.size() > 8
                              ? presented.substr(0, 3) + "*****" + presented.substr(presented.size() - 4)
                              : presented;
      co_return co_await answer(
          down, 401, {},
          openai_error(fmt::format("Incorrect API key provided: {}. You can find your API key "
                                   "at https://platform.openai.com/account/api-keys.",
                                   shown),
                       "invalid_request_error", "invalid_api_key"));
    }
  }
  if (route.azure) {
    std::string version = query_param(req.query, "api-version");
    if (version.empty() ||
        (!options.azure_api_versions.empty() && !contains(options.azure_api_versions, version))) {
      co_return co_await answer(down, 404, {}, azure_error("404", "Resource not found"));
    }
    if (!options.azure_deployments.empty() && !contains(options.azure_deployments, route.deployment)) {
      co_return co_await answer(
          down, 404, {},
          azure_error("DeploymentNotFound",
                      "The API deployment for this resource does not exist. If you created "
                      "the deployment within the last 5 minutes, please wait a moment and "
                      "try again."));
    }
  }
  if (route.op == Op::models) {
    ++stats.model_listings;
    JsonWriter w;
    w.begin_object().field("object", "list").key("data").begin_array();
    std::vector<std::string> names =
        options.models.empty() ? std::vector<std::string>{"sim"} : options.models;
    for (const auto& m : names) {
      w.begin_object()
          .field("id", m)
          .field("object", "model")
          .field("created", kCreated)
          .field("owned_by", "ballast-sim");
      w.end_object();
    }
    w.end_array().end_object();
    co_return co_await answer(down, 200, {}, w.take());
  }

  // Every field the simulator reads is checked before anything is taken for the request.
  RequestCheck checked = check_request(route.op, route.azure, req.body);
  if (!checked.request) co_return co_await answer(down, 400, {}, openai_error(checked.error));
  const SimRequest& sr = *checked.request;
  if (!route.azure && !options.models.empty() && !contains(options.models, sr.model)) {
    co_return co_await answer(
        down, 404, {},
        openai_error(fmt::format("The model `{}` does not exist or you do not have access "
                                 "to it.",
                                 bounded_echo(sr.model)),
                     "invalid_request_error", "model_not_found"));
  }

  // Faults: the request's own header wins over the server's set.
  FaultPlan plan;
  if (const auto* spec = req.header("x-sim-fault")) {
    auto parsed = parse_fault_list(*spec);
    if (!parsed.error.empty()) {
      co_return co_await answer(
          down, 400, {}, openai_error("x-sim-fault: " + parsed.error, "invalid_request_error", std::nullopt));
    }
    plan = plan_faults(parsed.faults, rng);
  } else {
    plan = plan_faults(faults, rng);
  }

  // Rate limits, as OpenAI counts them: a request, and its prompt plus its output allowance (the
  // allowance the request asks for, not what it will turn out to use).
  TimePoint now = Clock::now();
  int64_t out_tokens = sr.max_tokens.value_or(options.tokens);
  int64_t prompt_tokens = std::max<int64_t>(1, static_cast<int64_t>(req.body.size() / 4));
  if (RateWindow* refused = charge(prompt_tokens + out_tokens, now)) {
    bool by_requests = refused == &rpm;
    int64_t asked = by_requests ? 1 : prompt_tokens + out_tokens;
    auto wait_ms =
        std::max<int64_t>(1, std::chrono::duration_cast<Millis>(refused->wait_for(asked, now)).count());
    Headers h = rate_headers(now);
    h.emplace_back("retry-after", std::to_string((wait_ms + 999) / 1000));
    h.emplace_back("retry-after-ms", std::to_string(wait_ms));
    co_return co_await answer(
        down, 429, std::move(h),
        openai_error(fmt::format("Rate limit reached for sim in organization org-sim on {} per min (RPM): "
                                 "Limit {}, Requested {}. Please try again in {}ms.",
                                 by_requests ? "requests" : "tokens", refused->limit(), asked, wait_ms),
                     by_requests ? "requests" : "tokens", "rate_limit_exceeded"));
  }
  Headers headers = rate_headers(now);
  headers.emplace_back("x-request-id", fmt::format("req_sim_{}", n));

  if (plan.status) {
    if (plan.retry_after >= 0) headers.emplace_back("retry-after", std::to_string(plan.retry_after));
    int status = *plan.status;
    std::string_view type = status == 429   ? "requests"
                            : status >= 500 ? "server_error"
                                            : "invalid_request_error";
    std::optional<std::string_view> code;
    if (!plan.error_code.empty())
      code = plan.error_code;
    else if (status == 429)
      code = "rate_limit_exceeded";
    co_return co_await answer(down, status, std::move(headers),
                              openai_error(fmt::format("Simulated failure: status {}", status), type, code));
  }
  Wakeup wake(co_await asio::this_coro::executor);
  if (plan.reset) {
    down.abort(true);
    co_return;
  }
  if (plan.blackhole) {
    // Read the request, never answer: the connection stays open until the client gives up.
    down.watch_disconnect(wake);
    while (!down.client_gone()) co_await wake.wait_until(TimePoint::max());
    co_return;
  }

  // A generation slot, held until this coroutine ends, however it ends. Declared after `wake`, which
  // a grant notifies, so the claim leaves the queue before `wake` is gone.
  Capacity::Claim slot(capacity, [&wake] { wake.notify(); });
  switch (slot.ask()) {
    case Capacity::Claim::State::refused:
      headers.emplace_back("retry-after", "1");
      co_return co_await answer(
          down, 503, std::move(headers),
          openai_error("The server is overloaded or not ready yet.", "server_error", std::nullopt));
    case Capacity::Claim::State::queued:
      if (options.cancel_on_disconnect) down.watch_disconnect(wake);
      while (!slot.granted()) {
        co_await wake.wait_until(TimePoint::max());
        if (!slot.granted() && down.client_gone()) {
          ++stats.cancelled;
          co_return;
        }
      }
      break;
    case Capacity::Claim::State::granted:
    case Capacity::Claim::State::none:
      break;
  }
  co_await generate(route, sr, plan, n, down, wake, std::move(headers));
}

asio::awaitable<void> SimServer::State::generate(Route route, const SimRequest& sr, const FaultPlan& plan,
                                                 uint64_t n, Downstream& down, Wakeup& wake,
                                                 Headers headers) {
  auto self = shared_from_this();
  const std::string model = route.azure ? route.deployment : sr.model;
  const bool calls_tool = route.op == Op::chat && !sr.tool.empty();
  // A tool call's "tokens" are the pieces of its arguments, whatever --tokens says.
  std::vector<std::string> pieces;
  if (calls_tool) pieces = split_arguments(sr.tool_arguments);
  const int out_tokens =
      calls_tool
          ? static_cast<int>(pieces.size())
          : static_cast<int>(std::min<int64_t>(options.tokens, sr.max_tokens.value_or(options.tokens)));
  const Millis ttft = plan.slow_first_token_ms ? Millis(*plan.slow_first_token_ms) : options.ttft;
  const Millis headers_delay(plan.slow_headers_ms);
  TextGenerator text(options.seed, n);
  Answer a{route.op == Op::completions ? Answer::Kind::completion
           : route.op == Op::responses ? Answer::Kind::response
                                       : Answer::Kind::chat,
           model,
           n,
           kCreated,
           static_cast<int64_t>(std::max<size_t>(1, sr.model.size() + 8)),
           out_tokens,
           !calls_tool && out_tokens < options.tokens,
           calls_tool ? sr.tool : std::string()};
  size_t next_piece = 0;
  auto next_token = [&] { return calls_tool ? pieces[next_piece++] : text.next(); };
  // Sleeps that end early only when the client leaves (with --cancel-on-disconnect, or while streaming).
  auto pause = [&](Duration d) -> asio::awaitable<bool> {
    if (d <= Duration::zero()) co_return !down.client_gone();
    TimePoint until = Clock::now() + d;
    while (Clock::now() < until) {
      co_await wake.wait_until(until);
      if (down.client_gone()) co_return false;
    }
    co_return true;
  };
  auto wait_for_client_to_leave = [&]() -> asio::awaitable<void> {
    down.watch_disconnect(wake);
    while (!down.client_gone()) co_await wake.wait_until(TimePoint::max());
  };

  if (route.op == Op::embeddings) {
    if (options.cancel_on_disconnect) down.watch_disconnect(wake);
    if (!co_await pause(headers_delay + ttft)) {
      ++stats.cancelled;
      co_return;
    }
    std::string body = embeddings_body(model, sr.inputs, sr.dimensions, sr.base64, options.seed);
    if (down.peer_closed()) {
      ++stats.wasted;
      co_return;
    }
    ++stats.completed;
    co_return co_await answer(down, 200, std::move(headers), std::move(body));
  }

  if (!sr.stream) {
    if (options.cancel_on_disconnect) down.watch_disconnect(wake);
    if (!co_await pause(headers_delay + ttft + options.itl * std::max(0, out_tokens - 1))) {
      ++stats.cancelled;
      co_return;
    }
    if (plan.stall_after || plan.keepalive_only) {
      co_await wait_for_client_to_leave();
      ++stats.cancelled;
      co_return;
    }
    std::vector<std::string> tokens;
    tokens.reserve(static_cast<size_t>(out_tokens));
    for (int i = 0; i < out_tokens; ++i) tokens.push_back(next_token());
    std::string body = plan.malformed
                           ? R"({"id":"chatcmpl-sim","object":"chat.completion","choices":[{"index":)"
                           : a.whole(tokens);
    if (down.peer_closed()) {
      // The client left while this was generated: the work is wasted.
      ++stats.wasted;
      co_return;
    }
    if (plan.cut_after) {
      headers.emplace_back("content-type", "application/json");
      ++stats.by_status[200];
      co_await down.respond_partial(200, headers, body.size(),
                                    std::string_view(body).substr(0, body.size() / 2));
      down.abort(false);
      co_return;
    }
    ++stats.by_status[200];
    headers.emplace_back("content-type", "application/json");
    if (co_await down.respond(200, headers, std::move(body)))
      ++stats.completed;
    else
      ++stats.wasted;
    co_return;
  }

  // Streamed: headers now (after slow-headers), then the first token after the TTFT, then one per ITL.
  down.watch_disconnect(wake);
  if (!co_await pause(headers_delay)) {
    ++stats.cancelled;
    co_return;
  }
  headers.emplace_back("content-type", "text/event-stream; charset=utf-8");
  headers.emplace_back("cache-control", "no-cache");
  ++stats.by_status[200];
  if (!co_await down.begin_stream(200, headers)) {
    ++stats.cancelled;
    co_return;
  }
  auto send = [&](std::string_view chunk) -> asio::awaitable<bool> {
    if (down.peer_closed()) co_return false;
    co_return co_await down.write_chunk(chunk);
  };
  if (plan.keepalive_only) {
    while (co_await send(": keep-alive\n\n")) {
      if (!co_await pause(std::max(options.itl, Millis(100)))) break;
    }
    ++stats.cancelled;
    co_return;
  }
  if (!co_await pause(ttft)) {
    ++stats.cancelled;
    co_return;
  }
  std::string pending = a.stream_start();
  constexpr std::string_view kMalformed = "data: {\"id\":\"chatcmpl-sim\",\"choices\":[{\"delta\":\n\n";
  if (plan.malformed_at == 0) pending += kMalformed;
  std::vector<std::string> tokens;
  for (int i = 0; i < out_tokens; ++i) {
    if (plan.error_event && i == *plan.error_event) {
      // How providers report a failure once a stream has begun: an error object in a data event,
      // then the end of the stream.
      pending +=
          "data: {\"error\":{\"message\":\"Simulated mid-stream failure\",\"type\":\"server_error\","
          "\"param\":null,\"code\":\"server_error\"}}\n\n";
      if (co_await send(pending) && co_await down.end_stream())
        ++stats.completed;
      else
        ++stats.cancelled;
      co_return;
    }
    if (plan.cut_after && i == *plan.cut_after) {
      if (!pending.empty()) co_await send(pending);
      down.abort(false);  // a clean close with no [DONE]: the stream is cut
      co_return;
    }
    if (plan.stall_after && i == *plan.stall_after) {
      if (!pending.empty()) co_await send(pending);
      co_await wait_for_client_to_leave();
      ++stats.cancelled;
      co_return;
    }
    tokens.push_back(next_token());
    pending += a.stream_delta(tokens.back());
    if ((plan.malformed && i == 0) || (plan.malformed_at && i + 1 == *plan.malformed_at))
      pending += kMalformed;
    if (!co_await send(pending)) {
      ++stats.cancelled;
      co_return;
    }
    pending.clear();
    if (i + 1 < out_tokens && !co_await pause(options.itl)) {
      ++stats.cancelled;
      co_return;
    }
  }
  if (plan.cut_after && *plan.cut_after >= out_tokens) {
    down.abort(false);
    co_return;
  }
  std::string tail = a.stream_end(tokens, sr.include_usage);
  constexpr std::string_view kDone = "data: [DONE]\n\n";
  if (plan.no_done && std::string_view(tail).ends_with(kDone)) tail.resize(tail.size() - kDone.size());
  if (co_await send(tail) && co_await down.end_stream())
    ++stats.completed;
  else
    ++stats.cancelled;
}

asio::awaitable<void> SimServer::State::admin(Request& req, Downstream& down) {
  auto self = shared_from_this();
  Headers h{{"content-type", "application/json"}};
  if (req.path == "/sim/stats" && req.method == "GET") {
    co_await down.respond(200, h, stats_json());
    co_return;
  }
  if (req.path == "/sim/faults") {
    if (req.method == "POST" || req.method == "PUT") {
      // {"faults": ["status=503@0.5", "reset"]}, or the specs as plain text.
      std::string specs;
      if (!req.body.empty() && req.body.front() == '{') {
        simdjson::dom::element doc;
        simdjson::dom::array arr;
        if (json_parser().parse(req.body).get(doc) != simdjson::SUCCESS ||
            doc["faults"].get(arr) != simdjson::SUCCESS) {
          {
            co_await down.respond(400, h,
                                  openai_error("expected {\"faults\": [\"SPEC\", ...]}",
                                               "invalid_request_error", std::nullopt));
            co_return;
          }
        }
        for (auto item : arr) {
          std::string_view s;
          if (item.get(s) == simdjson::SUCCESS) specs += std::string(s) + ";";
        }
      } else {
        specs = req.body;
      }
      auto parsed = parse_fault_list(specs);
      if (!parsed.error.empty()) {
        {
          co_await down.respond(400, h, openai_error(parsed.error, "invalid_request_error", std::nullopt));
          co_return;
        }
      }
      faults = std::move(parsed.faults);
    } else if (req.method == "DELETE") {
      faults.clear();
    }
    JsonWriter w;
    w.begin_object().key("faults").begin_array();
    for (const auto& f : faults) w.value(f.spec);
    w.end_array().end_object();
    {
      co_await down.respond(200, h, w.take());
      co_return;
    }
  }
  co_await down.respond(404, h,
                        openai_error("the simulator serves GET /sim/stats and GET|POST|DELETE /sim/faults",
                                     "invalid_request_error", std::nullopt));
}

std::string SimServer::State::stats_json() const {
  JsonWriter w;
  w.begin_object();
  w.field("requests", stats.requests)
      .field("model_listings", stats.model_listings)
      .field("connections", server ? server->connections_accepted() : uint64_t{0});
  w.field("in_flight", static_cast<uint64_t>(capacity.in_use()))
      .field("max_in_flight", static_cast<uint64_t>(capacity.max_in_use()))
      .field("queued", static_cast<uint64_t>(capacity.queued()));
  w.field("completed", stats.completed).field("cancelled", stats.cancelled).field("wasted", stats.wasted);
  w.key("by_status").begin_object();
  for (const auto& [status, count] : stats.by_status) w.field(std::to_string(status), count);
  w.end_object().end_object();
  return w.take();
}

SimServer::SimServer(asio::io_context& io, SimOptions options)
    : state_(std::make_shared<State>(io, std::move(options))) {
  ServerOptions so;
  so.name = "ballast-sim";
  so.tls_cert_file = state_->options.tls_cert_file;
  so.tls_key_file = state_->options.tls_key_file;
  auto state = state_;
  server_ = std::make_unique<HttpServer>(
      io, so, [state](Request& req, Downstream& down) { return state->handle(req, down); });
  state_->server = server_.get();
}

SimServer::~SimServer() {
  state_->server = nullptr;
}

std::string SimServer::listen(const std::string& host_port) {
  return server_->listen(host_port);
}
void SimServer::start() {
  server_->start();
}
uint16_t SimServer::port() const {
  return server_->port();
}
std::string SimServer::address() const {
  return server_->address();
}
void SimServer::shutdown(Duration grace, std::function<void()> done) {
  server_->shutdown(grace, std::move(done));
}
std::string SimServer::stats_json() const {
  return state_->stats_json();
}

}  // namespace ballast::sim
