#include "upstream/curl_multi.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

namespace ballast {

namespace asio = boost::asio;

TransportError translate_curl_error(CURLcode code, bool proxy_used, bool connected) {
  switch (code) {
    case CURLE_OK:
      return TransportError::none;
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::proxy;
    case CURLE_COULDNT_RESOLVE_HOST:
      return TransportError::dns;
    case CURLE_COULDNT_CONNECT:
      return proxy_used ? TransportError::proxy : TransportError::connect_refused;
    case CURLE_OPERATION_TIMEDOUT:
      if (connected) return TransportError::other;
      return proxy_used ? TransportError::proxy : TransportError::connect_timeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
      return TransportError::tls;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_SEND_FAIL_REWIND:  // a reused connection died before answering: see Transfer::start
      return TransportError::reset;
    default:
      return TransportError::other;
  }
}

// One socket curl uses. It lives from curl's open callback to its close callback (not from
// POLL_IN to POLL_REMOVE), so a descriptor number reused by the kernel is never mistaken for an
// old one. Sockets curl did not open through us (the resolver's wake-up pair) are borrowed.
struct CurlMulti::Socket {
  Socket(asio::io_context& io, curl_socket_t fd, bool owned) : descriptor(io, fd), fd(fd), owned(owned) {}
  asio::posix::stream_descriptor descriptor;
  curl_socket_t fd;
  bool owned;
  int wanted = 0;  // CURL_POLL_IN / CURL_POLL_OUT bits
  bool reading = false;
  bool writing = false;
  bool closed = false;
};

CurlMulti::CurlMulti(asio::io_context& io) : io_(io), multi_(curl_multi_init()), timer_(io) {
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // Idle keep-alive connections kept for reuse, over all hosts.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 1024L);
}

CurlMulti::~CurlMulti() {
  for (Transfer* t : std::vector<Transfer*>(transfers_.begin(), transfers_.end())) t->detach();
  timer_.cancel();
  curl_multi_cleanup(multi_);
  for (CURL* e : idle_easies_) curl_easy_cleanup(e);
  for (auto& [fd, s] : sockets_) {
    boost::system::error_code ec;
    s->descriptor.cancel(ec);
    if (s->owned)
      s->descriptor.close(ec);
    else
      s->descriptor.release();
  }
}

CURL* CurlMulti::acquire_easy() {
  if (idle_easies_.empty()) return curl_easy_init();
  CURL* e = idle_easies_.back();
  idle_easies_.pop_back();
  curl_easy_reset(e);
  return e;
}

void CurlMulti::release_easy(CURL* easy) {
  if (idle_easies_.size() < 256)
    idle_easies_.push_back(easy);
  else
    curl_easy_cleanup(easy);
}

curl_socket_t CurlMulti::on_open_socket(void* self, curlsocktype, curl_sockaddr* address) {
  auto* m = static_cast<CurlMulti*>(self);
  int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  m->sockets_[fd] = std::make_shared<Socket>(m->io_, fd, true);
  return fd;
}

int CurlMulti::on_close_socket(void* self, curl_socket_t fd) {
  auto* m = static_cast<CurlMulti*>(self);
  auto it = m->sockets_.find(fd);
  if (it == m->sockets_.end()) return ::close(fd);
  auto s = it->second;
  m->sockets_.erase(it);
  s->closed = true;
  boost::system::error_code ec;
  s->descriptor.cancel(ec);
  s->descriptor.close(ec);
  return 0;
}

int CurlMulti::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto* m = static_cast<CurlMulti*>(self);
  auto it = m->sockets_.find(fd);
  if (it == m->sockets_.end()) {
    if (what == CURL_POLL_REMOVE) return 0;
    it = m->sockets_.emplace(fd, std::make_shared<Socket>(m->io_, fd, false)).first;
  }
  auto s = it->second;
  if (what == CURL_POLL_REMOVE) {
    s->wanted = 0;
    if (!s->owned) {
      // Borrowed: stop watching it and hand the descriptor back without closing it.
      m->sockets_.erase(it);
      s->closed = true;
      boost::system::error_code ec;
      s->descriptor.cancel(ec);
      s->descriptor.release();
    }
    return 0;
  }
  s->wanted = what;
  m->arm(s);
  return 0;
}

