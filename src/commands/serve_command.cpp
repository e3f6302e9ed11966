// `ballast serve`: load and validate the configuration, start the built-in simulators it names,
// start the workers, and drain them gracefully on SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <list>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "commands/commands.hpp"
#include "config/load.hpp"
#include "downstream/http_server.hpp"
#include "gateway/gateway.hpp"
#include "gateway/health_checks.hpp"
#include "policy/duration.hpp"

namespace ballast {

namespace {

const char* env(const char* name) {
  return std::getenv(name);
}

config::LoadResult load_config(const ServeArgs& args) {
  if (!args.config_file.empty()) return config::load_file(args.config_file, env);
  if (auto from_env = config::from_environment(env); from_env.found) return std::move(from_env.result);
  config::LoadResult builtin;
  builtin.config = config::builtin_sim();
  return builtin;
}

}  // namespace

namespace {

// One thread serving requests: its own loop, gateway (and so its own curl multi and connection
// pools) and listener. Workers share only the read-only configuration and the access log.
struct Worker {
  // Only this worker's thread touches its sockets and timers, so the reactor needs no locks; the
  // scheduler keeps its own, for the main thread's shutdown post.
  boost::asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

}  // namespace

int run_serve(const ServeArgs& args) {
  config::LoadResult loaded = load_config(args);
  setup_logging(loaded.ok() ? loaded.config.log_level : "info");
  if (!loaded.ok()) {
    spdlog::error("the configuration has {} problem(s); nothing was started:", loaded.errors.size());
    for (const auto& e : loaded.errors) spdlog::error("  {}", e);
    return 2;
  }
  config::Config cfg = std::move(loaded.config);
  if (!args.listen.empty()) cfg.listen = args.listen;
  if (args.workers > 0) cfg.workers = args.workers;
  const int workers =
      cfg.workers > 0 ? cfg.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // `provider: sim` endpoints are answered by simulators inside this process, on a thread of their
  // own, reached over loopback like any other upstream: the request path has no special case for them.
  boost::asio::io_context sim_io(1);
  std::list<sim::SimServer> sims;
  for (auto& model : cfg.models) {
    for (auto& ep : model.endpoints) {
      if (ep.provider != config::Provider::sim) continue;
      sim::SimOptions so;
      so.ttft = ep.sim.ttft;
      so.itl = ep.sim.itl;
      so.tokens = ep.sim.tokens;
      auto& s = sims.emplace_back(sim_io, so);
      if (auto err = s.listen("127.0.0.1:0"); !err.empty()) {
        spdlog::error("cannot start the built-in simulator: {}", err);
        return 1;
      }
      s.start();
      ep.base_url = "http://" + s.address() + "/v1";
    }
  }

  AccessLog access_log;
  if (auto err = access_log.open(cfg.access_log); !err.empty()) {
    spdlog::error("{}", err);
    return 2;
  }
  // The signals are caught from here on, before anything is served: one that arrives before the
  // handlers below are armed waits for them instead of taking its default action.
  boost::asio::io_context main_io(1);
  boost::asio::signal_set signals(main_io, SIGTERM, SIGINT);
  boost::asio::signal_set hangup(main_io, SIGHUP);
  ServerOptions so;
  so.max_body_bytes = cfg.max_request_bytes;
  // What the workers share: the endpoints' slots, queues, health and limits, and the metrics.
  Metrics metrics;
  Upstreams upstreams(cfg, metrics);
  std::vector<std::unique_ptr<Worker>> pool;
  std::string address = cfg.listen;
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->gateway = std::make_unique<Gateway>(w->io, cfg, access_log, env, upstreams, metrics);
    Gateway* gateway = w->gateway.get();
    w->server = std::make_unique<HttpServer>(
        w->io, so, [gateway](Request& req, Downstream& down) { return gateway->handle(req, down); });
    // The first worker binds (port 0 picks a free port); the others accept on the same socket. It
    // is bound once, without SO_REUSEPORT, so a second ballast started on the port fails instead of
    // splitting the traffic with this one.
    std::string err = i == 0 ? w->server->listen(address) : w->server->share_listener(*pool.front()->server);
    if (!err.empty()) {
      spdlog::error("{}", err);
      return 1;
    }
    if (i == 0) address = w->server->address();
    w->server->start();
    pool.push_back(std::move(w));
  }

  if (cfg.models.size() == 1 && cfg.models[0].name == "sim" &&
      cfg.models[0].endpoints[0].provider == config::Provider::sim && args.config_file.empty()) {
    spdlog::info(
        "no config and no provider variables (OPENAI_API_KEY, AZURE_OPENAI_*): serving the built-in "
        "simulated model 'sim'");
  } else {
    for (const auto& m : cfg.models) {
      for (const auto& ep : m.endpoints) {
        spdlog::info("model '{}' → {} endpoint {}", m.name, config::provider_name(ep.provider), ep.name);
      }
    }
  }

  std::thread sim_thread;
  if (!sims.empty()) sim_thread = std::thread([&] { sim_io.run(); });
  HealthChecks checks(cfg, upstreams, env);
  if (int n = checks.start(); n > 0) spdlog::info("active health checks on {} endpoint(s)", n);
  for (auto& w : pool) w->thread = std::thread([&io = w->io] { io.run(); });
  spdlog::info("ballast serve listening on http://{} ({} worker(s), config: {})", address, workers,
               cfg.source);

  // Signals on the main thread: the first drains every worker, a second one ends at once.
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (stopping) {
          spdlog::warn("second signal: exiting now");
          for (auto& w : pool) w->io.stop();
          main_io.stop();
          return;
        }
        stopping = true;
        spdlog::info("{}: no new connections; letting in-flight requests finish (shutdown_grace {})",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", format_duration(cfg.shutdown_grace));
        for (auto& w : pool) {
          boost::asio::post(w->io, [&w = *w, grace = cfg.shutdown_grace] {
            w.server->shutdown(grace, [&w] { w.io.stop(); });
          });
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  // SIGHUP's default action would end the process and cut every stream. Until reloading lands, it
  // is caught and said to do nothing.
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        spdlog::warn(
            "SIGHUP: reloading the configuration is not supported yet; restart ballast to apply a new one");
        hangup.async_wait(on_hangup);
      };
  hangup.async_wait(on_hangup);
  std::thread waiter([&] {
    for (auto& w : pool) w->thread.join();
    boost::asio::post(main_io, [&] { main_io.stop(); });
  });
  main_io.run();
  waiter.join();
  checks.stop();
  sim_io.stop();
  if (sim_thread.joinable()) sim_thread.join();
  spdlog::info("drained: exiting");
  return 0;
}

}  // namespace ballast
