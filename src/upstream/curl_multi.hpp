// The upstream side: libcurl's multi interface driven by the Asio loop, one CURLM per loop, which
// keeps a pool of keep-alive (and HTTP/2) connections per host. A Transfer is one attempt; it
// buffers a bounded amount of the response and pauses curl beyond it, so a slow client slows the
// upstream read instead of growing memory. curl's error codes are translated here, once.
#pragma once

#include <curl/curl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/time.hpp"
#include "common/wakeup.hpp"
#include "downstream/http_types.hpp"
#include "policy/outcome.hpp"

namespace ballast {

struct UpstreamRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines, credentials included
  std::string_view body;             // must outlive the transfer: the downstream request owns it
  Millis connect_timeout{5'000};
  std::string proxy;                         // empty: direct
  std::string ca_bundle;                     // empty: the system's CAs
  size_t buffer_limit = size_t{256} * 1024;  // received bytes held before curl is paused
};

class CurlMulti;

class Transfer {
 public:
  // `wakeup` is notified whenever something arrives: headers, body bytes, the end.
  Transfer(CurlMulti& multi, UpstreamRequest request, Wakeup& wakeup);
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  void start();
  // Stops the transfer now; its connection is closed, not reused.
  void cancel();

  bool headers_done() const { return headers_done_; }
  // The response's header block passed kMaxResponseHeaderBytes: the transfer was stopped.
  bool headers_too_large() const { return headers_too_large_; }
  static constexpr size_t kMaxResponseHeaderBytes = size_t{64} * 1024;
  int status() const { return status_; }
  const Headers& headers() const { return headers_; }
  Headers take_headers() { return std::move(headers_); }
  const std::string& buffered() const { return buffer_; }
  // Hands over what has been received so far and lets curl read on.
  std::string take();
  bool done() const { return done_; }
  // Facts for the Outcome: transport error, timings, connection reuse.
  TransportError error() const { return error_; }
  const std::string& error_text() const { return error_text_; }
  bool reused_connection() const;
  PhaseTimings timings() const;
  TimePoint started_at() const { return started_at_; }
  // When the request went out (connection, TLS and any proxy tunnel ready); nothing before that.
  std::optional<TimePoint> sent_at() const;
  TimePoint last_activity() const { return last_activity_; }

 private:
  friend class CurlMulti;
  static size_t on_header(char* data, size_t size, size_t n, void* self);
  static size_t on_body(char* data, size_t size, size_t n, void* self);
  static size_t on_read(char* buffer, size_t size, size_t n, void* self);
  static int on_request_ready(void* self, char* primary_ip, char* local_ip, int primary_port, int local_port);
  void finish(CURLcode code);
  // The multi is going away first (process exit): let go of curl now; the destructor does nothing.
  void detach();

  CurlMulti* multi_;
  UpstreamRequest request_;
  size_t body_sent_ = 0;  // how much of request_.body curl has read
  Wakeup& wakeup_;
  CURL* easy_ = nullptr;
  curl_slist* header_list_ = nullptr;
  bool running_ = false;
  bool paused_ = false;
  bool headers_done_ = false;
  bool headers_too_large_ = false;
  size_t header_bytes_ = 0;  // of the current response's header block
  bool done_ = false;
  int status_ = 0;
  Headers headers_;
  std::string buffer_;
  TransportError error_ = TransportError::none;
  std::string error_text_;
  char curl_error_[CURL_ERROR_SIZE] = {};
  TimePoint started_at_{};
  std::optional<TimePoint> first_byte_at_;
  std::optional<TimePoint> sent_at_;
  TimePoint last_activity_{};
  long num_connects_ = -1;
};

class CurlMulti {
 public:
  explicit CurlMulti(boost::asio::io_context& io);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  boost::asio::io_context& io() { return io_; }

 private:
  friend class Transfer;
  struct Socket;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket_data);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* address);
  static int on_close_socket(void* self, curl_socket_t fd);
  void arm(const std::shared_ptr<Socket>& socket);
  void act(curl_socket_t fd, int events);
  void collect_finished();
  CURL* acquire_easy();
  void release_easy(CURL* easy);

  boost::asio::io_context& io_;
  CURLM* multi_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  TimePoint timer_at_{};
  bool timeout_posted_ = false;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets_;
  std::vector<CURL*> idle_easies_;
  // Transfers alive now. Coroutines suspended at exit are destroyed with the io_context, after
  // the multi: the multi detaches them first so that none touches it afterwards.
  std::unordered_set<Transfer*> transfers_;
};

// Translates a finished transfer's curl code into the transport fact it stands for.
TransportError translate_curl_error(CURLcode code, bool proxy_used, bool connected);

}  // namespace ballast
