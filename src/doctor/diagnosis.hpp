// What `ballast doctor` concludes, as pure functions: the causes it can name, the checks on an
// endpoint's configuration, and the one specific fix for each cause. The probes that gather the
// facts (sockets, TLS, HTTP) live in probes.cpp; nothing here does I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "policy/outcome.hpp"

namespace ballast::doctor {

enum class Cause {
  ok,
  missing_api_key,
  placeholder_api_key,
  bad_base_url,
  dns_failure,
  proxy_failure,
  connect_refused,
  connect_timeout,
  tls_failure,
  scheme_mismatch,
  unauthorized,
  wrong_path,
  unknown_model,
  azure_deployment_not_found,
  azure_api_version,
  rate_limited,
  upstream_status,
  first_byte_timeout,
  first_token_timeout,
  upstream_reset,
  stream_broken,
};

std::string_view cause_name(Cause cause);

// One endpoint to diagnose, however it was given (flags, a config file, the environment).
struct Target {
  std::string name;
  // Where and how it is reached: provider, base_url (or Azure's endpoint, deployment and
  // api_version), api_key, proxy and ca_bundle, as the gateway would use them.
  config::Endpoint ep;
  std::string key_source;  // where the key comes from, for the fix: "OPENAI_API_KEY", "config line 7"
  // The config file's api_key: ${VAR} names a variable that is not set. Only a config file's values
  // are expanded: a variable's value is the literal key serve sends, "${FOO}" included.
  std::string unset_key_variable;
  std::string model;  // to look for in /models and to ask for a completion; empty: the first listed
  Millis connect_timeout{3'000};
  Millis first_token_timeout{30'000};  // --timeout, or the config's timeouts.first_token
  std::string timeout_source = "--timeout";
  // The CA bundle an environment variable names cannot be read: what is wrong (a tls_failure at
  // the config hop). ep.ca_bundle and ep.ca_bundle_source say which bundle is used, and from where.
  std::string ca_problem;
};

// The URL the target is reached at, with its parts: what the config hop checks.
struct Address {
  std::string url;  // the base: {base_url}, or {endpoint}/openai/deployments/{deployment}
  std::string scheme, host, path;
  int port = 0;
};

struct ConfigCheck {
  Cause cause = Cause::ok;
  std::string detail;  // what was checked, or what is wrong
  Address address;
  // The key looks like a placeholder and the server is not local: if the server rejects it (401,
  // 403), that is the cause named; if it accepts it, nothing is wrong with it.
  bool placeholder_key = false;
};

// The key present, the URL well-formed, Azure's fields present and its api-version well-formed. A
// key is required unless the server is local (is_local_host (policy/url)): local model servers usually take
// none, or any (Ollama's docs set "ollama", vLLM's "EMPTY"). A remote server's key that looks like a
// placeholder is noted, for the server to decide.
ConfigCheck check_config(const Target& target);

// Only what is written as a placeholder: "sk-xxxx…" (or "sk-proj-", or x's alone), "your-api-key" in
// any case and separator ("YOUR_OPENAI_API_KEY_HERE"), "<…>", "changeme", a ${VAR} or $VAR left
// unexpanded, an empty value. Not "ollama", "EMPTY", "dummy", "sk-no-key-required": local servers'
// docs tell users to set those, and a server that accepts them is right to.
bool is_placeholder_key(std::string_view key);
// 2024-10-21, 2025-01-01-preview
bool valid_api_version(std::string_view v);

// What the fix needs to know to name the exact variable, host, port, path or setting.
struct FixContext {
  const Target* target = nullptr;
  Address address;
  bool in_container = false;
  std::string proxy_url;         // the proxy in use, empty when direct
  std::string proxy_source;      // HTTPS_PROXY, http_proxy, proxy: in the config …
  int status = 0;                // an HTTP status, when one came
  std::string upstream_message;  // the server's error message, when it sent one
  std::string model;             // the model asked for: the target's, or the first listed
  std::vector<std::string> listed_models;
  double first_token_ms = 0;  // observed, for first_token_timeout
  std::string detail;         // the failing hop's own words
  std::string answered;       // a 2xx that is not the API's: what it was (not_the_api)
  std::string request_url;    // the URL the failing hop asked
};

std::string fix_for(Cause cause, const FixContext& ctx);

// What a probe's outcome means, as the one classifier (policy/classify) judges it, in doctor's words:
// dns_failure, proxy_failure, connect_refused, connect_timeout and tls_failure whichever hop met them;
// upstream_reset (a connection dropped, or a 2xx that is not the API's) is stream_broken only once a
// stream began (`stream_began`: an SSE event of a 2xx event stream arrived), as is a stall; the
// upstream's error event inside a stream, and any status, upstream_status (each hop refines a status
// by status_class). ok when nothing failed.
Cause classify_probe(const Outcome& outcome, bool stream_began = false);

// Which of doctor's own bounds ended a request, from what had arrived by then: no response headers
// is first_byte_timeout; headers but no token of a stream, first_token_timeout; a stream whose
// tokens had begun, stream_idle_timeout (it stalled).
ErrorCode expired_bound(bool headers, bool stream, bool token);

// A 2xx answer as it arrived, to judge whether it is the API's.
struct Answer {
  enum class Expect { models, stream, completion } expect = Expect::models;
  std::string content_type;  // as sent; "" for none
  std::string server;        // the Server header; "" for none
  std::string_view body;     // its first 64 KiB
  int events = 0;            // SSE events read, keep-alive comments aside (a stream)
};

// What answered, when a 2xx is not the API's answer: /models that is not JSON or has no "data"
// array; a completion that is not JSON with "choices"; a streamed request answered without
// text/event-stream. Empty when it is the API's. In words for the fix: "text/html (titled 'Welcome
// to nginx!', Server: nginx/1.27.0)", "application/json without a data array".
std::string not_the_api(const Answer& answer);

// `api_path` ("/models") appended to the base URL's path, before any query it has.
std::string with_api_path(std::string_view base_url, std::string_view api_path);

// For a 404 on {base}/models: the base URL that is likelier right, and why. A pasted operation
// (/chat/completions, /completions, /embeddings, /responses, /models) is dropped, another version
// (/v2) becomes /v1, a path without /v1 gets it; the query stays after the path. Nothing when the
// path already ends in /v1 or the URL does not parse.
struct PathSuggestion {
  std::string url;
  std::string why;  // "the base URL lacks /v1"
};
std::optional<PathSuggestion> suggested_base_url(std::string_view base_url);

}  // namespace ballast::doctor
