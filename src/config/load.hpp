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

// The CA bundle an endpoint's TLS trusts. Its own `ca_bundle:` wins; else the first of
// REQUESTS_CA_BUNDLE (Python requests'), CURL_CA_BUNDLE (curl's) and SSL_CERT_FILE (OpenSSL's, and
// what httpx, so the OpenAI Python SDK, reads) that is set and not empty; else none: the system's
// CAs. The most specific goes first, as requests and curl themselves order them: SSL_CERT_FILE is
// the general one, which container images and toolchains often set to the system's own bundle.
// Like each of those tools, the file replaces the system's CAs rather than adding to them. Pure:
// the environment comes in through `getenv`.
struct CaBundleChoice {
  std::string path;    // empty: the system's CAs
  std::string source;  // "ca_bundle" or the variable that named `path`; empty with no path
};
inline constexpr const char* kCaBundleVariables[] = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"};
CaBundleChoice choose_ca_bundle(std::string_view configured, const GetEnv& getenv);

// Gives `ep`, when it is reached over https and has no `ca_bundle:` of its own, the CA bundle the
// environment names. Returns what is wrong when that variable names a file that cannot be read
// (never a silent fallback to the system's CAs), else "".
std::string apply_ca_environment(Endpoint& ep, const GetEnv& getenv);
// The same for every endpoint of a loaded configuration: `serve` calls it on whatever it loaded (a
// file, the provider variables), and a variable naming an unreadable file is one of the result's
// errors, reported once.
void apply_ca_environment(LoadResult& result, const GetEnv& getenv);

// One model, "sim", answered by the built-in simulator.
Config builtin_sim();

// Replaces ${NAME} and ${NAME:-default}. Unset names without a default are appended to `missing`.
std::string expand_env(std::string_view text, const GetEnv& getenv, std::vector<std::string>& missing);

}  // namespace ballast::config
