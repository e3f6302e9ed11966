#include "doctor/diagnosis.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "policy/classify.hpp"
#include "policy/duration.hpp"
#include "policy/json_read.hpp"
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
    case Cause::first_byte_timeout:
      return "first_byte_timeout";
    case Cause::first_token_timeout:
      return "first_token_timeout";
    case Cause::upstream_reset:
      return "upstream_reset";
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

// A key that looks like a placeholder, as it may be shown: it is one, or its start is no secret.
std::string shown_key(const std::string& key) {
  return key.size() > 16 ? key.substr(0, 12) + "…" : key;
}

// Which CA bundle was trusted, for a TLS fix: "the system's CAs", "SSL_CERT_FILE (ca.pem)".
std::string trusted_cas(const config::Endpoint& ep) {
  if (ep.ca_bundle.empty()) return "the system's CAs";
  if (ep.ca_bundle_source.empty() || ep.ca_bundle_source == "ca_bundle")
    return fmt::format("ca_bundle: {}", ep.ca_bundle);
  return fmt::format("{} ({})", ep.ca_bundle_source, ep.ca_bundle);
}

// The media type alone, lower case: "text/html; charset=utf-8" is "text/html".
std::string media_type(std::string_view content_type) {
  std::string m = lower(content_type.substr(0, content_type.find(';')));
  while (!m.empty() && std::isspace(static_cast<unsigned char>(m.back()))) m.pop_back();
  size_t first = m.find_first_not_of(" \t");
  return first == std::string::npos ? "" : m.substr(first);
}

// An HTML page's <title>, trimmed and at most 60 characters; empty without one.
std::string html_title(std::string_view body) {
  std::string l = lower(body.substr(0, 8192));
  size_t open = l.find("<title>");
  if (open == std::string::npos) return "";
  size_t from = open + 7;
  size_t close = l.find("</title>", from);
  std::string title(body.substr(from, (close == std::string::npos ? l.size() : close) - from));
  for (char& c : title)
    if (std::isspace(static_cast<unsigned char>(c))) c = ' ';
  while (!title.empty() && title.back() == ' ') title.pop_back();
  title.erase(0, std::min(title.size(), title.find_first_not_of(' ')));
  if (title.size() > 60) title = title.substr(0, 60) + "…";
  return title;
}

// What a 2xx answer was, as the fix shows it: "text/html (titled 'Welcome to nginx!', Server: nginx)".
std::string shown_answer(const Answer& a) {
  std::string media = media_type(a.content_type);
  std::string out = media.empty() ? "a body with no content type" : media;
  std::vector<std::string> notes;
  if (media == "text/html" || media.empty()) {
    if (std::string title = html_title(a.body); !title.empty()) notes.push_back("titled '" + title + "'");
  }
  if (!a.server.empty()) notes.push_back("Server: " + a.server);
  for (size_t i = 0; i < notes.size(); ++i) out += (i ? ", " : " (") + notes[i];
  if (!notes.empty()) out += ")";
  return out;
}

}  // namespace

std::string not_the_api(const Answer& a) {
  if (a.expect == Answer::Expect::stream) {
    if (media_type(a.content_type) == "text/event-stream") return "";
    return shown_answer(a) + ", not an event stream";
  }
  simdjson::dom::element doc;
  if (json_parser().parse(a.body.data(), a.body.size()).get(doc) != simdjson::SUCCESS)
    return shown_answer(a) + (media_type(a.content_type).ends_with("json") ? " that is not JSON" : "");
  simdjson::dom::array list;
  const char* member = a.expect == Answer::Expect::models ? "data" : "choices";
  if (!doc.is_object() || doc[member].get(list) != simdjson::SUCCESS)
    return fmt::format("{} without a {} array", shown_answer(a), member);
  return "";
}

std::string with_api_path(std::string_view base_url, std::string_view api_path) {
  size_t q = base_url.find_first_of("?#");
  std::string path(base_url.substr(0, q));
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string out = path + std::string(api_path);
  if (q != std::string_view::npos && base_url[q] == '?') {
    std::string_view query = base_url.substr(q + 1);
    query = query.substr(0, query.find('#'));
    if (!query.empty()) out += "?" + std::string(query);
  }
  return out;
}

