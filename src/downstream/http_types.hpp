// The downstream side as the request path sees it: a parsed request and a way to answer it,
// whole or as a stream. No Beast here, so the request path and the simulator compile without it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/time.hpp"
#include "common/wakeup.hpp"

namespace ballast {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;
  std::string query;
  Headers headers;
  std::string body;
  std::string peer;        // the client's address
  bool too_large = false;  // the body exceeded the limit and was not read
  // Not read either: the process already holds limits.max_buffered_bytes of request bodies.
  bool over_buffer_bound = false;
  // The HTTP parser refused the request's framing (conflicting lengths, a bad request line, headers
  // over the limit): why, in the parser's words. The connection closes after the answer.
  std::string framing_error;
  bool headers_too_large = false;
  TimePoint received{};  // when the request was fully read

  // The first header named `name` (any case), or nullptr.
  const std::string* header(std::string_view name) const;
};

class Downstream {
 public:
  virtual ~Downstream() = default;

  // A whole response. False when the client is gone.
  virtual boost::asio::awaitable<bool> respond(int status, const Headers& headers, std::string body) = 0;
  // A chunked response: headers, then chunks, then the end. Each is False when the client is gone.
  virtual boost::asio::awaitable<bool> begin_stream(int status, const Headers& headers) = 0;
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  virtual boost::asio::awaitable<bool> end_stream() = 0;
  // Write the response headers only, with this Content-Length, and then `part` of the body
  // (the simulator's cut-short responses).
  virtual boost::asio::awaitable<bool> respond_partial(int status, const Headers& headers, size_t length,
                                                       std::string_view part) = 0;

  // Notices the client leaving while nothing else reads the connection; wakes `wakeup` when it does.
  virtual void watch_disconnect(Wakeup& wakeup) = 0;
  virtual void stop_watching() = 0;
  virtual bool client_gone() const = 0;
  // Looks, without blocking, whether the client has closed its side (a non-streamed request's
  // client is otherwise noticed only when writing to it fails).
  virtual bool peer_closed() = 0;

  // Close without answering; `reset` sends RST instead of FIN.
  virtual void abort(bool reset) = 0;
  // No keep-alive after this response.
  virtual void close_after_response() = 0;
  // The drain's grace period ran out with this request still in flight: end it now, with an
  // answer that says so. The watcher's Wakeup is notified when this turns true.
  virtual bool shutting_down() const = 0;
  // The server is draining (SIGTERM): it accepts no new connections and keeps none alive.
  virtual bool draining() const = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(Request&, Downstream&)>;

}  // namespace ballast
