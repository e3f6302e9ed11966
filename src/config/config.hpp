// What `ballast serve` is configured to do, as plain values. Loading and validation live in
// config/load.cpp; everything else reads these structs and never sees YAML.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "policy/deadline.hpp"

namespace ballast::config {

enum class Provider { openai, azure, sim };

std::string_view provider_name(Provider p);

// A timeouts block at model or endpoint level: unset keys inherit from the level above.
struct TimeoutOverrides {
  std::optional<Millis> connect, first_byte, first_token, stream_idle, total;
};

// The built-in simulator's behaviour, for `provider: sim`.
struct SimOptions {
  Millis ttft{100};  // time to first token
  Millis itl{10};    // inter-token latency
  int tokens = 32;   // tokens per answer
};

struct Endpoint {
  std::string name;  // for logs and messages; defaults to host:port
  Provider provider = Provider::openai;
  std::string base_url;     // openai; azure's /openai/v1 form; sim: filled in when it starts
  std::string endpoint;     // azure: https://RESOURCE.openai.azure.com
  std::string deployment;   // azure
  std::string api_version;  // azure
  std::string api_key;      // already resolved from ${ENV}; never logged
  std::string proxy;        // overrides the proxy variables
  std::string ca_bundle;    // PEM file of CAs to trust for this endpoint
  TimeoutOverrides timeouts;
  SimOptions sim;
  int line = 0;  // where it was declared, for messages
};

struct Model {
  std::string name;  // what clients send as "model"; "*" matches any model
  std::vector<Endpoint> endpoints;
  TimeoutOverrides timeouts;
};

struct ClientKey {
  std::string key;
  std::vector<std::string> models;  // empty: every model
};

struct Config {
  std::string source = "built-in default";  // the file, or where the defaults came from
  std::string listen = "127.0.0.1:4000";
  int workers = 0;       // threads serving requests, each with its own loop; 0 = one per core
  PhaseBounds timeouts;  // global defaults
  std::vector<Model> models;
  std::vector<ClientKey> keys;
  size_t max_request_bytes = size_t{32} * 1024 * 1024;  // large enough for base64 images in a chat request
  Millis shutdown_grace{30'000};                // how long SIGTERM waits for in-flight requests
  std::string access_log = "stdout";            // stdout, stderr, off, or a file path
  std::string log_level = "info";

  const Model* find_model(std::string_view name) const;
};

// Each timeout: the endpoint's, else the model's, else the global one.
PhaseBounds effective_bounds(const Config& config, const Model& model, const Endpoint& endpoint);

}  // namespace ballast::config
