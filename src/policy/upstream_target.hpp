// Where a request goes for a given endpoint: the provider's URL form and its credential header.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace ballast {

struct UpstreamTarget {
  std::string url;
  std::string credential;  // a whole header line, "Authorization: Bearer …" or "api-key: …"; empty for none
};

// `api_path` is what follows /v1 in the client's path ("/chat/completions"); `query` is the
// client's query string without '?'.
UpstreamTarget upstream_target(const config::Endpoint& ep, std::string_view api_path, std::string_view query);

}  // namespace ballast
