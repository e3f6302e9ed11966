// The commands of the one `ballast` binary. Each returns the process exit status.
#pragma once

#include <string>
#include <vector>

#include "sim/sim_server.hpp"

namespace ballast {

struct ServeArgs {
  std::string config_file;  // empty: the provider variables, or the built-in simulated model
  std::string listen;       // overrides the config's listen
  int workers = 0;          // overrides the config's workers
};
int run_serve(const ServeArgs& args);

struct SimArgs {
  std::string listen = "127.0.0.1:8000";
  std::vector<std::string> faults;
  sim::SimOptions options;
};
int run_sim(const SimArgs& args);

// Logs to stderr; the access log owns stdout.
void setup_logging(const std::string& level);

}  // namespace ballast
