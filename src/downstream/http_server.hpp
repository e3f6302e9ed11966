// The downstream HTTP/1.1 server shared by `serve` and `sim`: accepts connections, reads requests
// with bounded sizes and idle times, hands each to a Handler, and drains gracefully on shutdown.
#pragma once

#include <atomic>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "downstream/http_types.hpp"

namespace ballast {

// What every worker's server of one process counts together, against the process-wide bounds.
struct ServerLoad {
  int64_t max_connections = 10'000;                 // limits.max_connections: more wait in the accept queue
  int64_t max_buffered_bytes = int64_t{256} << 20;  // limits.max_buffered_bytes: request bodies held
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> buffered_bytes{0};
  std::atomic<bool> at_connection_limit{false};  // said in the log once per spell

  // Holds `n` more bytes of request bodies, or false (nothing held) when that would pass the bound.
  bool hold(int64_t n);
  void release(int64_t n) { buffered_bytes.fetch_sub(n, std::memory_order_relaxed); }
};

struct ServerOptions {
  size_t max_body_bytes = size_t{32} * 1024 * 1024;
  size_t max_header_bytes = size_t{64} * 1024;
  Millis idle_timeout{75'000};    // a kept-alive connection with no request; above common client pool idles
  Millis header_timeout{30'000};  // a request's headers and body, once its first byte arrived
  Millis write_timeout{60'000};   // a client that accepts no data for this long is gone
  std::string tls_cert_file;      // both set: serve HTTPS
  std::string tls_key_file;
  std::string name = "ballast";                                       // the Server header
  std::shared_ptr<ServerLoad> load = std::make_shared<ServerLoad>();  // shared by the workers' servers
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds HOST:PORT (port 0 picks a free one). Returns an error message, or "" on success.
  std::string listen(const std::string& host_port);
  // Accepts on the socket `first` listens on (a duplicate of its descriptor), for the workers of one
  // process: the port stays bound once, so no other process can bind it too.
  std::string share_listener(const HttpServer& first);
  uint16_t port() const;
  std::string address() const;  // "127.0.0.1:4000"
  void start();

  // Stops accepting, closes idle connections, lets busy ones finish their current request, and
  // calls `done` once none is left or `grace` has passed (remaining connections are then closed).
  void shutdown(Duration grace, std::function<void()> done);
  size_t connections() const;
  uint64_t connections_accepted() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ballast
