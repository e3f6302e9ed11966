// URLs as endpoints and proxies are written (policy/url) and the proxy variables (policy/proxy_env).
// The whole input is read as a URL: what parses must spell back into the same URL, and hiding its
// credentials must not change where it points. The input split at newlines is then a host, a
// NO_PROXY list, a proxy variable's value and an endpoint's proxy, for choose_proxy with a fake
// environment.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "policy/proxy_env.hpp"
#include "policy/url.hpp"

namespace {

bool same(const ballast::Url& a, const ballast::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path &&
         a.query == b.query && a.explicit_port == b.explicit_port;
}

void check_url(std::string_view text) {
  std::string why;
  auto url = ballast::parse_url(text, &why);
  ballast::is_loopback_host(text);
  ballast::is_local_host(text);
  // redact_credentials hides everything up to the last '@' (an unencoded password may hold '/', '?'
  // or '#'): only when that '@' ends the authority does the hidden form keep pointing at the same place.
  const size_t scheme_end = text.find("://");
  const size_t authority_end =
      text.find_first_of("/?#", scheme_end == std::string_view::npos ? 0 : scheme_end + 3);
  const size_t last_at = text.rfind('@');
  const bool at_in_authority =
      last_at == std::string_view::npos || authority_end == std::string_view::npos || last_at < authority_end;
  if (!url) {
    FUZZ_CHECK(!why.empty());
    if (at_in_authority) FUZZ_CHECK(!ballast::parse_url(ballast::redact_credentials(text)));
    return;
  }
  FUZZ_CHECK(url->scheme == "http" || url->scheme == "https");
  FUZZ_CHECK(!url->host.empty() && url->port >= 1 && url->port <= 65535);
  FUZZ_CHECK(url->host.find_first_of("/?#@") == std::string::npos);
  FUZZ_CHECK(url->path.empty() || (url->path.front() == '/' && url->path.back() != '/'));
  FUZZ_CHECK(url->explicit_port || url->port == (url->scheme == "https" ? 443 : 80));
  ballast::is_loopback_host(url->host);
  ballast::is_local_host(url->host);

  // Spelled back without credentials or fragment, it is the same URL.
  std::string spelled = url->scheme + "://" + url->host;
  if (url->explicit_port) spelled += ":" + std::to_string(url->port);
  spelled += url->path;
  if (!url->query.empty()) spelled += "?" + url->query;
  auto again = ballast::parse_url(spelled);
  FUZZ_CHECK(again && same(*url, *again));

  // Shown with its credentials hidden, it still points at the same place.
  if (at_in_authority) {
    auto shown = ballast::parse_url(ballast::redact_credentials(text));
    FUZZ_CHECK(shown && same(*url, *shown));
  }
}

std::vector<std::string_view> split_lines(std::string_view text, size_t max) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    parts.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  parts.push_back(text);
  parts.resize(max);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_url(text);

  auto parts = split_lines(text, 4);
  // Variables are C strings: a value ends at its first NUL.
  auto c_string = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  std::string_view host = parts[0], no_proxy = c_string(parts[1]), proxy = c_string(parts[2]),
                   endpoint_proxy = parts[3];
  check_url(proxy);

  std::string entry = ballast::no_proxy_match(no_proxy, host);
  FUZZ_CHECK(entry.empty() || no_proxy.find(entry) != std::string_view::npos);
  FUZZ_CHECK(ballast::no_proxy_match("*", host) == "*");
  FUZZ_CHECK(ballast::no_proxy_match("", host).empty());

  // The proxy goes in a variable the input's length picks, in either case, as users set them.
  static const char* const kNames[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                                       "HTTP_PROXY",  "all_proxy",   "ALL_PROXY"};
  std::map<std::string, std::string> env;
  env[kNames[size % 6]] = std::string(proxy);
  env[size % 2 ? "no_proxy" : "NO_PROXY"] = std::string(no_proxy);
  ballast::GetEnv getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  for (std::string_view scheme : {"http", "https"}) {
    auto choice = ballast::choose_proxy(scheme, host, endpoint_proxy, getenv);
    if (!endpoint_proxy.empty()) {
      FUZZ_CHECK(choice.url == endpoint_proxy && choice.bypassed_by.empty());
      continue;
    }
    FUZZ_CHECK(choice.url.empty() || choice.bypassed_by.empty());
    if (!choice.url.empty()) {
      FUZZ_CHECK(choice.url == proxy);
      FUZZ_CHECK(env.count(choice.source) == 1);  // the variable it came from, by name
      FUZZ_CHECK(ballast::no_proxy_match(no_proxy, host).empty());
    }
    if (!choice.bypassed_by.empty()) FUZZ_CHECK(!proxy.empty() && choice.bypassed_by == entry);
  }
  return 0;
}
