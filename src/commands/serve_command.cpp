// `ballast serve`: load and validate the configuration, start the built-in simulators it names,
// listen, and drain gracefully on SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <list>

#include <spdlog/spdlog.h>

#include "commands/commands.hpp"
#include "config/load.hpp"
#include "downstream/http_server.hpp"
#include "gateway/gateway.hpp"
#include "policy/duration.hpp"

namespace ballast {

namespace {

const char* env(const char* name) { return std::getenv(name); }

config::LoadResult load_config(const ServeArgs& args) {
  if (!args.config_file.empty()) return config::load_file(args.config_file, env);
  if (auto from_env = config::from_environment(env); from_env.found) return std::move(from_env.result);
  config::LoadResult builtin;
  builtin.config = config::builtin_sim();
  return builtin;
}

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

  boost::asio::io_context io(1);

  // `provider: sim` endpoints are answered by simulators inside this process, reached over
  // loopback like any other upstream, so the request path has no special case for them.
  std::list<sim::SimServer> sims;
  for (auto& model : cfg.models) {
    for (auto& ep : model.endpoints) {
      if (ep.provider != config::Provider::sim) continue;
      sim::SimOptions so;
      so.ttft = ep.sim.ttft;
      so.itl = ep.sim.itl;
      so.tokens = ep.sim.tokens;
      auto& s = sims.emplace_back(io, so);
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
  Gateway gateway(io, cfg, access_log, env);
  ServerOptions so;
  so.max_body_bytes = cfg.max_request_bytes;
  HttpServer server(io, so, [&gateway](Request& req, Downstream& down) { return gateway.handle(req, down); });
  if (auto err = server.listen(cfg.listen); !err.empty()) {
    spdlog::error("{}", err);
    return 1;
  }
  server.start();

  if (cfg.models.size() == 1 && cfg.models[0].name == "sim" && cfg.models[0].endpoints[0].provider == config::Provider::sim &&
      args.config_file.empty()) {
    spdlog::info("no config and no provider variables (OPENAI_API_KEY, AZURE_OPENAI_*): serving the built-in "
                 "simulated model 'sim'");
  } else {
    for (const auto& m : cfg.models) {
      for (const auto& ep : m.endpoints) {
        spdlog::info("model '{}' → {} endpoint {}", m.name, config::provider_name(ep.provider), ep.name);
      }
    }
  }
  spdlog::info("ballast serve listening on http://{} (config: {})", server.address(), cfg.source);

  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("second signal: exiting now");
      io.stop();
      return;
    }
    stopping = true;
    spdlog::info("{}: no new connections; letting {} connection(s) finish (shutdown_grace {})",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", server.connections(), format_duration(cfg.shutdown_grace));
    server.shutdown(cfg.shutdown_grace, [&] {
      spdlog::info("drained: exiting");
      io.stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  io.run();
  return 0;
}

}  // namespace ballast
