#include "gateway/health_checks.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <fmt/format.h>

#include "gateway/gateway.hpp"
#include "policy/classify.hpp"
#include "policy/deadline.hpp"
#include "policy/duration.hpp"
#include "policy/failure_message.hpp"
#include "policy/upstream_target.hpp"
#include "policy/url.hpp"

namespace ballast {

namespace asio = boost::asio;

bool health_checks_enabled(const config::Endpoint& ep) {
  if (ep.health_check.enabled) return *ep.health_check.enabled;
  if (ep.provider == config::Provider::sim) return true;
  auto url = parse_url(ep.base_url.empty() ? ep.endpoint : ep.base_url);
  return url && is_local_host(url->host);
}

HealthChecks::HealthChecks(const config::Config& config, Upstreams& upstreams, GetEnv getenv)
    : config_(config), upstreams_(upstreams), getenv_(std::move(getenv)) {}

HealthChecks::~HealthChecks() {
  stop();
}

int HealthChecks::start() {
  int count = 0;
  for (size_t mi = 0; mi < config_.models.size(); ++mi) {
    for (size_t ei = 0; ei < config_.models[mi].endpoints.size(); ++ei) {
      if (!health_checks_enabled(config_.models[mi].endpoints[ei])) continue;
      if (!multi_) multi_ = std::make_unique<CurlMulti>(io_);
      asio::co_spawn(io_, run(mi, ei), asio::detached);
      ++count;
    }
  }
  if (count > 0) thread_ = std::thread([this] { io_.run(); });
  return count;
}

void HealthChecks::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> HealthChecks::run(size_t mi, size_t ei) {
  const config::Model& model = config_.models[mi];
  const config::Endpoint& ep = model.endpoints[ei];
  const PhaseBounds bounds = config::effective_bounds(config_, model, ep);
  UpstreamTarget target = upstream_target(ep, ep.health_check.path, "");
  auto url = parse_url(target.url);
  ProxyChoice proxy = choose_proxy(url ? url->scheme : "http", url ? url->host : "", ep.proxy, getenv_);
  const bool in_container = running_in_container();
  // A check answers within the connect bound plus a few seconds, or it failed.
  const Duration allowed = bounds.connect + std::min<Millis>(ep.health_check.interval, Millis(5'000));
  asio::steady_timer timer(co_await asio::this_coro::executor);
  Wakeup wake(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(ep.health_check.interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    UpstreamRequest request;
    request.method = "GET";
    request.url = target.url;
    if (!target.credential.empty()) request.headers.push_back(target.credential);
    request.connect_timeout = bounds.connect;
    request.proxy = proxy.url;
    request.ca_bundle = ep.ca_bundle;
    Transfer t(*multi_, std::move(request), wake);
    t.start();
    const TimePoint until = Clock::now() + allowed;
    while (!t.done() && Clock::now() < until) {
      if (!t.buffered().empty()) t.take();
      co_await wake.wait_until(until);
    }
    bool ok = t.done() && health_check_passed(t.error(), t.status());
    std::string detail;
    if (!ok) {
      // The facts, as a request's attempt reports them: classified and worded as ballast words a
      // failed request, curl's own text at most a detail inside the message.
      Outcome o;
      o.status = t.status();
      o.timings = t.timings();
      o.timings.total_ms = to_ms(Clock::now() - t.started_at());
      if (!t.done()) {
        o.timer = ErrorCode::first_byte_timeout;
      } else {
        o.transport = t.error();
        o.detail = t.error_text();
      }
      const Verdict verdict = classify(o);
      FailureContext ctx{ep.name,     url ? std::string_view(url->host) : std::string_view(),
                         proxy.url,   proxy.source,
                         &bounds,     nullptr,
                         in_container};
      ctx.url = ep.base_url.empty() ? ep.endpoint : ep.base_url;
      std::string message =
          t.done() ? describe_failure(verdict.code, o, ctx)
                   : fmt::format(
                         "upstream {} sent no answer within {}, the check's bound (timeouts.connect + "
                         "min(health_check.interval, 5s)): it is overloaded or stuck",
                         ep.name, format_duration(std::chrono::duration_cast<Millis>(allowed)));
      detail = fmt::format("GET {}: {}: {}", ep.health_check.path, code_name(verdict.code), message);
    }
    t.cancel();
    upstreams_.check_result(mi, ei, ok, detail, Clock::now());
  }
}

}  // namespace ballast
