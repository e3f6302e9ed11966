#include "policy/upstream_target.hpp"

namespace ballast {

UpstreamTarget upstream_target(const config::Endpoint& ep, std::string_view api_path,
                               std::string_view query) {
  UpstreamTarget t;
  auto trimmed = [](std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
  };
  if (ep.provider == config::Provider::azure && ep.base_url.empty()) {
    // {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…
    t.url = trimmed(ep.endpoint) + "/openai/deployments/" + ep.deployment + std::string(api_path) +
            "?api-version=" + ep.api_version;
  } else {
    t.url = trimmed(ep.base_url) + std::string(api_path);
    if (ep.provider == config::Provider::azure && !ep.api_version.empty()) {
      t.url += "?api-version=" + ep.api_version;
    } else if (!query.empty()) {
      t.url += "?" + std::string(query);
    }
  }
  if (!ep.api_key.empty()) {
    t.credential = ep.provider == config::Provider::azure ? "api-key: " + ep.api_key
                                                          : "Authorization: Bearer " + ep.api_key;
  }
  return t;
}

}  // namespace ballast
