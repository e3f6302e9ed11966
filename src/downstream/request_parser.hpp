// How the downstream server reads a request's header with Beast: the parser's limits, set in two
// steps (the header's before it is read, the body's after), and the read of the header itself.
// Shared by http_server.cpp and the HTTP fuzz target (fuzz/http_request.cpp), so the parser fuzzed
// is the parser served; include it nowhere else, since Beast is slow to compile.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <tuple>

#include "downstream/http_server.hpp"

namespace ballast {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Before the header is read: it may be max_header_bytes [64 KiB] long in all (read_request_header
// counts; Beast's own limit applies to what one read leaves unparsed). No body limit yet: Beast
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

// Reads a request's header into `parser`, as http::async_read_header does, but holds the whole
// header to max_header_bytes: Beast 1.81 takes complete header fields as they arrive and applies
// its header_limit only to what one read leaves unparsed, so a client whose every read ends just
// past a field could send a header of any size. Returns the error (http::error::header_limit when
// the header is too long) and the bytes the parser took.
template <class Stream>
boost::asio::awaitable<std::tuple<boost::beast::error_code, std::size_t>> read_request_header(
    Stream& stream, boost::beast::flat_buffer& buffer, RequestParser& parser, const ServerOptions& options) {
  namespace http = boost::beast::http;
  using Result = std::tuple<boost::beast::error_code, std::size_t>;
  parser.eager(false);  // stop at the end of the header, as async_read_header does
  std::size_t taken = 0;
  for (;;) {
    boost::beast::error_code ec;
    if (buffer.size() > 0) {
      std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      taken += used;
      if (taken > options.max_header_bytes) co_return Result{http::error::header_limit, taken};
      if (ec != http::error::need_more) co_return Result{ec, taken};
    }
    std::size_t room = boost::beast::read_size(buffer, 65536);
    if (room == 0) co_return Result{http::error::buffer_overflow, taken};
    auto [rec, n] = co_await stream.async_read_some(buffer.prepare(room),
                                                    boost::asio::as_tuple(boost::asio::use_awaitable));
    buffer.commit(n);
    if (rec == boost::asio::error::eof) {
      // As Beast reads it: a connection closed mid-header is a partial message, one closed
      // before any byte of it the end of the stream.
      if (!parser.got_some()) co_return Result{http::error::end_of_stream, taken};
      parser.put_eof(ec);
      co_return Result{ec, taken};
    }
    if (rec) co_return Result{rec, taken};
  }
}

}  // namespace ballast