void CurlMulti::arm(const std::shared_ptr<Socket>& s) {
  if (s->closed) return;
  // One wait per direction curl asked for; after each readiness curl acts, then the socket re-arms.
  auto watch = [this, &s](int poll_bit, int select_bit, bool Socket::*waiting,
                          asio::posix::descriptor_base::wait_type type) {
    if (!(s->wanted & poll_bit) || s.get()->*waiting) return;
    s.get()->*waiting = true;
    s->descriptor.async_wait(type, [this, s, poll_bit, select_bit, waiting](boost::system::error_code ec) {
      s.get()->*waiting = false;
      if (ec || s->closed) return;
      if (s->wanted & poll_bit) act(s->fd, select_bit);
      arm(s);
    });
  };
  watch(CURL_POLL_IN, CURL_CSELECT_IN, &Socket::reading, asio::posix::descriptor_base::wait_read);
  watch(CURL_POLL_OUT, CURL_CSELECT_OUT, &Socket::writing, asio::posix::descriptor_base::wait_write);
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* self) {
  auto* m = static_cast<CurlMulti*>(self);
  if (timeout_ms < 0) {
    m->timer_.cancel();
    m->timer_armed_ = false;
    return 0;
  }
  if (timeout_ms == 0) {
    // Not from inside curl's own call: post it, once.
    if (!m->timeout_posted_) {
      m->timeout_posted_ = true;
      asio::post(m->io_, [m] {
        m->timeout_posted_ = false;
        m->act(CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }
  // Re-arming the timer costs a timerfd syscall: only move it earlier. A late wake-up for a
  // deadline curl has since pushed back is a harmless extra call.
  TimePoint at = Clock::now() + Millis(timeout_ms);
  if (m->timer_armed_ && m->timer_at_ <= at) return 0;
  m->timer_armed_ = true;
  m->timer_at_ = at;
  m->timer_.expires_at(at);
  m->timer_.async_wait([m](boost::system::error_code ec) {
    if (ec) return;
    m->timer_armed_ = false;
    m->act(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

void CurlMulti::act(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  collect_finished();
}

void CurlMulti::collect_finished() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    if (t) t->finish(msg->data.result);
  }
}

Transfer::Transfer(CurlMulti& multi, UpstreamRequest request, Wakeup& wakeup)
    : multi_(&multi), request_(std::move(request)), wakeup_(wakeup) {
  multi_->transfers_.insert(this);
}

Transfer::~Transfer() {
  if (!multi_) return;
  cancel();
  if (header_list_) curl_slist_free_all(header_list_);
  if (easy_) multi_->release_easy(easy_);
  multi_->transfers_.erase(this);
}

void Transfer::detach() {
  cancel();
  if (header_list_) curl_slist_free_all(header_list_);
  header_list_ = nullptr;
  if (easy_) curl_easy_cleanup(easy_);
  easy_ = nullptr;
  multi_->transfers_.erase(this);
  multi_ = nullptr;
}

void Transfer::start() {
  easy_ = multi_->acquire_easy();
  CURL* e = easy_;
  curl_easy_setopt(e, CURLOPT_URL, request_.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, this);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error_);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Transfer::on_request_ready);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, this);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &CurlMulti::on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, multi_);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &CurlMulti::on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, multi_);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request_.connect_timeout.count()));
  // An empty string keeps curl from reading the proxy variables itself: ballast decided already.
  curl_easy_setopt(e, CURLOPT_PROXY, request_.proxy.c_str());
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  if (!request_.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, request_.ca_bundle.c_str());
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  // Wait for a multiplexed HTTP/2 stream rather than open a new connection: only over TLS, where
  // HTTP/2 is negotiated. Plain HTTP/1.1 cannot multiplex, so there is nothing to wait for.
  if (request_.url.starts_with("https:")) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  // Idle pooled connections older than this are not reused: below the 60 s idle cut-off of
  // common cloud load balancers, so ballast closes them before they are cut under it.
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 50L);
  // Probes notice a peer that vanished during a long generation.
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
  for (const auto& h : request_.headers) header_list_ = curl_slist_append(header_list_, h.c_str());
  // No "Expect: 100-continue" round trip for large bodies.
  header_list_ = curl_slist_append(header_list_, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_);
  if (request_.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    // The body through a read callback with no way to rewind it: when a reused connection turns
    // out dead, curl cannot re-send the request on a new one by itself (it fails with
    // CURLE_SEND_FAIL_REWIND), so every request the upstream sees is an attempt ballast counts,
    // bounds and logs; the failure is a reset before any response byte, which ballast retries.
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_.body.size()));
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Transfer::on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, this);
    if (request_.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request_.method.c_str());
  }
  started_at_ = last_activity_ = Clock::now();
  running_ = true;
  curl_multi_add_handle(multi_->multi_, e);
}

void Transfer::cancel() {
  if (!running_) return;
  running_ = false;
  // A connection left mid-response cannot be reused; curl closes it when the handle leaves.
  curl_multi_remove_handle(multi_->multi_, easy_);
}

