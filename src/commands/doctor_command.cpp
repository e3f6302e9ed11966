// `ballast doctor`: gather the endpoints to check (flags, a config file, or the provider variables
// serve would read), diagnose each hop by hop, and print the waterfall or JSON. Exit 0 when every
// endpoint is healthy, 1 when a cause was found, 2 for bad usage.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "commands/commands.hpp"
#include "config/load.hpp"
#include "doctor/probes.hpp"
#include "gateway/gateway.hpp"

namespace ballast {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Millis seconds(double s) {
  return Millis(static_cast<int64_t>(std::llround(s * 1000)));
}

// The endpoint named by flags, filling what they leave out from the provider variables.
doctor::Target from_flags(const DoctorArgs& a) {
  doctor::Target t;
  bool azure = a.provider == "azure" ||
               (a.provider.empty() && a.base_url.empty() && !env("AZURE_OPENAI_ENDPOINT").empty());
  t.ep.provider = azure ? config::Provider::azure : config::Provider::openai;
  if (azure) {
    std::string url = a.base_url.empty() ? env("AZURE_OPENAI_ENDPOINT") : a.base_url;
    // {endpoint}/openai/v1 is the v1 form; anything else is the resource endpoint.
    if (url.find("/openai/v1") != std::string::npos)
      t.ep.base_url = url;
    else
      t.ep.endpoint = url;
    t.ep.deployment = a.deployment.empty() ? env("AZURE_OPENAI_DEPLOYMENT") : a.deployment;
    t.ep.api_version = a.api_version.empty() ? env("OPENAI_API_VERSION") : a.api_version;
    t.key_source = a.api_key_env.empty() ? "AZURE_OPENAI_API_KEY" : a.api_key_env;
    t.name = "azure";
  } else {
    t.ep.base_url = a.base_url.empty() ? env("OPENAI_BASE_URL") : a.base_url;
    if (t.ep.base_url.empty() && a.base_url.empty()) t.ep.base_url = "https://api.openai.com/v1";
    t.key_source = a.api_key_env.empty() ? "OPENAI_API_KEY" : a.api_key_env;
    t.name = "openai";
  }
  t.ep.api_key = env(t.key_source.c_str());
  t.model = a.model.empty() ? env("OPENAI_MODEL") : a.model;
  return t;
}

// Reads the config keeping unset ${VARS} as written, so that the config hop can name the variable
// instead of the load failing on it.
config::LoadResult load_keeping_references(const std::string& file) {
  auto held = std::make_shared<std::map<std::string, std::string>>();
  GetEnv getenv = [held](const char* name) -> const char* {
    if (const char* v = std::getenv(name)) return v;
    auto [it, _] = held->emplace(name, fmt::format("${{{}}}", name));
    return it->second.c_str();
  };
  return config::load_file(file, getenv);
}

std::vector<doctor::Target> from_config(const config::Config& c) {
  std::vector<doctor::Target> out;
  for (const auto& m : c.models) {
    for (const auto& ep : m.endpoints) {
      if (ep.provider == config::Provider::sim) continue;  // inside ballast: nothing to diagnose
      doctor::Target t;
      t.name = fmt::format("{} / {}", m.name, ep.name);
      t.ep = ep;
      t.key_source = fmt::format("api_key: of {} (line {})", c.source, ep.line);
      if (ep.api_key.starts_with("${") && ep.api_key.ends_with("}")) {
        t.key_source = ep.api_key.substr(2, ep.api_key.size() - 3);
        // Kept as written by load_keeping_references only when the variable is not set (or empty,
        // which the config's expansion takes as unset).
        if (env(t.key_source.c_str()).empty()) t.unset_key_variable = t.key_source;
      }
      // The name the endpoint's upstream is asked for: its own model:, else the client-facing one.
      t.model = !ep.model.empty() ? ep.model : m.name == "*" ? "" : m.name;
      t.first_token_timeout = config::effective_bounds(c, m, ep).first_token;
      t.timeout_source = "timeouts.first_token";
      out.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace

int run_doctor(const DoctorArgs& args) {
  std::vector<doctor::Target> targets;
  if (!args.config_file.empty()) {
    auto loaded = load_keeping_references(args.config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "the configuration has %zu problem(s):\n", loaded.errors.size());
      for (const auto& e : loaded.errors) std::fprintf(stderr, "  %s\n", e.c_str());
      return 2;
    }
    targets = from_config(loaded.config);
    if (targets.empty()) {
      std::fprintf(stderr, "%s has no endpoints outside ballast to check (provider: sim runs inside it)\n",
                   args.config_file.c_str());
      return 2;
    }
  } else {
    bool any_env = !env("OPENAI_API_KEY").empty() || !env("OPENAI_BASE_URL").empty() ||
                   !env("AZURE_OPENAI_ENDPOINT").empty();
    if (args.base_url.empty() && !any_env) {
      std::fprintf(stderr,
                   "nothing to check: give --base-url URL or --config FILE, or set OPENAI_BASE_URL / "
                   "OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT (what ballast serve would front)\n");
      return 2;
    }
    targets.push_back(from_flags(args));
  }
  doctor::ProbeOptions options;
  options.getenv = [](const char* name) { return std::getenv(name); };
  // As serve does: an https endpoint without a ca_bundle: trusts what REQUESTS_CA_BUNDLE,
  // CURL_CA_BUNDLE or SSL_CERT_FILE names (config::choose_ca_bundle); one naming a file that cannot
  // be read is the config hop's finding.
  for (auto& t : targets) t.ca_problem = config::apply_ca_environment(t.ep, options.getenv);
  options.in_container = running_in_container();
  options.probe_concurrency = args.probe_concurrency;
  std::vector<doctor::Report> reports;
  bool healthy = true;
  for (auto& t : targets) {
    t.connect_timeout = seconds(args.connect_timeout_s);
    if (args.timeout_s > 0) {
      t.first_token_timeout = seconds(args.timeout_s);
      t.timeout_source = "--timeout";
    }
    if (!args.model.empty()) t.model = args.model;
    reports.push_back(doctor::diagnose(t, options));
    healthy = healthy && reports.back().cause == doctor::Cause::ok;
    if (!args.json)
      std::fputs((doctor::render_text(reports.back()) + (&t == &targets.back() ? "" : "\n")).c_str(), stdout);
    std::fflush(stdout);
  }
  if (args.json) std::puts(doctor::render_json(reports).c_str());
  return healthy ? 0 : 1;
}

}  // namespace ballast
