// `ballast serve`: load and validate the configuration, start the built-in simulators it names,
// start the workers, and drain them gracefully on SIGTERM.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <future>
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
#include "gateway/shared_limits.hpp"
#include "policy/duration.hpp"

namespace ballast {

namespace {

const char* env(const char* name) {
  return std::getenv(name);
}

config::LoadResult load_config(const ServeArgs& args) {
  config::LoadResult loaded;
  if (!args.config_file.empty())
    loaded = config::load_file(args.config_file, env);
  else if (auto from_env = config::from_environment(env); from_env.found)
    loaded = std::move(from_env.result);
  else
    loaded.config = config::builtin_sim();
  // https endpoints without a ca_bundle: trust what REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or
  // SSL_CERT_FILE names, as the clients in front of ballast do (config::choose_ca_bundle).
  config::apply_ca_environment(loaded, env);
  return loaded;
}

}  // namespace

namespace {

// One thread serving requests: its own loop, gateway (and so its own curl multi and connection
// pools) and listener. Workers share the configuration in force (a Generation), the access log and
// the metrics.
struct Worker {
  // Only this worker's thread touches its sockets and timers, so the reactor needs no locks; the
  // scheduler keeps its own, for the main thread's posts (reload, shutdown).
  boost::asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

// The simulators behind `provider: sim` endpoints, on a thread of their own, reached over loopback
// like any other upstream: the request path has no special case for them. A reload keeps the
// simulator of an endpoint whose name and settings stay.
class BuiltinSims {
 public:
  BuiltinSims() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~BuiltinSims() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  BuiltinSims(const BuiltinSims&) = delete;  // its thread runs on this object
  BuiltinSims& operator=(const BuiltinSims&) = delete;
  BuiltinSims(BuiltinSims&&) = delete;
  BuiltinSims& operator=(BuiltinSims&&) = delete;

  // Points every sim endpoint of `cfg` at its simulator, starting those it lacks. "" or an error.
  std::string attach(config::Config& cfg) {
    std::promise<std::string> done;
    boost::asio::post(io_, [&] {
      std::string err;
      for (auto& model : cfg.models) {
        for (auto& ep : model.endpoints) {
          if (ep.provider != config::Provider::sim || !err.empty()) continue;
          Sim* sim = find(model.name + "/" + ep.name, ep.sim);
          if (!sim) {
            sim::SimOptions so;
            so.ttft = ep.sim.ttft;
            so.itl = ep.sim.itl;
            so.tokens = ep.sim.tokens;
            sim = &sims_.emplace_back(io_, so, model.name + "/" + ep.name, ep.sim);
            if (err = sim->server.listen("127.0.0.1:0"); !err.empty()) {
              err.insert(0, "cannot start the built-in simulator: ");
              sims_.pop_back();
              continue;
            }
            sim->server.start();
          }
          ep.base_url = "http://" + sim->server.address() + "/v1";
        }
      }
      done.set_value(err);
    });
    return done.get_future().get();
  }

