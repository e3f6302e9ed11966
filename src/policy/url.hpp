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

}  // namespace ballast
