#include "doctor/diagnosis.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "policy/duration.hpp"
#include "policy/url.hpp"

namespace ballast::doctor {

std::string_view cause_name(Cause cause) {
  switch (cause) {
    case Cause::ok:
      return "ok";
    case Cause::missing_api_key:
      return "missing_api_key";
    case Cause::placeholder_api_key:
      return "placeholder_api_key";
    case Cause::bad_base_url:
      return "bad_base_url";
    case Cause::dns_failure:
      return "dns_failure";
    case Cause::proxy_failure:
      return "proxy_failure";
    case Cause::connect_refused:
      return "connect_refused";
    case Cause::connect_timeout:
      return "connect_timeout";
    case Cause::tls_failure:
      return "tls_failure";
    case Cause::scheme_mismatch:
      return "scheme_mismatch";
    case Cause::unauthorized:
      return "unauthorized";
    case Cause::wrong_path:
      return "wrong_path";
    case Cause::unknown_model:
      return "unknown_model";
    case Cause::azure_deployment_not_found:
      return "azure_deployment_not_found";
    case Cause::azure_api_version:
      return "azure_api_version";
    case Cause::rate_limited:
      return "rate_limited";
    case Cause::upstream_status:
      return "upstream_status";
    case Cause::first_token_timeout:
      return "first_token_timeout";
    case Cause::stream_broken:
      return "stream_broken";
  }
  return "ok";
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

bool is_placeholder_key(std::string_view key) {
  std::string k = lower(key);
  if (k.find("${") != std::string::npos) return true;  // a reference left unexpanded
  for (std::string_view word : {"xxx", "your", "placeholder", "changeme", "change-me", "replace", "dummy",
                                "example", "<", "...", "…", "todo", "insert", "api_key_here", "fake"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  // "sk-", "sk-proj-" with nothing real after them.
  std::string_view rest = k;
  for (std::string_view prefix : {"sk-proj-", "sk-"}) {
    if (rest.starts_with(prefix)) {
      rest.remove_prefix(prefix.size());
      break;
    }
  }
  return rest.size() < 8;
}

bool valid_api_version(std::string_view v) {
  // YYYY-MM-DD, optionally -preview (or another lowercase suffix).
  if (v.size() < 10) return false;
  for (size_t i = 0; i < 10; ++i) {
    bool dash = i == 4 || i == 7;
    if (dash ? v[i] != '-' : !std::isdigit(static_cast<unsigned char>(v[i]))) return false;
  }
  if (v.size() == 10) return true;
  if (v[10] != '-' || v.size() == 11) return false;
  return std::all_of(v.begin() + 11, v.end(),
                     [](char c) { return std::islower(static_cast<unsigned char>(c)); });
}

ConfigCheck check_config(const Target& t) {
  ConfigCheck out;
  const bool azure_deployments = t.ep.provider == config::Provider::azure && t.ep.base_url.empty();
  std::string url = azure_deployments ? trim_slashes(t.ep.endpoint) : trim_slashes(t.ep.base_url);
  std::string name = azure_deployments ? "the Azure endpoint" : "the base URL";
  if (url.empty()) {
    out.cause = Cause::bad_base_url;
    out.detail = azure_deployments ? "no Azure endpoint (AZURE_OPENAI_ENDPOINT or endpoint:)"
                                   : "no base URL (--base-url, OPENAI_BASE_URL or base_url:)";
    return out;
  }
  std::string why;
  auto parsed = parse_url(url, &why);
  if (!parsed) {
    out.cause = Cause::bad_base_url;
    out.detail = fmt::format("{} '{}' {}", name, url, why);
    return out;
  }
  out.address = {url, parsed->scheme, parsed->host, parsed->path, parsed->port};
  if (azure_deployments) {
    if (t.ep.deployment.empty()) {
      out.cause = Cause::azure_deployment_not_found;
      out.detail = "no Azure deployment name (--deployment, AZURE_OPENAI_DEPLOYMENT or deployment:)";
      return out;
    }
    out.address.url = url + "/openai/deployments/" + t.ep.deployment;
  }
  if (t.ep.provider == config::Provider::azure && !t.ep.api_version.empty() &&
      !valid_api_version(t.ep.api_version)) {
    out.cause = Cause::azure_api_version;
    out.detail =
        fmt::format("api-version '{}' is not of the form 2024-10-21 or 2025-01-01-preview", t.ep.api_version);
    return out;
  }
  if (azure_deployments && t.ep.api_version.empty()) {
    out.cause = Cause::azure_api_version;
    out.detail = "no api-version (--api-version, OPENAI_API_VERSION or api_version:)";
    return out;
  }
  std::string key_note;
  if (t.ep.api_key.starts_with("${") && t.ep.api_key.ends_with("}")) {
    out.cause = Cause::missing_api_key;
    out.detail = fmt::format("{} is not set", t.ep.api_key.substr(2, t.ep.api_key.size() - 3));
    return out;
  }
  if (t.ep.api_key.empty()) {
    if (t.ep.provider == config::Provider::azure || !is_local_host(parsed->host)) {
      out.cause = Cause::missing_api_key;
      out.detail = fmt::format("no API key{}", t.key_source.empty() ? "" : " in " + t.key_source);
      return out;
    }
    key_note = "no key (a local server usually needs none)";
  } else if (is_placeholder_key(t.ep.api_key)) {
    out.cause = Cause::placeholder_api_key;
    out.detail = fmt::format("the key{} looks like a placeholder: '{}'",
                             t.key_source.empty() ? "" : " from " + t.key_source,
                             t.ep.api_key.size() > 16 ? t.ep.api_key.substr(0, 12) + "…" : t.ep.api_key);
    return out;
  } else {
    key_note =
        fmt::format("key{} …{}", t.key_source.empty() ? "" : " from " + t.key_source,
                    t.ep.api_key.substr(t.ep.api_key.size() - std::min<size_t>(4, t.ep.api_key.size())));
  }
  out.detail = fmt::format("{} {}, {}", config::provider_name(t.ep.provider), out.address.url, key_note);
  if (t.ep.provider == config::Provider::azure) out.detail += ", api-version " + t.ep.api_version;
  return out;
}

std::string fix_for(Cause cause, const FixContext& c) {
  const Target& t = *c.target;
  const Address& a = c.address;
  const std::string hostport = fmt::format("{}:{}", a.host, a.port);
  auto key_var = [&] {
    if (!t.key_source.empty()) return t.key_source;
    return std::string(t.ep.provider == config::Provider::azure ? "AZURE_OPENAI_API_KEY" : "OPENAI_API_KEY");
  };
  const bool container_loopback = c.in_container && is_loopback_host(a.host);
  std::string container_fix = fmt::format(
      "nothing answers on {} inside this container, where {} is the container itself: if the model server "
      "runs on "
      "the host, use host.docker.internal:{} (Docker Desktop, or run with "
      "--add-host=host.docker.internal:host-gateway); in another container, use its service name; if it "
      "should "
      "run here, start it",
      hostport, a.host, a.port);
  switch (cause) {
    case Cause::ok:
      return "nothing to fix: every hop answered within its bound";
    case Cause::missing_api_key:
      return fmt::format("set the key: export {}=… (or api_key: ${{{}}} in the config)", key_var(),
                         key_var());
    case Cause::placeholder_api_key:
      return fmt::format("{} holds a placeholder: put the real key from the provider's dashboard there",
                         key_var());
    case Cause::bad_base_url:
      return fmt::format(
          "{}: write it as http(s)://HOST:PORT/v1, e.g. http://127.0.0.1:8000/v1 or "
          "https://api.openai.com/v1",
          c.detail);
    case Cause::dns_failure:
      if (c.in_container)
        return fmt::format(
            "{} does not resolve from this container: use the model server's service name, or "
            "host.docker.internal for the host machine",
            a.host);
      return fmt::format(
          "{} does not resolve: check its spelling in the base URL, or your DNS (a VPN that is "
          "off, /etc/hosts)",
          a.host);
    case Cause::proxy_failure:
      if (is_local_host(a.host)) {
        std::string no_proxy = a.host == "localhost"   ? "localhost,127.0.0.1"
                               : a.host == "127.0.0.1" ? "127.0.0.1,localhost"
                                                       : a.host + ",localhost,127.0.0.1";
        return fmt::format(
            "{} sends traffic for {} to the proxy {}, which {}: add {} to NO_PROXY (export "
            "NO_PROXY={})",
            c.proxy_source, a.host, c.proxy_url, c.detail, a.host, no_proxy);
      }
      return fmt::format(
          "the proxy {} (from {}) {}: fix {} or ask for the proxy's right address; if {} should "
          "be reached directly, add it to NO_PROXY",
          c.proxy_url, c.proxy_source, c.detail, c.proxy_source, a.host);
    case Cause::connect_refused:
      if (container_loopback) return container_fix;
      if (is_local_host(a.host))
        return fmt::format(
            "nothing is listening on {}: start the model server (vLLM serves on 8000, Ollama on "
            "11434, LM Studio on 1234, llama.cpp on 8080), or fix the port in the base URL",
            hostport);
      return fmt::format(
          "{} refused the connection: is the port in the base URL right, and is the server up?", hostport);
    case Cause::connect_timeout:
      if (container_loopback) return container_fix;
      return fmt::format(
          "{} did not answer within {}: a firewall or security group drops the packets, the host "
          "is down, or the address is wrong; from a network that needs a proxy, set HTTPS_PROXY",
          hostport, format_duration(t.connect_timeout));
    case Cause::tls_failure:
      if (c.detail.find("certificate") != std::string::npos || c.detail.find("verify") != std::string::npos)
        return fmt::format(
            "{} ({}): if it uses a private or self-signed CA, trust it with ca_bundle: in the "
            "config; otherwise check the certificate's name and dates",
            hostport, c.detail);
      return fmt::format(
          "the TLS handshake with {} failed ({}): check the port is the server's TLS port and "
          "that a proxy is not intercepting it",
          hostport, c.detail);
    case Cause::scheme_mismatch:
      if (a.scheme == "https")
        return fmt::format("{} speaks plain HTTP, not TLS: write the base URL with http://", hostport);
      return fmt::format("{} speaks TLS: write the base URL with https://", hostport);
    case Cause::unauthorized:
      if (t.ep.api_key.empty())
        return fmt::format("the server requires a key (HTTP {}) and none was sent: export {}=…", c.status,
                           key_var());
      return fmt::format(
          "the server rejected the key from {} (HTTP {}{}): check it is current, not revoked, and "
          "belongs to this {}",
          key_var(), c.status, c.upstream_message.empty() ? "" : ": " + c.upstream_message,
          t.ep.provider == config::Provider::azure ? "Azure resource" : "server or organisation");
    case Cause::wrong_path:
      if (!a.path.ends_with("/v1") && t.ep.provider != config::Provider::azure)
        return fmt::format("GET {}/models answered 404: the base URL lacks /v1; use {}/v1", a.url, a.url);
      return fmt::format(
          "GET {}/models answered 404: the base URL's path is not the API's; check the path the "
          "server documents for its OpenAI-compatible API",
          a.url);
    case Cause::unknown_model: {
      std::string listed;
      for (size_t i = 0; i < c.listed_models.size() && i < 8; ++i)
        listed += (i ? ", " : "") + c.listed_models[i];
      if (c.listed_models.size() > 8) listed += ", …";
      return fmt::format(
          "model '{}' is not served here{}: use one of the listed names, or load it on the server", c.model,
          listed.empty() ? "" : " (it lists " + listed + ")");
    }
    case Cause::azure_deployment_not_found:
      if (t.ep.deployment.empty())
        return "set the deployment: --deployment, AZURE_OPENAI_DEPLOYMENT or deployment:";
      return fmt::format(
          "deployment '{}' does not exist on {}: use the deployment's name as shown in Azure AI "
          "Foundry (AZURE_OPENAI_DEPLOYMENT or deployment:), not the model's",
          t.ep.deployment, t.ep.endpoint);
    case Cause::azure_api_version:
      return fmt::format(
          "api-version '{}' is {} on {}: use a current GA version such as 2024-10-21 "
          "(OPENAI_API_VERSION or api_version:)",
          t.ep.api_version, valid_api_version(t.ep.api_version) ? "not supported" : "malformed",
          t.ep.endpoint.empty() ? a.url : t.ep.endpoint);
    case Cause::rate_limited:
      return fmt::format(
          "the server answered 429{}: the key's rate limit or quota is spent; wait, raise the "
          "limit, or cap the traffic with ballast's rpm:, tpm: and max_in_flight:",
          c.upstream_message.empty() ? "" : " (" + c.upstream_message + ")");
    case Cause::upstream_status:
      return fmt::format("the server answered HTTP {}{}: it is reachable but failing; check its logs",
                         c.status, c.upstream_message.empty() ? "" : ": " + c.upstream_message);
    case Cause::first_token_timeout: {
      if (c.first_token_ms <= 0)
        return fmt::format(
            "no token came within {} ({}): the model is overloaded, loading, or stuck; check the "
            "server, or raise {}",
            format_duration(t.first_token_timeout), t.timeout_source, t.timeout_source);
      // Twice what was seen (to the tenth of a second), in whole seconds: room for a slower moment.
      double seen_s = std::round(c.first_token_ms / 100) / 10;
      auto suggest = Millis(static_cast<int64_t>(std::ceil(seen_s * 2)) * 1000);
      return fmt::format(
          "the first token took {:.1f}s, more than {} ({}): raise {} and the client's own timeout "
          "to at least {}",
          c.first_token_ms / 1000, t.timeout_source, format_duration(t.first_token_timeout), t.timeout_source,
          format_duration(suggest));
    }
    case Cause::stream_broken:
      return fmt::format(
          "the stream {}: the server or a proxy in between broke it; check the server's logs, "
          "and any proxy's read timeout and buffering (nginx: proxy_read_timeout, proxy_buffering off)",
          c.detail);
  }
  return "";
}

}  // namespace ballast::doctor