 private:
  struct Sim {
    Sim(boost::asio::io_context& io, const sim::SimOptions& so, std::string k, const config::SimOptions& s)
        : server(io, so), key(std::move(k)), settings(s) {}
    sim::SimServer server;
    std::string key;  // model/endpoint
    config::SimOptions settings;
  };
  Sim* find(const std::string& key, const config::SimOptions& settings) {
    for (auto& s : sims_) {
      if (s.key == key && s.settings == settings) return &s;
    }
    return nullptr;
  }

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::list<Sim> sims_;  // only touched on io_'s thread
  std::thread thread_;
};

// The settings a running process cannot change: they shape its sockets, threads and files.
void warn_restart_only(const config::Config& running, const config::Config& loaded) {
  auto warn = [](std::string_view key) {
    spdlog::warn("reload: {} changed; it takes effect when ballast restarts", key);
  };
  if (loaded.listen != running.listen) warn("listen");
  if (loaded.workers != running.workers) warn("workers");
  if (loaded.access_log != running.access_log) warn("log.access");
  if (loaded.admin_listen != running.admin_listen) warn("admin_listen");
  if (loaded.max_request_bytes != running.max_request_bytes) warn("limits.max_request_body");
  if (loaded.max_connections != running.max_connections) warn("limits.max_connections");
  if (loaded.max_buffered_bytes != running.max_buffered_bytes) warn("limits.max_buffered_bytes");
  if (loaded.redis != running.redis) warn("redis");
}

void log_models(const config::Config& cfg) {
  for (const auto& m : cfg.models) {
    for (const auto& ep : m.endpoints) {
      spdlog::info("model '{}' → {} endpoint {}", m.name, config::provider_name(ep.provider), ep.name);
    }
  }
}

}  // namespace

int check_config(const ServeArgs& args) {
  config::LoadResult loaded = load_config(args);
  if (!loaded.ok()) {
    fmt::print(stderr, "{}: {} problem(s):\n", loaded.config.source, loaded.errors.size());
    for (const auto& e : loaded.errors) fmt::print(stderr, "  {}\n", e);
    return 2;
  }
  size_t endpoints = 0;
  for (const auto& m : loaded.config.models) endpoints += m.endpoints.size();
  fmt::print("{}: ok ({} model(s), {} endpoint(s))\n", loaded.config.source, loaded.config.models.size(),
             endpoints);
  return 0;
}

int run_serve(const ServeArgs& args) {
  if (args.check) return check_config(args);
  config::LoadResult loaded = load_config(args);
  setup_logging(loaded.ok() ? loaded.config.log_level : "info");
  if (!loaded.ok()) {
    spdlog::error("the configuration has {} problem(s); nothing was started:", loaded.errors.size());
    for (const auto& e : loaded.errors) spdlog::error("  {}", e);
    return 2;
  }
  auto apply_overrides = [&](config::Config& cfg) {
    if (!args.listen.empty()) cfg.listen = args.listen;
    if (args.workers > 0) cfg.workers = args.workers;
  };
  config::Config cfg = std::move(loaded.config);
  apply_overrides(cfg);
  const int workers =
      cfg.workers > 0 ? cfg.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  BuiltinSims sims;
  if (auto err = sims.attach(cfg); !err.empty()) {
    spdlog::error("{}", err);
    return 1;
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
  so.load->max_connections = cfg.max_connections;
  so.load->max_buffered_bytes = static_cast<int64_t>(cfg.max_buffered_bytes);
  Metrics metrics;
  const bool builtin_default = cfg.models.size() == 1 && cfg.models[0].name == "sim" &&
                               cfg.models[0].endpoints[0].provider == config::Provider::sim &&
                               args.config_file.empty();
  // The limits shared with the other replicas, when redis: is set: connected in the background, and
  // kept across reloads (a change to redis: takes a restart).
  std::unique_ptr<SharedLimits> shared;
  if (cfg.redis) {
    shared = std::make_unique<SharedLimits>(*cfg.redis);
    shared->start();
  }
  auto generation = std::make_shared<Generation>(std::move(cfg), metrics, env, nullptr, shared.get());
  // What the sockets and threads were made from: a copy, as a reload replaces the generation.
  const config::Config started = generation->config;
  std::vector<std::unique_ptr<Worker>> pool;
  std::string address = started.listen;
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->gateway = std::make_unique<Gateway>(w->io, generation, access_log, metrics);
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

  // The admin listener, when configured, on the main thread's loop with a gateway of its own: it
  // stays open while the workers drain (its /readyz says so) until the process exits. /metrics and
  // /ballast/status move there, to anyone who can reach it, and leave the main listener.
  std::unique_ptr<Gateway> admin_gateway;
  std::unique_ptr<HttpServer> admin;
  if (!started.admin_listen.empty()) {
    admin_gateway = std::make_unique<Gateway>(main_io, generation, access_log, metrics);
    ServerOptions ao;
    ao.max_body_bytes = size_t{64} * 1024;
    admin = std::make_unique<HttpServer>(
        main_io, ao,
        [g = admin_gateway.get()](Request& req, Downstream& down) { return g->handle_admin(req, down); });
    if (auto err = admin->listen(started.admin_listen); !err.empty()) {
      spdlog::error("admin_listen: {}", err);
      return 1;
    }
    admin->start();
    for (auto& w : pool) w->gateway->admin_elsewhere();
    spdlog::info("admin pages (/metrics, /ballast/status, /readyz) on http://{}", admin->address());
  }

  if (builtin_default) {
    spdlog::info(
        "no config and no provider variables (OPENAI_API_KEY, AZURE_OPENAI_*): serving the built-in "
        "simulated model 'sim'");
  } else {
    log_models(started);
  }

  auto checks = std::make_unique<HealthChecks>(generation->config, generation->upstreams, env);
  if (int n = checks->start(); n > 0) spdlog::info("active health checks on {} endpoint(s)", n);
  for (auto& w : pool) w->thread = std::thread([&io = w->io] { io.run(); });
  spdlog::info("ballast serve listening on http://{} ({} worker(s), config: {})", address, workers,
               started.source);

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
        if (admin_gateway) admin_gateway->drain();
        spdlog::info("{}: no new connections; letting in-flight requests finish (shutdown_grace {})",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     format_duration(generation->config.shutdown_grace));
        // Queued requests that could not finish before the grace ends are refused now, with when
        // to come back, instead of waiting for a slot until the process ends under them.
        generation->upstreams.drain(Clock::now() + generation->config.shutdown_grace);
        for (auto& w : pool) {
          // The admin listener stays open until the process exits: /readyz there says draining.
          boost::asio::post(w->io, [&w = *w, grace = generation->config.shutdown_grace] {
            w.gateway->drain();
            w.server->shutdown(grace, [&w] { w.io.stop(); });
          });
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  // SIGHUP reloads: a configuration with any problem is refused whole and the running one stays;
  // a good one serves every request that arrives from then on, while those in flight finish under
  // the one they started with.
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        hangup.async_wait(on_hangup);
        if (stopping) return;
        config::LoadResult next = load_config(args);
        if (!next.ok()) {
          spdlog::error("reload refused: {} has {} problem(s); the running configuration stays:",
                        next.config.source, next.errors.size());
          for (const auto& e : next.errors) spdlog::error("  {}", e);
          return;
        }
        apply_overrides(next.config);
        if (auto err = sims.attach(next.config); !err.empty()) {
          spdlog::error("reload refused: {}; the running configuration stays", err);
          return;
        }
        warn_restart_only(started, next.config);
        spdlog::set_level(spdlog::level::from_str(next.config.log_level));
        checks->stop();
        generation = std::make_shared<Generation>(std::move(next.config), metrics, env, generation.get(),
                                                  shared.get());
        for (auto& w : pool) {
          boost::asio::post(w->io, [&w = *w, g = generation] { w.gateway->use(g); });
        }
        if (admin_gateway) admin_gateway->use(generation);
        checks = std::make_unique<HealthChecks>(generation->config, generation->upstreams, env);
        checks->start();
        spdlog::info(
            "reloaded {} (configuration #{}): {} model(s); requests in flight finish under the previous one",
            generation->config.source, generation->number, generation->config.models.size());
        log_models(generation->config);
      };
  hangup.async_wait(on_hangup);
  std::thread waiter([&] {
    for (auto& w : pool) w->thread.join();
    boost::asio::post(main_io, [&] { main_io.stop(); });
  });
  main_io.run();
  waiter.join();
  checks->stop();
  if (shared) shared->stop();
  spdlog::info("drained: exiting");
  return 0;
}

}  // namespace ballast
