// How the downstream server sets up Beast's request parser: the header's size is bounded first, the
// body's only once the header is read. Shared by http_server.cpp and the HTTP fuzz target
// (fuzz/http_request.cpp), so the parser fuzzed is the parser served; include it nowhere else, since
// Beast is slow to compile.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>

#include "downstream/http_server.hpp"

namespace ballast {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Before the header is read: it may be at most max_header_bytes [64 KiB]. No body limit yet: Beast
// would refuse a large Content-Length while reading the header, and the client should get a 413 it
// can read instead of a closed connection.
inline void limit_request_header(RequestParser& parser, const ServerOptions& options) {
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  parser.body_limit(boost::none);
}

// Once the header is read: true when its Content-Length is over max_body_bytes [32 MiB] (the body is
// then refused, not read). The limit also applies from here on to a chunked body as it arrives.
inline bool limit_request_body(RequestParser& parser, const ServerOptions& options) {
  bool too_large = parser.content_length() && *parser.content_length() > options.max_body_bytes;
  parser.body_limit(options.max_body_bytes);
  return too_large;
}

}  // namespace ballast
