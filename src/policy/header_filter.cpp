#include "policy/header_filter.hpp"

#include <array>
#include <cctype>

namespace ballast {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

namespace {

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 §7.6.1 hop-by-hop headers, plus those curl or Beast set for each connection.
constexpr std::array<std::string_view, 11> kHopByHop = {"connection",
                                                        "keep-alive",
                                                        "proxy-connection",
                                                        "proxy-authenticate",
                                                        "proxy-authorization",
                                                        "te",
                                                        "trailer",
                                                        "transfer-encoding",
                                                        "upgrade",
                                                        "host",
                                                        "content-length"};

bool hop_by_hop(std::string_view name) {
  for (auto h : kHopByHop) {
    if (iequals(name, h)) return true;
  }
  return false;
}

}  // namespace

bool forward_request_header(std::string_view name) {
  if (hop_by_hop(name) || istarts_with(name, "x-ballast-")) return false;
  // Credentials: the endpoint's own key replaces whatever the client sent.
  if (iequals(name, "authorization") || iequals(name, "api-key") || iequals(name, "x-api-key") ||
      iequals(name, "cookie")) {
    return false;
  }
  // ballast reads streams and usage, so it asks for identity encoding itself.
  if (iequals(name, "accept-encoding") || iequals(name, "expect")) return false;
  return true;
}

bool forward_response_header(std::string_view name) {
  if (hop_by_hop(name) || istarts_with(name, "x-ballast-")) return false;
  // Server and Date describe ballast's own response; cookies would be set for ballast's origin.
  return !iequals(name, "set-cookie") && !iequals(name, "content-encoding") && !iequals(name, "server") &&
         !iequals(name, "date");
}

}  // namespace ballast
