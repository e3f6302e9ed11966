// The one Beast translation unit of the downstream side (Beast is slow to compile: keep it here).
#include "downstream/http_server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "downstream/request_parser.hpp"
#include "policy/header_filter.hpp"

namespace ballast {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

const std::string* Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

namespace {

// A refused body up to this size is read and dropped before answering 413.
constexpr uint64_t kMaxDrainBytes = uint64_t{64} * 1024 * 1024;
constexpr size_t kDrainChunk = size_t{16} * 1024;

// The status line's reason. Beast writes "<unknown-status>" for a status it does not know (529,
// Cloudflare's 52x, …), which an upstream relayed or a simulator fault may send.
std::string_view reason_phrase(int status) {
  auto known = http::int_to_status(static_cast<unsigned>(status));
  if (known != http::status::unknown) return http::obsolete_reason(known);
  if (status == 425) return "Too Early";
  if (status == 529) return "Site is overloaded";
  switch (status / 100) {
    case 1:
      return "Informational";
    case 2:
      return "Success";
    case 3:
      return "Redirection";
    case 4:
      return "Client Error";
    default:
      return "Server Error";
  }
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
  virtual void force_close() = 0;
  // The grace period is over: the request in flight ends itself, with shutting_down.
  virtual void end_for_shutdown() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, ServerOptions o, Handler h)
      : io(io), options(std::move(o)), handler(std::move(h)), acceptor(io), grace_timer(io) {}

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  std::optional<asio::ssl::context> tls;
  std::unordered_set<SessionBase*> sessions;
  bool stopping = false;
  std::function<void()> on_drained;
  asio::steady_timer grace_timer;
  uint64_t accepted = 0;

  asio::awaitable<void> accept_loop();
  void session_ended(SessionBase* s) {
    sessions.erase(s);
    if (stopping && sessions.empty()) finish_shutdown();
  }
  void finish_shutdown() {
    grace_timer.cancel();
    if (auto done = std::move(on_drained)) {
      on_drained = nullptr;
      asio::post(io, std::move(done));
    }
  }
};

namespace {

// A response's status line and header block, byte for byte as Beast's serializer writes them, in one
// string: the serializer's buffer sequences cost ~20k instructions per response, this a few hundred.
template <class Body>
std::string head_of(const http::response<Body>& res) {
  std::string head;
  size_t size = 16 + res.reason().size();
  for (const auto& f : res) size += f.name_string().size() + f.value().size() + 4;
  head.reserve(size);
  unsigned status = res.result_int();
  head.append("HTTP/1.1 ");
  head.push_back(static_cast<char>('0' + status / 100 % 10));
  head.push_back(static_cast<char>('0' + status / 10 % 10));
  head.push_back(static_cast<char>('0' + status % 10));
  head.push_back(' ');
  head.append(res.reason()).append("\r\n");
  for (const auto& f : res) head.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  head.append("\r\n");
  return head;
}

template <class Stream>
class Session : public Downstream, public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {
    server_->sessions.insert(this);
    server_->options.load->connections.fetch_add(1, std::memory_order_relaxed);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      // For send(): a write the socket cannot take at once returns instead of blocking the loop.
      beast::error_code ec;
      lowest().socket().non_blocking(true, ec);
    }
  }
  ~Session() override {
    server_->options.load->connections.fetch_sub(1, std::memory_order_relaxed);
    server_->session_ended(this);
  }
  Session(const Session&) = delete;  // the server's set of sessions holds its address
  Session& operator=(const Session&) = delete;
  Session(Session&&) = delete;
  Session& operator=(Session&&) = delete;

  asio::awaitable<void> run();

  // Downstream
  asio::awaitable<bool> respond(int status, const Headers& headers, std::string body) override;
  asio::awaitable<bool> begin_stream(int status, const Headers& headers) override;
  asio::awaitable<bool> write_chunk(std::string_view data) override;
  asio::awaitable<bool> end_stream() override;
  asio::awaitable<bool> respond_partial(int status, const Headers& headers, size_t length,
                                        std::string_view part) override;
  void watch_disconnect(Wakeup& wakeup) override;
  void stop_watching() override;
  bool client_gone() const override { return client_gone_; }
  bool peer_closed() override {
    char c;
    ssize_t r = ::recv(lowest().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) client_gone_ = true;
    return client_gone_;
  }
  void abort(bool reset) override;
  void close_after_response() override { keep_alive_ = false; }
  bool shutting_down() const override { return shutting_down_; }
  bool draining() const override { return server_->stopping; }

