// The gateway: what `ballast serve` does with each request. It owns the configuration in force,
// the upstream client and the access log; request_path.cpp is the request's whole journey.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "downstream/http_types.hpp"
#include "gateway/upstreams.hpp"
#include "observability/access_log.hpp"
#include "observability/metrics.hpp"
#include "policy/proxy_env.hpp"
#include "policy/url.hpp"
#include "upstream/curl_multi.hpp"

namespace ballast {

struct AttemptResult;
struct Exchange;

class Gateway {
 public:
  // `upstreams` and `metrics` are shared with the other workers' gateways.
  Gateway(boost::asio::io_context& io, config::Config config, AccessLog& access_log, GetEnv getenv,
          Upstreams& upstreams, Metrics& metrics);

  // The Handler the downstream server calls for every request.
  boost::asio::awaitable<void> handle(Request& request, Downstream& downstream);

  const config::Config& config() const { return config_; }

 private:
  boost::asio::awaitable<void> proxy(Exchange& x, const config::Model& model, std::string_view api_path,
                                     bool stream);
  boost::asio::awaitable<AttemptResult> attempt(Exchange& x, const config::Model& model,
                                                const config::Endpoint& endpoint, std::string_view api_path,
                                                bool stream);
  // `status`: the code's own unless given (431 for headers over the limit).
  boost::asio::awaitable<void> fail(Exchange& x, ErrorCode code, std::string message, int status = 0);
  // A refusal the client may retry after `retry_after`: overload and rate limits.
  boost::asio::awaitable<void> refuse(Exchange& x, ErrorCode code, std::string message, Millis retry_after);
  // Waits `d` unless the client leaves first (false then).
  boost::asio::awaitable<bool> pause(Exchange& x, Wakeup& wake, Millis d);
  void finish(Exchange& x);
  std::string next_request_id();

  // What each endpoint needs on every request, worked out once: the environment and the
  // configuration do not change while ballast runs.
  struct EndpointFacts {
    std::string scheme;
    std::string host;
    ProxyChoice proxy;
    std::string endpoint_labels;        // for /metrics: endpoint="…"
    std::string model_endpoint_labels;  // model="…",endpoint="…"
  };
  const EndpointFacts& facts(const config::Endpoint& endpoint) const { return facts_.at(&endpoint); }
  std::unordered_map<const config::Endpoint*, EndpointFacts> facts_;

  size_t model_index(const config::Model& m) const { return static_cast<size_t>(&m - config_.models.data()); }

  config::Config config_;
  CurlMulti multi_;
  AccessLog& access_log_;
  Upstreams& upstreams_;
  Metrics& metrics_;
  GetEnv getenv_;
  bool in_container_ = false;
  uint64_t id_prefix_ = 0;
  uint64_t id_counter_ = 0;
};

// True when this process runs inside a container (Docker, Podman, Kubernetes), where
// "localhost" is the container itself. BALLAST_CONTAINER=0 or 1 overrides the guess.
bool running_in_container();

}  // namespace ballast