size_t Transfer::on_read(char* buffer, size_t size, size_t n, void* self) {
  auto* t = static_cast<Transfer*>(self);
  size_t count = std::min(size * n, t->request_.body.size() - t->body_sent_);
  std::memcpy(buffer, t->request_.body.data() + t->body_sent_, count);
  t->body_sent_ += count;
  return count;
}

size_t Transfer::on_header(char* data, size_t size, size_t n, void* self) {
  auto* t = static_cast<Transfer*>(self);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) t->header_bytes_ = 0;
  t->header_bytes_ += line.size();
  if (t->header_bytes_ > kMaxResponseHeaderBytes) {
    t->headers_too_large_ = true;
    return 0;  // curl stops the transfer (CURLE_WRITE_ERROR)
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new status line: 1xx responses and redirects start over.
    t->headers_.clear();
    size_t sp = line.find(' ');
    t->status_ = 0;  // stays 0 without a three-digit code after the version
    if (sp != std::string_view::npos && line.size() >= sp + 4)
      std::from_chars(line.data() + sp + 1, line.data() + sp + 4, t->status_);
    if (!t->first_byte_at_) t->first_byte_at_ = Clock::now();
  } else if (line.empty()) {
    if (t->status_ >= 200) {
      t->headers_done_ = true;
      t->last_activity_ = Clock::now();
      t->wakeup_.notify();
    }
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    t->headers_.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return size * n;
}

int Transfer::on_request_ready(void* self, char*, char*, int, int) {
  // The connection (and TLS, and any proxy tunnel) is ready and the request goes out now: the
  // first-byte bound starts here, so the waiting request path is woken to start it.
  auto* t = static_cast<Transfer*>(self);
  t->sent_at_ = Clock::now();
  t->wakeup_.notify();
  return CURL_PREREQFUNC_OK;
}

size_t Transfer::on_body(char* data, size_t size, size_t n, void* self) {
  auto* t = static_cast<Transfer*>(self);
  if (t->buffer_.size() >= t->request_.buffer_limit) {
    // Full: curl keeps these bytes and stops reading the socket until take() resumes it.
    t->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  t->buffer_.append(data, size * n);
  t->last_activity_ = Clock::now();
  t->wakeup_.notify();
  return size * n;
}

std::string Transfer::take() {
  std::string out;
  out.swap(buffer_);
  if (paused_ && running_) {
    paused_ = false;
    curl_easy_pause(easy_, CURLPAUSE_CONT);
  }
  return out;
}

void Transfer::finish(CURLcode code) {
  curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &num_connects_);
  if (code != CURLE_OK) {
    curl_off_t connect_us = 0, tls_us = 0;
    curl_easy_getinfo(easy_, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(easy_, CURLINFO_APPCONNECT_TIME_T, &tls_us);
    bool https = request_.url.starts_with("https:");
    // Not NUM_CONNECTS == 0: that is also what a connect that never completed reports.
    bool connected = https ? tls_us > 0 : connect_us > 0;
    error_ = translate_curl_error(code, !request_.proxy.empty(), connected);
    error_text_ = curl_error_[0] ? curl_error_ : curl_easy_strerror(code);
    long proxy_status = 0;
    curl_easy_getinfo(easy_, CURLINFO_HTTP_CONNECTCODE, &proxy_status);
    if (proxy_status >= 300) {
      error_ = TransportError::proxy;
      error_text_ = "the proxy answered CONNECT with " + std::to_string(proxy_status);
    }
  }
  running_ = false;
  curl_multi_remove_handle(multi_->multi_, easy_);
  done_ = true;
  last_activity_ = Clock::now();
  wakeup_.notify();
}

std::optional<TimePoint> Transfer::sent_at() const {
  return sent_at_;
}

bool Transfer::reused_connection() const {
  long connects = num_connects_;
  if (connects < 0 && easy_) curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &connects);
  return connects == 0 && error_ != TransportError::connect_refused &&
         error_ != TransportError::connect_timeout && error_ != TransportError::dns;
}

PhaseTimings Transfer::timings() const {
  PhaseTimings t;
  if (!easy_) return t;
  auto ms = [&](CURLINFO info) -> std::optional<double> {
    curl_off_t us = 0;
    if (curl_easy_getinfo(easy_, info, &us) != CURLE_OK || us <= 0) return std::nullopt;
    return static_cast<double>(us) / 1000.0;
  };
  t.dns_ms = ms(CURLINFO_NAMELOOKUP_TIME_T);
  t.connect_ms = ms(CURLINFO_CONNECT_TIME_T);
  t.tls_ms = ms(CURLINFO_APPCONNECT_TIME_T);
  if (first_byte_at_) t.first_byte_ms = to_ms(*first_byte_at_ - started_at_);
  return t;
}

}  // namespace ballast
