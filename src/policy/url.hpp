// Just enough URL parsing for endpoints and proxies: scheme, host, port, path, query.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ballast {

struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // IPv6 literals keep their brackets
  int port = 0;        // explicit, or the scheme's default
  std::string path;    // without a trailing slash; "" for the root
  std::string query;   // without the '?'
  bool explicit_port = false;

  std::string host_port() const { return host + ":" + std::to_string(port); }
};

// Accepts http:// and https:// URLs only. Returns nothing, with `error` set, otherwise.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

// `url` as it may be shown: a `user:password@` in it becomes `***@`. Every message and log line
// that names a proxy shows it this way.
std::string redact_credentials(std::string_view url);

// A path segment with its %XX escapes decoded (as clients escape a name put in a path: "a%2Fb" is
// "a/b"). An escape that is not two hex digits is kept as it is.
std::string percent_decoded(std::string_view segment);

// localhost, 127.0.0.0/8, ::1 (with or without brackets), *.localhost.
bool is_loopback_host(std::string_view host);
// Where a host is, judged from its name or address alone (no DNS): loopback (localhost,
// 127.0.0.0/8, ::1), a private network (10/8, 172.16/12, 192.168/16, 100.64/10 carrier-grade NAT and
// tailnets, 169.254/16 and fe80::/10 link-local, fc00::/7, and the private-use names *.local,
// *.internal, *.lan, *.home.arpa, *.svc), a single label (a compose or Kubernetes service such as
// "ollama" or "vllm"), or public.
enum class HostKind { loopback, private_network, single_label, public_network };
HostKind host_kind(std::string_view host);
// A host on this machine or its network, where a local model server lives: any kind but public.
bool is_local_host(std::string_view host);

}  // namespace ballast
