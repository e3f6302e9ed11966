// Which egress proxy an endpoint is reached through. Python and Node clients read the proxy
// variables in either case and users set either, so ballast does too (curl alone ignores
// HTTP_PROXY in upper case). A per-endpoint `proxy:` wins over the environment.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ballast {

using GetEnv = std::function<const char*(const char*)>;

struct ProxyChoice {
  std::string url;          // empty: connect directly
  std::string source;       // "HTTPS_PROXY", "endpoint proxy", … for messages
  std::string bypassed_by;  // the NO_PROXY entry that sent the host direct, if one did
};

ProxyChoice choose_proxy(std::string_view scheme, std::string_view host, std::string_view endpoint_proxy,
                         const GetEnv& getenv);

// NO_PROXY semantics shared by curl, requests and httpx: comma or space separated entries;
// "*" matches everything; "example.com" and ".example.com" match the domain and its subdomains;
// an IPv4 CIDR such as "10.0.0.0/8" matches addresses inside it. Ports in entries are ignored.
// Returns the matching entry, or "" when none matches.
std::string no_proxy_match(std::string_view no_proxy, std::string_view host);

}  // namespace ballast
