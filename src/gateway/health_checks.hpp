// Active health checks: GET {base}{path} on each endpoint that has them, every interval, on a
// thread and loop of their own so they never queue behind client traffic. A check passes on any
// HTTP answer below 500 (the endpoint is up and speaking HTTP); a failure counts like a failed
// request in outlier detection, and a pass readmits an ejected endpoint at once.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>

#include "config/config.hpp"
#include "gateway/upstreams.hpp"
#include "policy/proxy_env.hpp"
#include "upstream/curl_multi.hpp"

namespace ballast {

// Whether `endpoint` gets active checks: as configured, else yes for the built-in simulator and
// local servers (is_local_host), no for the rest (paid providers).
bool health_checks_enabled(const config::Endpoint& ep);

class HealthChecks {
 public:
  HealthChecks(const config::Config& config, Upstreams& upstreams, GetEnv getenv);
  ~HealthChecks();
  HealthChecks(const HealthChecks&) = delete;  // its thread runs on this object
  HealthChecks& operator=(const HealthChecks&) = delete;
  HealthChecks(HealthChecks&&) = delete;
  HealthChecks& operator=(HealthChecks&&) = delete;
  // Starts the thread when any endpoint has checks; returns how many do.
  int start();
  void stop();

 private:
  boost::asio::awaitable<void> run(size_t mi, size_t ei);  // model and endpoint index

  const config::Config& config_;
  Upstreams& upstreams_;
  GetEnv getenv_;
  boost::asio::io_context io_{1};
  std::unique_ptr<CurlMulti> multi_;
  std::thread thread_;
};

}  // namespace ballast