  // SessionBase
  void close_if_idle() override {
    if (idle_) lowest().socket().close();
  }
  void force_close() override { lowest().socket().close(); }
  void end_for_shutdown() override {
    shutting_down_ = true;
    if (watch_wakeup_) watch_wakeup_->notify();
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  bool keep_alive() const { return keep_alive_ && !server_->stopping; }
  template <class Body>
  void fill(http::response<Body>& res, int status, const Headers& headers) {
    res.version(11);
    res.result(static_cast<unsigned>(status));
    res.reason(reason_phrase(status));
    res.set(http::field::server, server_->options.name);
    for (const auto& [k, v] : headers) res.insert(k, v);
    res.keep_alive(keep_alive());
  }
  bool wrote(beast::error_code ec) {
    if (ec) client_gone_ = true;
    return !ec;
  }
  // Writes `buffers` whole, within the write timeout. On plain TCP the socket is offered them at
  // once first: a client that keeps up takes them in that one send, with no timer armed and no
  // suspension; only what it cannot take yet waits. False when the client is gone.
  template <class Buffers>
  asio::awaitable<bool> send(const Buffers& buffers) {
    beast::buffers_suffix<Buffers> rest(buffers);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ec;
      size_t n = lowest().socket().write_some(buffers, ec);
      if (ec && ec != asio::error::would_block) co_return wrote(ec);
      rest.consume(n);
      if (beast::buffer_bytes(rest) == 0) co_return true;
    }
    lowest().expires_after(server_->options.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, rest, as_tuple_awaitable);
    lowest().expires_never();
    co_return wrote(ec);
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  bool idle_ = true;
  bool keep_alive_ = true;
  bool client_gone_ = false;
  bool shutting_down_ = false;
  bool aborted_ = false;
  bool responded_ = false;
  bool unread_body_ = false;
  // Of the request being answered: a HEAD gets the headers of its answer and no body (RFC 9110
  // 9.3.2); an HTTP/1.0 client cannot read chunks, so a stream goes to it as it comes and the
  // connection's close ends it (RFC 9112 6.1).
  bool head_request_ = false;
  bool http10_ = false;
  bool raw_stream_ = false;  // the stream being written is unchunked (to an HTTP/1.0 client)
  std::string peer_;  // the client's address, looked up once per connection  // a refused body is still
                      // arriving: close gently or the client sees a reset
  // The disconnect watcher: one async_wait on the raw socket, cancellable on its own.
  asio::cancellation_signal watch_cancel_;
  bool watching_ = false;
  Wakeup* watch_wakeup_ = nullptr;
  uint64_t watch_generation_ = 0;
};

template <class Stream>
asio::awaitable<void> Session<Stream>::run() {
  auto self = this->shared_from_this();
  const ServerOptions& opt = server_->options;
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    lowest().expires_after(opt.header_timeout);
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, as_tuple_awaitable);
    if (ec) co_return;
  }
  for (;;) {
    idle_ = true;
    if (server_->stopping) break;
    lowest().expires_after(opt.idle_timeout);
    RequestParser parser;
    limit_request_header(parser, opt);
    head_request_ = http10_ = raw_stream_ = false;
    auto [ec, n] = co_await read_request_header(stream_, buffer_, parser, opt);
    if (ec && ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      // A request the parser refuses is answered and logged, not dropped in silence: the operator
      // sees it, the client reads why.
      Request bad;
      bad.framing_error = ec.message();
      bad.headers_too_large = ec == http::error::header_limit;
      bad.received = Clock::now();
      beast::error_code pec;
      auto peer = lowest().socket().remote_endpoint(pec);
      if (!pec) bad.peer = peer.address().to_string();
      keep_alive_ = false;
      lowest().expires_never();
      co_await server_->handler(bad, *this);
      break;
    }
    if (ec) break;
    idle_ = false;
    Request req;
    bool too_large = limit_request_body(parser, opt);
    // The body's bytes count against the process-wide bound while the request is served: the
    // declared length before it is read, a chunked body's once it is.
    int64_t held = 0;
    if (!too_large && parser.content_length() && *parser.content_length() > 0) {
      if (opt.load->hold(static_cast<int64_t>(*parser.content_length())))
        held = static_cast<int64_t>(*parser.content_length());
      else
        req.over_buffer_bound = too_large = true;  // read and dropped like a body over the limit
    }
    const auto& head = parser.get();
    if (!too_large && iequals(head[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      lowest().expires_after(opt.write_timeout);
      auto [wec, wn] = co_await http::async_write(stream_, cont, as_tuple_awaitable);
      if (wec) break;
    }
    if (!too_large && !parser.is_done()) {
      lowest().expires_after(opt.header_timeout);
      auto [rec, rn] = co_await http::async_read(stream_, buffer_, parser, as_tuple_awaitable);
      if (rec == http::error::body_limit)
        too_large = true;
      else if (rec)
        break;
    }
    if (too_large && parser.content_length() && *parser.content_length() <= kMaxDrainBytes) {
      // Read and drop a refused body of declared length, so the client finishes sending and then
      // reads the 413: answering mid-upload makes most clients report a broken connection instead.
      uint64_t remaining = *parser.content_length();
      size_t buffered = std::min<uint64_t>(buffer_.size(), remaining);
      buffer_.consume(buffered);
      remaining -= buffered;
      // On the heap, and only now: a coroutine's locals live in every connection's frame.
      auto sink = std::make_unique<char[]>(kDrainChunk);
      lowest().expires_after(opt.header_timeout);
      while (remaining > 0) {
        auto [dec, dn] = co_await stream_.async_read_some(
            asio::buffer(sink.get(), std::min<uint64_t>(kDrainChunk, remaining)), as_tuple_awaitable);
        if (dec) break;
        remaining -= dn;
      }
      if (remaining > 0) break;
    }
    lowest().expires_never();
    auto& msg = parser.get();
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(16);
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.too_large = too_large && !req.over_buffer_bound;
    unread_body_ = too_large && !(parser.content_length() && *parser.content_length() <= kMaxDrainBytes);
    if (!too_large) req.body = std::move(msg.body());
    if (!too_large && !parser.content_length() && !req.body.empty()) {
      if (opt.load->hold(static_cast<int64_t>(req.body.size()))) {
        held = static_cast<int64_t>(req.body.size());
      } else {
        req.over_buffer_bound = true;
        std::string().swap(req.body);
      }
    }
    req.received = Clock::now();
    if (peer_.empty()) {
      beast::error_code pec;
      auto peer = lowest().socket().remote_endpoint(pec);
      if (!pec) peer_ = peer.address().to_string();
    }
    req.peer = peer_;
    keep_alive_ = msg.keep_alive() && !too_large;
    head_request_ = msg.method() == http::verb::head;
    http10_ = msg.version() < 11;
    responded_ = false;
    co_await server_->handler(req, *this);
    opt.load->release(held);
    stop_watching();
    if (aborted_ || client_gone_ || !keep_alive_ || !responded_) break;
  }
  if (!aborted_) {
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (unread_body_) {
        // Lingering close: read and drop what the client is still sending, briefly, so that
        // closing does not reset the connection before it has read the answer.
        auto sink = std::make_unique<char[]>(kDrainChunk);
        size_t drained = 0;
        lowest().expires_after(std::chrono::seconds(2));
        while (drained < kMaxDrainBytes) {
          auto [rec, rn] =
              co_await stream_.async_read_some(asio::buffer(sink.get(), kDrainChunk), as_tuple_awaitable);
          if (rec) break;
          drained += rn;
        }
      }
    } else {
      lowest().expires_after(std::chrono::seconds(2));
      co_await stream_.async_shutdown(as_tuple_awaitable);
    }
    lowest().socket().close(ec);
  }
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::respond(int status, const Headers& headers, std::string body) {
  http::response<http::string_body> res;
  fill(res, status, headers);
  // 1xx, 204 and 304 carry no body and no Content-Length (RFC 9110 8.6); every other answer says
  // its length.
  if (status / 100 == 1 || status == 204 || status == 304) {
    res.body().clear();
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  responded_ = true;
  const std::string head = head_of(res);
  const std::array<asio::const_buffer, 2> message{asio::buffer(head), asio::buffer(res.body())};
  if (head_request_) co_return co_await send(asio::buffer(head));
  co_return co_await send(message);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::begin_stream(int status, const Headers& headers) {
  http::response<http::empty_body> res;
  raw_stream_ = http10_;
  if (raw_stream_) keep_alive_ = false;  // the close marks the end
  fill(res, status, headers);
  if (!raw_stream_) res.chunked(true);
  responded_ = true;
  const std::string head = head_of(res);
  co_return co_await send(asio::buffer(head));
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::write_chunk(std::string_view data) {
  if (data.empty() || head_request_) co_return !client_gone_;
  if (raw_stream_) co_return co_await send(asio::buffer(data.data(), data.size()));
  // The chunk's size in hex, its bytes, CRLF after each: one gather write.
  char size[20];
  char* end = std::to_chars(size, size + sizeof(size) - 2, data.size(), 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  const std::array<asio::const_buffer, 3> chunk{asio::buffer(size, static_cast<size_t>(end - size)),
                                                asio::buffer(data.data(), data.size()),
                                                asio::buffer("\r\n", 2)};
  co_return co_await send(chunk);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::end_stream() {
  if (head_request_ || raw_stream_) co_return !client_gone_;
  // The last chunk, without trailers.
  co_return co_await send(asio::buffer("0\r\n\r\n", 5));
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::respond_partial(int status, const Headers& headers, size_t length,
                                                       std::string_view part) {
  http::response<http::empty_body> res;
  fill(res, status, headers);
  res.content_length(length);
  responded_ = true;
  keep_alive_ = false;
  const std::string head = head_of(res);
  const std::array<asio::const_buffer, 2> message{asio::buffer(head), asio::buffer(part.data(), part.size())};
  if (head_request_) co_return co_await send(asio::buffer(head));
  co_return co_await send(message);
}

template <class Stream>
void Session<Stream>::watch_disconnect(Wakeup& wakeup) {
  if (watching_ || client_gone_) return;
  watching_ = true;
  watch_wakeup_ = &wakeup;
  uint64_t generation = ++watch_generation_;
  auto& sock = lowest().socket();
  sock.async_wait(tcp::socket::wait_read,
                  asio::bind_cancellation_slot(watch_cancel_.slot(), [self = this->shared_from_this(), this,
                                                                      generation](beast::error_code ec) {
                    // A watch already stopped (or replaced) has nothing left to say.
                    if (generation != watch_generation_ || !watching_) return;
                    watching_ = false;
                    if (!ec) {
                      // Readable: EOF or an error means the client left. Bytes (a pipelined request,
                      // TLS records) mean it is still there; the watch ends without a verdict.
                      char c;
                      ssize_t r = ::recv(lowest().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
                      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) client_gone_ = true;
                    } else if (ec != asio::error::operation_aborted) {
                      client_gone_ = true;
                    }
                    if (client_gone_ && watch_wakeup_) watch_wakeup_->notify();
                    watch_wakeup_ = nullptr;
                  }));
}

template <class Stream>
void Session<Stream>::stop_watching() {
  if (!watching_) return;
  // Cancelling takes the wait out of the reactor at once; its completion, posted, is then stale.
  watching_ = false;
  watch_wakeup_ = nullptr;
  watch_cancel_.emit(asio::cancellation_type::all);
}

template <class Stream>
void Session<Stream>::abort(bool reset) {
  aborted_ = true;
  beast::error_code ec;
  auto& sock = lowest().socket();
  if (reset) sock.set_option(asio::socket_base::linger(true, 0), ec);
  sock.close(ec);
}

template <class S>
void spawn_session(const std::shared_ptr<HttpServer::Impl>& impl, S stream) {
  auto session = std::make_shared<Session<S>>(impl, std::move(stream));
  asio::co_spawn(impl->io, session->run(), [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("connection ended by an unexpected error: {}", ex.what());
    }
  });
}

}  // namespace

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  auto self = shared_from_this();
  asio::steady_timer backoff(io);
  ServerLoad& load = *options.load;
  for (;;) {
    // At limits.max_connections, new connections wait in the kernel's accept queue until one
    // closes (in any worker: checked every few milliseconds).
    while (load.connections.load(std::memory_order_relaxed) >= load.max_connections && !stopping) {
      if (!load.at_connection_limit.exchange(true))
        spdlog::warn("limits.max_connections ({}) reached: new connections wait until others close",
                     load.max_connections);
      backoff.expires_after(std::chrono::milliseconds(5));
      co_await backoff.async_wait(as_tuple_awaitable);
    }
    if (stopping) co_return;
    if (load.connections.load(std::memory_order_relaxed) < load.max_connections * 9 / 10)
      load.at_connection_limit.store(false, std::memory_order_relaxed);
    auto [ec, socket] = co_await acceptor.async_accept(as_tuple_awaitable);
    if (!acceptor.is_open() || stopping) co_return;
    if (ec) {
      // Out of descriptors or memory: pause instead of spinning; the listen queue holds the rest.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(as_tuple_awaitable);
      continue;
    }
    ++accepted;
    beast::error_code oec;
    socket.set_option(tcp::no_delay(true), oec);
    if (tls) {
      spawn_session(self, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls));
    } else {
      spawn_session(self, beast::tcp_stream(std::move(socket)));
    }
  }
}

bool ServerLoad::hold(int64_t n) {
  int64_t now = buffered_bytes.fetch_add(n, std::memory_order_relaxed) + n;
  if (now <= max_buffered_bytes || now == n) return true;  // one body alone always fits
  buffered_bytes.fetch_sub(n, std::memory_order_relaxed);
  return false;
}

HttpServer::HttpServer(asio::io_context& io, ServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

std::string HttpServer::listen(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return "'" + host_port + "' is not HOST:PORT";
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = host_port.substr(colon + 1);
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  auto results = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) return "cannot resolve '" + host + "': " + ec.message();
  tcp::endpoint ep = results.begin()->endpoint();
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    a.close();
    std::string hint =
        ec == asio::error::address_in_use ? " (another process is listening there: pick another port)" : "";
    return "cannot listen on " + host_port + ": " + ec.message() + hint;
  }
  const auto& o = impl_->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    try {
      impl_->tls.emplace(asio::ssl::context::tls_server);
      impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                              asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                              asio::ssl::context::no_tlsv1_1);
      impl_->tls->use_certificate_chain_file(o.tls_cert_file);
      impl_->tls->use_private_key_file(o.tls_key_file, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      a.close();
      return "cannot load the TLS certificate or key (" + o.tls_cert_file + ", " + o.tls_key_file +
             "): " + e.what();
    }
  }
  return "";
}

std::string HttpServer::share_listener(const HttpServer& first) {
  auto& from = first.impl_->acceptor;
  int fd = ::dup(from.native_handle());
  if (fd < 0) return std::string("cannot share the listening socket: ") + std::strerror(errno);
  beast::error_code ec;
  impl_->acceptor.assign(from.local_endpoint(ec).protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return "cannot share the listening socket: " + ec.message();
  }
  return "";
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

std::string HttpServer::address() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void HttpServer::start() {
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

void HttpServer::shutdown(Duration grace, std::function<void()> done) {
  auto& s = *impl_;
  s.stopping = true;
  s.on_drained = std::move(done);
  beast::error_code ec;
  s.acceptor.close(ec);
  for (auto* session : std::vector<SessionBase*>(s.sessions.begin(), s.sessions.end()))
    session->close_if_idle();
  if (s.sessions.empty()) {
    s.finish_shutdown();
    return;
  }
  s.grace_timer.expires_after(grace);
  s.grace_timer.async_wait([impl = impl_](beast::error_code ec) {
    if (ec) return;
    spdlog::warn("shutdown grace period over: ending {} connection(s) still busy with shutting_down",
                 impl->sessions.size());
    // Each request in flight ends itself first, so its client reads why (an SSE error event, or a
    // 503) and its log line is written; a second later whatever is left is closed.
    for (auto* session : std::vector<SessionBase*>(impl->sessions.begin(), impl->sessions.end()))
      session->end_for_shutdown();
    impl->grace_timer.expires_after(std::chrono::seconds(1));
    impl->grace_timer.async_wait([impl](beast::error_code ec2) {
      if (ec2) return;
      for (auto* session : std::vector<SessionBase*>(impl->sessions.begin(), impl->sessions.end()))
        session->force_close();
      impl->finish_shutdown();
    });
  });
}

size_t HttpServer::connections() const {
  return impl_->sessions.size();
}
uint64_t HttpServer::connections_accepted() const {
  return impl_->accepted;
}

}  // namespace ballast
