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
  bool check = false;       // validate the configuration and exit: 0 when good, 2 with its problems
};
int run_serve(const ServeArgs& args);

struct SimArgs {
  std::string listen = "127.0.0.1:8000";
  std::vector<std::string> faults;
  sim::SimOptions options;
};
int run_sim(const SimArgs& args);

struct DoctorArgs {
  std::string config_file;  // check every endpoint of this config
  std::string base_url;     // or this one endpoint
  std::string provider;     // openai or azure
  std::string api_key_env;  // the variable holding its key
  std::string model, deployment, api_version;
  double timeout_s = 0;  // the first-token bound; 0: the config's, or 30 s
  double connect_timeout_s = 3;
  int probe_concurrency = 0;
  bool json = false;
};
int run_doctor(const DoctorArgs& args);

struct LoadArgs {
  std::string target;  // base URL, as a client's base_url: http://127.0.0.1:4000/v1
  std::string model;
  std::string api_key_env;
  int concurrency = 0;
  double rate = 0;
  bool sweep = false;
  double duration_s = 0;  // 0: 10 s for one run, 5 s per step of a sweep
  bool stream = false;
  int max_tokens = 64;
  int prompt_tokens = 32;
  double timeout_s = 60;
  double slo_ttft_ms = 0, slo_latency_ms = 0;
  double max_error_rate = 0.01;
  std::string json_file, html_file;
  uint64_t seed = 1;
  bool respect_retry_after = true;  // closed loop: wait as a 429/503's Retry-After says
  std::string command;              // the command line, for the reports
  std::string version;              // ballast's, for the reports
};
int run_load(const LoadArgs& args);

// argv as one line a shell would run again: arguments quoted where they need it.
std::string command_line(int argc, const char* const* argv);

// Logs to stderr; the access log owns stdout.
void setup_logging(const std::string& level);

}  // namespace ballast
