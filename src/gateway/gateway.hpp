// The gateway: what `ballast serve` does with each request. It owns the configuration in force,
// the upstream client and the access log; request_path.cpp is the request's whole journey.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
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

// The configuration in force and what is made from it: the endpoints' shared state and what each
// request needs to know about them, worked out once. Every worker serves the same one. A reload
// makes a new one; each request keeps the one it began with until it ends, so it finishes under the
// settings it started with.
class Generation {
 public:
  // `previous`: the one a reload replaces; state carries over from it (see Upstreams). `shared`:
  // the limits shared through Redis, when redis: is configured.
  Generation(config::Config config, Metrics& metrics, const GetEnv& getenv, Generation* previous,
             SharedLimits* shared = nullptr);
  ~Generation() = default;
  Generation(const Generation&) = delete;  // facts point into config
  Generation& operator=(const Generation&) = delete;
  Generation(Generation&&) = delete;
  Generation& operator=(Generation&&) = delete;

  struct EndpointFacts {
    std::string scheme;
    std::string host;
    ProxyChoice proxy;
    std::string endpoint_labels;        // for /metrics: endpoint="…"
    std::string model_endpoint_labels;  // model="…",endpoint="…"
  };
  const EndpointFacts& facts(const config::Endpoint& endpoint) const { return facts_.at(&endpoint); }
  size_t model_index(const config::Model& m) const { return static_cast<size_t>(&m - config.models.data()); }

  const config::Config config;
  Upstreams upstreams;
  const uint64_t number;  // 1 for the configuration ballast started with, then one more per reload

 private:
  std::unordered_map<const config::Endpoint*, EndpointFacts> facts_;
};

class Gateway {
 public:
  // `metrics` is shared with the other workers' gateways, as `generation` is.
  Gateway(boost::asio::io_context& io, std::shared_ptr<Generation> generation, AccessLog& access_log,
          Metrics& metrics);

  // The Handler the downstream server calls for every request.
  boost::asio::awaitable<void> handle(Request& request, Downstream& downstream);
  // The admin listener's (admin_listen): /metrics, /ballast/status, /healthz and /readyz, to anyone.
  boost::asio::awaitable<void> handle_admin(Request& request, Downstream& downstream);
  // With an admin listener, the main one no longer serves /metrics and /ballast/status.
  void admin_elsewhere() { admin_elsewhere_ = true; }
  // The process is draining: /readyz says so. Called on this worker's thread.
  void drain() { draining_ = true; }

  // New requests use `generation` from now on. Called on this worker's thread.
  void use(std::shared_ptr<Generation> generation) { generation_ = std::move(generation); }

 private:
  enum class Side { main, admin };
  boost::asio::awaitable<void> serve(Request& request, Downstream& downstream, Side side);
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

  std::shared_ptr<Generation> generation_;
  CurlMulti multi_;
  AccessLog& access_log_;
  Metrics& metrics_;
  bool in_container_ = false;
  bool admin_elsewhere_ = false;
  bool draining_ = false;
  uint64_t id_prefix_ = 0;
  uint64_t id_counter_ = 0;
};

// True when this process runs inside a container (Docker, Podman, Kubernetes), where
// "localhost" is the container itself. BALLAST_CONTAINER=0 or 1 overrides the guess.
bool running_in_container();

}  // namespace ballast
