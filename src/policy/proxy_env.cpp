#include "policy/proxy_env.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstdint>
#include <optional>

#include "policy/header_filter.hpp"

namespace ballast {

namespace {

std::optional<uint32_t> ipv4(std::string_view s) {
  std::string z(s);
  in_addr a{};
  if (inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool entry_matches(std::string_view entry, std::string_view host) {
  if (entry == "*") return true;
  if (size_t slash = entry.find('/'); slash != std::string_view::npos) {
    auto net = ipv4(entry.substr(0, slash));
    auto addr = ipv4(host);
    int bits = 0;
    for (char c : entry.substr(slash + 1)) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      bits = bits * 10 + (c - '0');
      if (bits > 32) return false;  // before a long run of digits overflows it
    }
    if (!net || !addr) return false;
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (*net & mask) == (*addr & mask);
  }
  // Strip a port ("host:8080"), but not from a bracketed IPv6 literal's inside.
  if (entry.front() != '[') {
    if (size_t colon = entry.find(':');
        colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
      entry = entry.substr(0, colon);
    }
  }
  if (entry.starts_with('.')) entry.remove_prefix(1);
  // Nothing left (":8080", "."): the entry names no host. Compared as "", it would match every
  // host ending in a dot.
  if (entry.empty()) return false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (entry.size() >= 2 && entry.front() == '[' && entry.back() == ']')
    entry = entry.substr(1, entry.size() - 2);
  if (iequals(host, entry)) return true;
  return host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
         iequals(host.substr(host.size() - entry.size()), entry);
}

}  // namespace

std::string no_proxy_match(std::string_view no_proxy, std::string_view host) {
  size_t i = 0;
  while (i <= no_proxy.size()) {
    size_t end = no_proxy.find_first_of(", ", i);
    if (end == std::string_view::npos) end = no_proxy.size();
    std::string_view entry = trim(no_proxy.substr(i, end - i));
    if (!entry.empty() && entry_matches(entry, host)) return std::string(entry);
    i = end + 1;
  }
  return {};
}

ProxyChoice choose_proxy(std::string_view scheme, std::string_view host, std::string_view endpoint_proxy,
                         const GetEnv& getenv) {
  ProxyChoice choice;
  if (!endpoint_proxy.empty()) {
    choice.url = std::string(endpoint_proxy);
    choice.source = "the endpoint's proxy";
    return choice;
  }
  auto first_set = [&](std::initializer_list<const char*> names) -> std::pair<std::string, std::string> {
    for (const char* n : names) {
      const char* v = getenv(n);
      if (v && *v) return {v, n};
    }
    return {};
  };
  auto [url, source] = scheme == "https" ? first_set({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
                                         : first_set({"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"});
  if (url.empty()) return choice;
  auto [no_proxy, ignored] = first_set({"no_proxy", "NO_PROXY"});
  if (std::string entry = no_proxy_match(no_proxy, host); !entry.empty()) {
    choice.bypassed_by = entry;
    return choice;
  }
  choice.url = url;
  choice.source = source;
  return choice;
}

}  // namespace ballast
