#include "policy/url.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <string>

namespace ballast {

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<Url> {
    if (error) *error = why;
    return std::nullopt;
  };
  Url u;
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return fail("must start with http:// or https://");
  for (char c : text.substr(0, scheme_end)) u.scheme.push_back(static_cast<char>(std::tolower(c)));
  if (u.scheme != "http" && u.scheme != "https") return fail("must start with http:// or https://");
  std::string_view rest = text.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    // user:pass@ is legal for proxies; keep it out of the host.
    authority = authority.substr(authority.rfind('@') + 1);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed '[' in its host");
    u.host = std::string(authority.substr(0, close + 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return fail("has junk after its IPv6 host");
      port_text = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return fail("has no host");
  for (char c : u.host) {
    if (std::isspace(static_cast<unsigned char>(c))) return fail("has a space in its host");
  }
  if (!port_text.empty() || authority.ends_with(":")) {
    if (port_text.empty() || port_text.size() > 5) return fail("has an invalid port");
    int p = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return fail("has an invalid port");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return fail("has a port outside 1-65535");
    u.port = p;
    u.explicit_port = true;
  } else {
    u.port = u.scheme == "https" ? 443 : 80;
  }
  size_t hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);
  size_t q = tail.find('?');
  u.path = std::string(tail.substr(0, q));
  if (q != std::string_view::npos) u.query = std::string(tail.substr(q + 1));
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  return u;
}

std::string redact_credentials(std::string_view url) {
  size_t scheme_end = url.find("://");
  size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  // The last '@' anywhere, not only before the first '/': a password written unencoded may hold
  // '/', '?' or '#' itself. A path with an '@' in it is hidden too; a secret never shows.
  size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + "***" + std::string(url.substr(at));
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.") ||
         host.ends_with(".localhost");
}

HostKind host_kind(std::string_view host) {
  std::string h(host);
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (size_t zone = h.find('%'); zone != std::string::npos) h.resize(zone);  // fe80::1%eth0
  if (!h.empty() && h.back() == '.') h.pop_back();                           // a fully qualified name
  if (h.empty()) return HostKind::public_network;
  if (h == "localhost" || h.ends_with(".localhost")) return HostKind::loopback;
  auto v4 = [](const unsigned char* b) {
    if (b[0] == 127 || b[0] == 0) return HostKind::loopback;  // 0.0.0.0 reaches this host too
    if (b[0] == 10 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168) ||
        (b[0] == 169 && b[1] == 254) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127))
      return HostKind::private_network;
    return HostKind::public_network;
  };
  in_addr a4{};
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return v4(reinterpret_cast<const unsigned char*>(&a4));
  in6_addr a6{};
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    const unsigned char* b = a6.s6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6)) return HostKind::loopback;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) return v4(b + 12);
    if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) return HostKind::private_network;
    return HostKind::public_network;
  }
  if (h.find('.') == std::string::npos) return HostKind::single_label;
  // Names reserved or conventional for private networks: mDNS (.local), ICANN's private-use
  // .internal (host.docker.internal), RFC 8375's .home.arpa, home routers' .lan, Kubernetes' .svc.
  for (std::string_view suffix : {".local", ".internal", ".home.arpa", ".lan", ".svc"}) {
    if (h.ends_with(suffix)) return HostKind::private_network;
  }
  return HostKind::public_network;
}

bool is_local_host(std::string_view host) {
  return host_kind(host) != HostKind::public_network;
}

std::string percent_decoded(std::string_view segment) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] == '%' && i + 2 < segment.size() && hex(segment[i + 1]) >= 0 && hex(segment[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(segment[i + 1]) * 16 + hex(segment[i + 2])));
      i += 2;
    } else {
      out.push_back(segment[i]);
    }
  }
  return out;
}

}  // namespace ballast
