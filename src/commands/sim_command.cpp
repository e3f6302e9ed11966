// `ballast sim`: the OpenAI-compatible upstream simulator as a process of its own.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/spdlog.h>

#include "commands/commands.hpp"

namespace ballast {

int run_sim(const SimArgs& args) {
  setup_logging("info");
  sim::SimOptions options = args.options;
  for (const auto& spec : args.faults) {
    auto parsed = sim::parse_fault(spec);
    if (!parsed.fault) {
      spdlog::error("--fault {}", parsed.error);
      return 2;
    }
    options.faults.push_back(*parsed.fault);
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    spdlog::error("--tls-cert and --tls-key go together");
    return 2;
  }
  boost::asio::io_context io(1);
  sim::SimServer server(io, options);
  if (auto err = server.listen(args.listen); !err.empty()) {
    spdlog::error("{}", err);
    return 1;
  }
  server.start();
  std::string scheme = options.tls_cert_file.empty() ? "http" : "https";
  spdlog::info("ballast sim listening on {}://{} (capacity {}, ttft {}ms, itl {}ms, {} tokens, seed {})",
               scheme, server.address(),
               options.capacity > 0 ? std::to_string(options.capacity) : "unlimited", options.ttft.count(),
               options.itl.count(), options.tokens, options.seed);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    // A simulator has nothing worth draining: stop at once, as a crashed upstream would.
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace ballast