std::optional<PathSuggestion> suggested_base_url(std::string_view base_url) {
  auto u = parse_url(base_url);
  if (!u) return std::nullopt;
  std::string path = u->path;
  std::string why;
  // What a client appends itself, pasted with the base URL from an example request.
  for (std::string_view op : {"/chat/completions", "/completions", "/embeddings", "/responses", "/models"}) {
    if (lower(path).ends_with(op)) {
      why = fmt::format("the base URL ends in {}, which the client adds itself",
                        path.substr(path.size() - op.size()));
      path.resize(path.size() - op.size());
      break;
    }
  }
  size_t slash = path.rfind('/');
  std::string last = slash == std::string::npos ? "" : lower(path.substr(slash + 1));
  const bool version = last.size() >= 2 && last[0] == 'v' &&
                       std::all_of(last.begin() + 1, last.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (last == "v1") {
    if (why.empty()) return std::nullopt;  // already /v1: nothing likelier to suggest
  } else if (version) {
    if (why.empty()) why = fmt::format("the base URL ends in /{}, not /v1", path.substr(slash + 1));
    path.replace(slash + 1, std::string::npos, "v1");
  } else {
    if (why.empty()) why = "the base URL lacks /v1";
    path += "/v1";
  }
  // The scheme and host as the URL wrote them (parse_url lowers the scheme and may add a port).
  size_t authority_end = base_url.find_first_of("/?#", base_url.find("://") + 3);
  std::string url(base_url.substr(0, authority_end));
  url += path;
  if (!u->query.empty()) url += "?" + u->query;
  return PathSuggestion{url, why};
}

bool is_placeholder_key(std::string_view key) {
  std::string k = lower(key);
  while (!k.empty() && std::isspace(static_cast<unsigned char>(k.back()))) k.pop_back();
  size_t first = k.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return true;  // empty
  k.erase(0, first);
  for (size_t at = k.find("…"); at != std::string::npos; at = k.find("…")) k.replace(at, 3, "...");
  // A reference left unexpanded: ${VAR} from a config or compose file, $VAR from a quoted .env line.
  if (k.find("${") != std::string::npos && k.find('}') != std::string::npos) return true;
  if (k.front() == '$' && k.size() > 1 && std::all_of(k.begin() + 1, k.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      }))
    return true;
  if (k.front() == '<' && k.back() == '>') return true;  // <your key>
  // "sk-xxxx", "sk-proj-…", "sk-...abcd" (a key copied as the dashboard shows it, masked), "xxxxxxxx".
  std::string_view rest = k;
  bool prefixed = false;
  for (std::string_view prefix : {"sk-proj-", "sk-"}) {
    if (rest.starts_with(prefix)) {
      rest.remove_prefix(prefix.size());
      prefixed = true;
      break;
    }
  }
  auto filler = [](char c) { return c == 'x' || c == '.' || c == '*' || c == '-' || c == '_'; };
  if (std::all_of(rest.begin(), rest.end(), filler) &&
      (prefixed || std::count(rest.begin(), rest.end(), 'x') >= 3))
    return true;
  if (prefixed && rest.find("...") != std::string_view::npos) return true;
  // "your-api-key", "YOUR_OPENAI_API_KEY_HERE", "insert your key here": the word "your", a key later.
  std::vector<std::string_view> words;
  for (size_t i = 0; i < k.size();) {
    size_t end = k.find_first_of("-_ .", i);
    if (end == std::string::npos) end = k.size();
    if (end > i) words.push_back(std::string_view(k).substr(i, end - i));
    i = end + 1;
  }
  auto your = std::find(words.begin(), words.end(), "your");
  if (your != words.end() && std::any_of(your + 1, words.end(), [](std::string_view w) {
        return w.find("key") != std::string_view::npos;
      }))
    return true;
  std::string joined;
  for (auto w : words) joined += w;
  return joined == "changeme";
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
  if (!t.unset_key_variable.empty()) {
    out.cause = Cause::missing_api_key;
    out.detail = fmt::format("{} is not set", t.unset_key_variable);
    return out;
  }
  const bool local = is_local_host(parsed->host);
  const std::string from = t.key_source.empty() ? "" : " from " + t.key_source;
  if (t.ep.api_key.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (t.ep.provider == config::Provider::azure || !local) {
      out.cause = Cause::missing_api_key;
      out.detail = fmt::format("no API key{}", t.key_source.empty() ? "" : " in " + t.key_source);
      return out;
    }
    key_note = "no key (a local server usually needs none)";
  } else if (!local && is_placeholder_key(t.ep.api_key)) {
    // Named only if the server rejects it: a server that accepts it knows better.
    out.placeholder_key = true;
    const bool reference = t.ep.api_key.find('$') != std::string::npos;
    key_note = fmt::format("key{} '{}' looks like {} (the server decides)", from, shown_key(t.ep.api_key),
                           reference ? "an unexpanded placeholder: it is sent as written" : "a placeholder");
  } else {
    key_note =
        fmt::format("key{} …{}", from,
                    t.ep.api_key.substr(t.ep.api_key.size() - std::min<size_t>(4, t.ep.api_key.size())));
  }
  if (!t.ca_problem.empty() && parsed->scheme == "https") {
    out.cause = Cause::tls_failure;
    out.detail = t.ca_problem;
    return out;
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
      return fmt::format(
          "{} holds a placeholder ('{}'){}: put the real key from the provider's dashboard there", key_var(),
          shown_key(t.ep.api_key),
          c.status > 0 ? fmt::format(", which the server rejected (HTTP {})", c.status) : std::string());
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
    case Cause::tls_failure: {
      if (!t.ca_problem.empty())
        return fmt::format(
            "{} names '{}', which is not a readable file: point it at the PEM file of the CA that signed "
            "{}'s certificate (or a bundle holding it), or unset it to trust the system's CAs",
            t.ep.ca_bundle_source, t.ep.ca_bundle, a.host);
      const std::string& d = c.detail;
      if (d.find("certificate") != std::string::npos || d.find("verify") != std::string::npos ||
          d.find("issuer") != std::string::npos)
        return fmt::format(
            "{} ({}), checked against {}: if the server uses a private or self-signed CA, trust it with "
            "ca_bundle: in the config, or with SSL_CERT_FILE (or CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, which "
            "win over it) naming the CA's PEM file; otherwise check the certificate's name and dates",
            hostport, d, trusted_cas(t.ep));
      return fmt::format(
          "the TLS handshake with {} failed ({}): check the port is the server's TLS port and "
          "that a proxy is not intercepting it",
          hostport, d);
    }
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
    case Cause::wrong_path: {
      const std::string asked = c.request_url.empty() ? with_api_path(a.url, "/models") : c.request_url;
      auto suggestion = t.ep.provider == config::Provider::azure ? std::nullopt : suggested_base_url(a.url);
      if (suggestion)
        return fmt::format("GET {} answered 404: {}; use {}", asked, suggestion->why, suggestion->url);
      return fmt::format(
          "GET {} answered 404: the base URL's path is not the API's; check the path the "
          "server documents for its OpenAI-compatible API",
          asked);
    }
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
      if (status_class(c.status) == StatusClass::success)  // its own error event, inside a 2xx stream
        return fmt::format(
            "the server began its answer, then reported an error of its own: '{}': the model or the server "
            "behind it failed this request; check the server's logs for that message",
            c.upstream_message.empty() ? c.detail : c.upstream_message);
      return fmt::format("the server answered HTTP {}{}: it is reachable but failing; check its logs",
                         c.status, c.upstream_message.empty() ? "" : ": " + c.upstream_message);
    case Cause::first_byte_timeout:
      return fmt::format(
          "{} took the request but sent no answer ({}): the server is overloaded, stuck, or still loading "
          "its model; check its logs and its load",
          hostport, c.detail);
    case Cause::upstream_reset:
      if (!c.answered.empty() && !c.upstream_message.empty())
        return fmt::format(
            "{} answered HTTP {} with {}, holding an error: '{}': the server, or a proxy in front of it, "
            "reports success while failing; check its logs",
            hostport, c.status, c.answered, c.upstream_message);
      if (!c.answered.empty()) {
        std::string l = lower(c.answered), page;
        for (const char* server : {"nginx", "apache", "caddy", "traefik", "envoy", "iis", "cloudflare"}) {
          if (l.find(server) != std::string::npos) {
            page = fmt::format(", likely {}'s own page", server);
            break;
          }
        }
        return fmt::format(
            "{} answered HTTP {} with {}{}: this is not an OpenAI-compatible API; check the base URL's host, "
            "port and path",
            hostport, c.status, c.answered, page);
      }
      if (status_class(c.status) == StatusClass::success)
        return fmt::format(
            "{} answered HTTP {}, then closed before any of its answer came ({}): the server crashed or "
            "restarted, or a proxy in between cut it; check the server's logs",
            hostport, c.status, c.detail);
      return fmt::format(
          "{} closed the connection before answering ({}): the server crashed or restarted, or a proxy or "
          "load balancer in between cut it; check the server's logs",
          hostport, c.detail);
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

ErrorCode expired_bound(bool headers, bool stream, bool token) {
  if (!headers) return ErrorCode::first_byte_timeout;
  if (stream && !token) return ErrorCode::first_token_timeout;
  return ErrorCode::stream_idle_timeout;
}

Cause classify_probe(const Outcome& o, bool stream_began) {
  switch (classify(o).code) {
    case ErrorCode::ok:
      return Cause::ok;
    case ErrorCode::dns_failure:
      return Cause::dns_failure;
    case ErrorCode::proxy_failure:
      return Cause::proxy_failure;
    case ErrorCode::connect_refused:
      return Cause::connect_refused;
    case ErrorCode::connect_timeout:
      return Cause::connect_timeout;
    case ErrorCode::tls_failure:
      return Cause::tls_failure;
    case ErrorCode::first_byte_timeout:
      return Cause::first_byte_timeout;
    case ErrorCode::first_token_timeout:
      return Cause::first_token_timeout;
    case ErrorCode::stream_idle_timeout:
    case ErrorCode::deadline_exceeded:
      // A stream stalled; a non-streamed answer that began and never finished is no answer in time.
      return stream_began ? Cause::stream_broken : Cause::first_byte_timeout;
    case ErrorCode::upstream_reset:
      // Only a stream that began can break: before its first event, the connection was dropped or
      // what answered (a page, a JSON body) is not the API's.
      return stream_began ? Cause::stream_broken : Cause::upstream_reset;
    default:
      return Cause::upstream_status;
  }
}

}  // namespace ballast::doctor
