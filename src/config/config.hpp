// What `ballast serve` is configured to do, as plain values. Loading and validation live in
// config/load.cpp; everything else reads these structs and never sees YAML.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "policy/admission.hpp"
#include "policy/deadline.hpp"
#include "policy/outlier.hpp"
#include "policy/retry.hpp"

namespace ballast::config {

enum class Provider { openai, azure, sim };

std::string_view provider_name(Provider p);

// A timeouts block at model or endpoint level: unset keys inherit from the level above.
struct TimeoutOverrides {
  std::optional<Millis> connect, first_byte, first_token, stream_idle, total, queue;
};

// Active health checks: GET {base}{path} every `interval`. On by default for the built-in simulator
// and servers on loopback or private addresses; off for everything else, where each check may cost
// money or count against a rate limit.
struct HealthCheck {
  std::optional<bool> enabled;  // unset: decided by where the endpoint is
  std::string path = "/models";
  Millis interval{10'000};
};

// The built-in simulator's behaviour, for `provider: sim`.
struct SimOptions {
  Millis ttft{100};  // time to first token
  Millis itl{10};    // inter-token latency
  int tokens = 32;   // tokens per answer

  bool operator==(const SimOptions&) const = default;
};

struct Endpoint {
  std::string name;  // for logs and messages; defaults to host:port
  Provider provider = Provider::openai;
  std::string model;        // the model name its upstream knows; empty: the name the client sent
  std::string base_url;     // openai; azure's /openai/v1 form; sim: filled in when it starts
  std::string endpoint;     // azure: https://RESOURCE.openai.azure.com
  std::string deployment;   // azure
  std::string api_version;  // azure
  std::string api_key;      // already resolved from ${ENV}; never logged
  std::string proxy;        // overrides the proxy variables
  std::string ca_bundle;    // PEM file of CAs to trust for this endpoint; empty: the system's CAs
  // Where ca_bundle came from, for messages: "ca_bundle" (the config), or the environment variable
  // that named it (config::apply_ca_environment).
  std::string ca_bundle_source;
  TimeoutOverrides timeouts;
  SimOptions sim;
  double weight = 1;          // share of its tier's traffic
  int priority = 0;           // tier: 0 first; the next takes over when a tier has no healthy endpoint
  AdmissionPolicy admission;  // max_in_flight (a number or auto) and queue
  double rpm = 0;             // requests per minute sent to it; 0: no limit
  double tpm = 0;             // tokens per minute (estimated, corrected from usage); 0: no limit
  HealthCheck health_check;
  // With redis: configured, its max_in_flight, rpm and tpm hold across every replica (docs/scaling.md);
  // false keeps them per process.
  bool shared = true;
  int line = 0;  // where it was declared, for messages
};

struct Model {
  std::string name;  // what clients send as "model"; "*" matches any model
  std::vector<Endpoint> endpoints;
  TimeoutOverrides timeouts;
  RetryPolicy retries;  // the global one, with this model's overrides
  // Upstream error codes (error.code of a 4xx body, e.g. context_length_exceeded) that send the
  // request once to the next tier instead of failing it.
  std::vector<std::string> fallback_on;
};

struct ClientKey {
  std::string key;
  std::vector<std::string> models;  // empty: every model
  double rpm = 0;                   // 0: no limit of its own
  double tpm = 0;
};

// redis: the limits every replica shares (docs/scaling.md).
struct Redis {
  std::string url;  // redis://[:PASSWORD@]HOST[:PORT][/DB], as written but without a password
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;  // already resolved from ${ENV}; never logged
  std::string prefix = "ballast:";
  Millis timeout{50};        // every call's bound; past it, the replica falls back to local limits
  Millis lease_ttl{30'000};  // how long a slot outlives a replica that stopped renewing it
  int replicas = 1;  // how many the operator runs: while Redis is away each one keeps limit / replicas

  bool operator==(const Redis&) const = default;
};

struct Config {
  std::string source = "built-in default";  // the file, or where the defaults came from
  std::string listen = "127.0.0.1:4000";
  std::string admin_listen;  // HOST:PORT: /metrics and /ballast/status there only, to anyone; "": on listen
  int workers = 0;           // threads serving requests, each with its own loop; 0 = one per core
  PhaseBounds timeouts;      // global defaults
  Millis queue_timeout{30'000};  // longest wait for an endpoint's max_in_flight, global default
  // timeouts.client_patience [learn]: learn how long clients that send no deadline wait before
  // giving up, and admit their requests as if they had sent it (policy/patience); off: never.
  bool learn_patience = true;
  RetryPolicy retries;
  OutlierPolicy outlier;
  std::vector<Model> models;
  std::vector<ClientKey> keys;
  std::optional<Redis> redis;                           // none: every limit is per process
  size_t max_request_bytes = size_t{32} * 1024 * 1024;  // large enough for base64 images in a chat request
  size_t max_sse_line = size_t{1} << 20;  // the longest SSE line an upstream may send (limits.max_sse_line)
  int64_t max_connections = 10'000;       // open client connections; more wait in the accept queue
  size_t max_buffered_bytes = size_t{256} << 20;  // request bodies held at once, across every request
  Millis shutdown_grace{30'000};                  // how long SIGTERM waits for in-flight requests
  std::string access_log = "stdout";              // stdout, stderr, off, or a file path
  std::string log_level = "info";

  const Model* find_model(std::string_view name) const;
};

// Reads redis://[:PASSWORD@]HOST[:PORT][/DB] into `out` (host, port, db, password, and url without
// the password); returns what is wrong with it, or "" (the message never repeats the password).
std::string parse_redis_url(std::string_view url, Redis& out);

// Each timeout: the endpoint's, else the model's, else the global one.
PhaseBounds effective_bounds(const Config& config, const Model& model, const Endpoint& endpoint);
Millis effective_queue_timeout(const Config& config, const Model& model, const Endpoint& endpoint);

}  // namespace ballast::config
