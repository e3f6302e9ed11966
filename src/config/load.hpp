// Loading ballast's configuration: from a YAML file, from the provider variables in the
// environment, or the built-in simulated model. Every problem is reported, each with its file,
// line and key, before anything starts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "policy/proxy_env.hpp"

namespace ballast::config {

struct LoadResult {
  Config config;
  std::vector<std::string> errors;  // "FILE:LINE: KEY: what is wrong"
  bool ok() const { return errors.empty(); }
};

LoadResult load_file(const std::string& path, const GetEnv& getenv);
LoadResult load_yaml(std::string_view text, const std::string& name, const GetEnv& getenv);

// With no config file: OPENAI_API_KEY (+ OPENAI_BASE_URL), or AZURE_OPENAI_ENDPOINT +
// AZURE_OPENAI_API_KEY + OPENAI_API_VERSION + AZURE_OPENAI_DEPLOYMENT, front that provider for
// any model name. `found` is false when none of those variables is set.
struct EnvironmentResult {
  bool found = false;
  LoadResult result;
};
EnvironmentResult from_environment(const GetEnv& getenv);

// One model, "sim", answered by the built-in simulator.
Config builtin_sim();

// Replaces ${NAME} and ${NAME:-default}. Unset names without a default are appended to `missing`.
std::string expand_env(std::string_view text, const GetEnv& getenv, std::vector<std::string>& missing);

}  // namespace ballast::config
