#include "doctor/probes.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "policy/classify.hpp"
#include "policy/duration.hpp"
#include "policy/failure_message.hpp"
#include "policy/json_read.hpp"
#include "policy/sse_scanner.hpp"
#include "policy/upstream_target.hpp"
#include "policy/url.hpp"
#include "upstream/curl_multi.hpp"

namespace ballast::doctor {

namespace {

double ms_since(TimePoint t) {
  return to_ms(Clock::now() - t);
}

std::string strip_brackets(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

// ---- DNS -------------------------------------------------------------------------------------

struct Resolution {
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> lens;
  std::vector<std::string> text;
  std::string error;
};

// getaddrinfo has no timeout of its own: it runs on a thread this waits for, at most `bound`.
Resolution resolve(const std::string& host, int port, Millis bound) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Resolution result;
  };
  auto shared = std::make_shared<Shared>();
  std::thread([shared, host = strip_brackets(host), port] {
    Resolution r;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (rc != 0) {
      r.error = gai_strerror(rc);
    } else {
      for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        sockaddr_storage ss{};
        std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        char buf[INET6_ADDRSTRLEN] = {};
        const void* raw =
            ai->ai_family == AF_INET6
                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
                : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
        ::inet_ntop(ai->ai_family, raw, buf, sizeof buf);
        std::string text = ai->ai_family == AF_INET6 ? fmt::format("[{}]", buf) : std::string(buf);
        if (std::find(r.text.begin(), r.text.end(), text) != r.text.end()) continue;
        r.addrs.push_back(ss);
        r.lens.push_back(ai->ai_addrlen);
        r.text.push_back(std::move(text));
      }
      ::freeaddrinfo(list);
    }
    std::lock_guard lock(shared->mu);
    shared->result = std::move(r);
    shared->done = true;
    shared->cv.notify_one();
  }).detach();
  std::unique_lock lock(shared->mu);
  if (!shared->cv.wait_for(lock, bound, [&] { return shared->done; })) {
    Resolution r;
    r.error = fmt::format("no answer from the resolver within {}", format_duration(bound));
    return r;
  }
  return std::move(shared->result);
}

// ---- TCP -------------------------------------------------------------------------------------

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

enum class ConnectResult { connected, refused, no_answer, other };

struct Attempt {
  Fd fd;
  ConnectResult result = ConnectResult::no_answer;
  std::string error;
};

// Connects to every address at once and waits for all of them together, at most `bound`: a
// silent IPv6 address costs no more time than a refusing IPv4 one.
std::vector<Attempt> connect_all(const std::vector<sockaddr_storage>& addrs,
                                 const std::vector<socklen_t>& lens, Millis bound) {
  std::vector<Attempt> out(addrs.size());
  std::vector<pollfd> polls;
  std::vector<size_t> which;
  for (size_t i = 0; i < addrs.size(); ++i) {
    Attempt& a = out[i];
    a.fd = Fd(::socket(addrs[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (a.fd.fd < 0) {
      a.result = ConnectResult::other;
      a.error = std::strerror(errno);
      continue;
    }
    if (::connect(a.fd.fd, reinterpret_cast<const sockaddr*>(&addrs[i]), lens[i]) == 0) {
      a.result = ConnectResult::connected;
      continue;
    }
    if (errno != EINPROGRESS) {
      a.result = errno == ECONNREFUSED ? ConnectResult::refused : ConnectResult::other;
      a.error = std::strerror(errno);
      a.fd.reset();
      continue;
    }
    polls.push_back({a.fd.fd, POLLOUT, 0});
    which.push_back(i);
  }
  const TimePoint until = Clock::now() + bound;
  size_t pending = polls.size();
  while (pending > 0) {
    auto left = std::chrono::duration_cast<Millis>(until - Clock::now()).count();
    if (left <= 0 || ::poll(polls.data(), polls.size(), static_cast<int>(left)) <= 0) break;
    for (size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].fd < 0 || polls[k].revents == 0) continue;
      Attempt& a = out[which[k]];
      int err = 0;
      socklen_t elen = sizeof err;
      ::getsockopt(a.fd.fd, SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err == 0) {
        a.result = ConnectResult::connected;
      } else {
        a.error = std::strerror(err);
        a.result = err == ECONNREFUSED                                             ? ConnectResult::refused
                   : err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ? ConnectResult::no_answer
                                                                                   : ConnectResult::other;
        a.fd.reset();
      }
      polls[k].fd = -1;  // poll ignores it from now on
      --pending;
    }
  }
  for (auto& a : out) {
    if (a.result == ConnectResult::no_answer) a.fd.reset();
  }
  return out;
}

// One connect, for a second look at the same address.
ConnectResult connect_to(const sockaddr_storage& addr, socklen_t len, Millis bound, Fd& out) {
  auto attempts = connect_all({addr}, {len}, bound);
  if (attempts[0].result == ConnectResult::connected) out = std::move(attempts[0].fd);
  return attempts[0].result;
}

// Waits until `fd` is readable (or writable) or `until` passes.
bool wait_fd(int fd, short events, TimePoint until) {
  auto left = std::chrono::duration_cast<Millis>(until - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left)) > 0;
}

// ---- proxy CONNECT ---------------------------------------------------------------------------

// Asks the proxy for a tunnel to host:port. Returns the proxy's status (0: no answer in time).
int proxy_connect(int fd, const std::string& hostport, TimePoint until, std::string& status_line) {
  std::string req = fmt::format("CONNECT {} HTTP/1.1\r\nHost: {}\r\n\r\n", hostport, hostport);
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 0;
  std::string got;
  char buf[1024];
  while (got.find("\r\n\r\n") == std::string::npos && got.size() < size_t{16} * 1024) {
    if (!wait_fd(fd, POLLIN, until)) return 0;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  status_line = got.substr(0, got.find("\r\n"));
  int status = 0;
  if (status_line.starts_with("HTTP/") && status_line.size() >= 12)
    std::from_chars(status_line.data() + 9, status_line.data() + 12, status);  // left 0 if not digits
  return status;
}

// True when the other side answers a plain HTTP request with an HTTP response.
bool speaks_plain_http(int fd, TimePoint until) {
  static constexpr std::string_view kRequest = "GET / HTTP/1.0\r\n\r\n";
  if (::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kRequest.size()))
    return false;
  char buf[8];
  size_t got = 0;
  while (got < 5 && wait_fd(fd, POLLIN, until)) {
    ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got >= 5 && std::string_view(buf, 5) == "HTTP/";
}

// ---- TLS -------------------------------------------------------------------------------------

struct TlsResult {
  bool ok = false;
  bool plain_http = false;  // the other side answered the handshake in plain HTTP
  std::string detail;
};

// The CAs curl trusts when it is given none (its built-in bundle and directory): the tls hop checks
// the certificate against exactly what the models and chat hops, and the gateway, will use.
struct CurlDefaultCas {
  std::string file, dir;
};
const CurlDefaultCas& curl_default_cas() {
  static const CurlDefaultCas cas = [] {
    CurlDefaultCas c;
    CURL* easy = curl_easy_init();
    char* v = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_CAINFO, &v) == CURLE_OK && v) c.file = v;
    v = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_CAPATH, &v) == CURLE_OK && v) c.dir = v;
    curl_easy_cleanup(easy);
    return c;
  }();
  return cas;
}

// `ca_bundle` (empty: curl's default CAs) is what certificates are checked against; `ca_shown`
// names it in the hop's detail.
TlsResult tls_handshake(int fd, const std::string& host, const std::string& ca_bundle,
                        const std::string& ca_shown, bool verify, TimePoint until) {
  TlsResult r;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (verify && !ca_bundle.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_bundle.c_str(), nullptr) != 1) {
      ERR_clear_error();
      r.detail = fmt::format("{} holds no certificate that can be read (PEM expected)", ca_shown);
      return r;
    }
  } else if (verify) {
    const CurlDefaultCas& cas = curl_default_cas();
    if (cas.file.empty() && cas.dir.empty())
      SSL_CTX_set_default_verify_paths(ctx.get());
    else
      SSL_CTX_load_verify_locations(ctx.get(), cas.file.empty() ? nullptr : cas.file.c_str(),
                                    cas.dir.empty() ? nullptr : cas.dir.c_str());
    ERR_clear_error();
  }
  SSL_CTX_set_verify(ctx.get(), verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  std::string name = strip_brackets(host);
  bool is_ip =
      name.find_first_not_of("0123456789.") == std::string::npos || name.find(':') != std::string::npos;
  if (!is_ip) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (verify) {
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str());
    else
      SSL_set1_host(ssl.get(), name.c_str());
  }
  SSL_set_fd(ssl.get(), fd);
  ERR_clear_error();
  for (;;) {
    int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    int err = SSL_get_error(ssl.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until)) {
        r.detail = "no handshake answer in time";
        return r;
      }
      continue;
    }
    unsigned long e = ERR_peek_error();
    long verify_result = SSL_get_verify_result(ssl.get());
    if (verify_result != X509_V_OK) {
      r.detail = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify_result));
    } else if (e != 0) {
      int reason = ERR_GET_REASON(e);
      // What OpenSSL says when the other side answers a ClientHello in plain HTTP.
      r.plain_http = reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
                     reason == SSL_R_HTTP_REQUEST;
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      r.detail = buf;
    } else {
      r.detail = "the connection closed during the handshake";
    }
    ERR_clear_error();
    return r;
  }
  r.ok = true;
  r.detail = fmt::format("{}, {}{}", SSL_get_version(ssl.get()), SSL_get_cipher_name(ssl.get()),
                         verify ? fmt::format(", certificate verified{} against {}",
                                              is_ip ? std::string() : " for " + name, ca_shown)
                                : "");
  return r;
}

// ---- HTTP ------------------------------------------------------------------------------------

struct HttpResult {
  CURLcode code = CURLE_OK;
  std::string error;
  TransportError transport = TransportError::none;  // curl's code, translated as the gateway's are
  bool timed_out = false;  // doctor's own bound for the request ran out after the connection was made
  int status = 0;
  std::string content_type, server;  // the final response's headers, "" when absent
  std::string body;                  // its first 64 KiB: an error body, a page, a list, a stream
  std::optional<double> first_byte_ms, first_token_ms;
  double total_ms = 0;
  bool first_token_late = false;  // aborted: no token within the bound
  bool idle_late = false;         // aborted: the stream went silent for longer than its idle bound
  int events = 0;                 // SSE events of a 2xx event stream, keep-alive comments aside
  bool done = false;              // the stream is whole: [DONE], every choice finished, or its final event
  bool malformed = false;
  std::string stream_error;  // the upstream's own error event, in its words
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string body;
  std::string proxy;
  std::string ca_bundle;
  Millis connect{3'000};
  Millis total{10'000};
  std::optional<Millis> first_token;  // streams
  std::optional<Millis> idle;         // streams: the longest silence once the first token came
};

struct Transfer {
  HttpResult* r = nullptr;
  TimePoint start;
  bool stream = false;
  std::optional<Millis> first_token;
  std::optional<Millis> idle;
  TimePoint last_byte;
  SseScanner scanner;
  StreamProgress progress;  // whole as the SDKs (and the gateway) judge it
};

// Judges the events the scanner holds complete, as the gateway does.
void read_events(Transfer* t) {
  while (auto ev = t->scanner.next()) {
    if (!ev->comment_only) ++t->r->events;
    if (ev->malformed) t->r->malformed = true;
    if ((ev->has_content || ev->terminal) && !t->r->first_token_ms) t->r->first_token_ms = ms_since(t->start);
    // The upstream's own error event: the answer failed, whatever came before it.
    if (ev->upstream_error && t->r->stream_error.empty())
      t->r->stream_error = ev->error_message.empty() ? "an error event" : ev->error_message;
    t->progress.see(*ev);
    t->r->done = t->progress.complete();
  }
}

// Whether the body is read as a stream: only what says it is one, as the gateway does (a page or a
// JSON body is not).
bool reads_events(const Transfer* t) {
  return t->stream && status_class(t->r->status) == StatusClass::success &&
         t->r->content_type.find("text/event-stream") != std::string::npos;
}

size_t on_body(char* data, size_t size, size_t n, void* self) {
  auto* t = static_cast<Transfer*>(self);
  size_t len = size * n;
  if (!t->r->first_byte_ms) t->r->first_byte_ms = ms_since(t->start);
  t->last_byte = Clock::now();
  constexpr size_t kKeep = size_t{64} * 1024;  // enough for any error body
  if (t->r->body.size() < kKeep) t->r->body.append(data, std::min(len, kKeep - t->r->body.size()));
  if (reads_events(t)) {
    t->scanner.feed(std::string_view(data, len));
    read_events(t);
  }
  return len;
}

int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(self);
  const TimePoint now = Clock::now();
  if (t->first_token && !t->r->first_token_ms && now - t->start > *t->first_token) {
    t->r->first_token_late = true;
    return 1;  // abort
  }
  if (t->idle && t->r->first_token_ms && now - t->last_byte > *t->idle) {
    t->r->idle_late = true;
    return 1;
  }
  return 0;
}

HttpResult http(const HttpRequest& req) {
  HttpResult r;
  Transfer t{&r, Clock::now(), req.first_token.has_value(), req.first_token, req.idle, Clock::now(), {}, {}};
  CURL* easy = curl_easy_init();
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(req.total.count()));
  curl_easy_setopt(easy, CURLOPT_PROXY, req.proxy.c_str());  // "" means direct, whatever the environment says
  if (!req.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, req.ca_bundle.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  if (req.method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  }
  char err[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, err);
  // Headers arrive before the body callback: the status decides how the body is read.
  curl_easy_setopt(
      easy, CURLOPT_HEADERFUNCTION, +[](char* d, size_t s, size_t n, void* self) -> size_t {
        auto* tr = static_cast<Transfer*>(self);
        std::string_view line(d, s * n);
        if (line.starts_with("HTTP/")) {
          // The code follows the first space: "HTTP/1.1 200 OK", but "HTTP/2 200"; 0 if it is not digits.
          size_t sp = line.find(' ');
          tr->r->status = 0;
          tr->r->content_type.clear();  // a proxy's CONNECT answer or a 100 came first: not this one's
          tr->r->server.clear();
          if (sp != std::string_view::npos && line.size() >= sp + 4)
            std::from_chars(line.data() + sp + 1, line.data() + sp + 4, tr->r->status);
        } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
          std::string name(line.substr(0, colon));
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          std::string_view value = line.substr(colon + 1);
          while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
          while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
            value.remove_suffix(1);
          if (name == "content-type") tr->r->content_type = std::string(value.substr(0, 200));
          if (name == "server") tr->r->server = std::string(value.substr(0, 100));
        }
        if (!tr->r->first_byte_ms) tr->r->first_byte_ms = ms_since(tr->start);
        return s * n;
      });
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
  r.code = curl_easy_perform(easy);
  r.total_ms = ms_since(t.start);
  if (reads_events(&t)) {
    // The stream ended: an event whose last line ends in a lone \r is complete now.
    t.scanner.end();
    read_events(&t);
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status > 0) r.status = static_cast<int>(status);
  if (r.code != CURLE_OK) {
    r.error = err[0] ? err : curl_easy_strerror(r.code);
    // As the gateway's upstream client does (Transfer::finish): curl's code translated once, here.
    curl_off_t connect_us = 0, tls_us = 0;
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &tls_us);
    const bool connected = req.url.starts_with("https:") ? tls_us > 0 : connect_us > 0;
    r.transport = translate_curl_error(r.code, !req.proxy.empty(), connected);
    r.timed_out = r.code == CURLE_OPERATION_TIMEDOUT && connected;
    long proxy_status = 0;
    curl_easy_getinfo(easy, CURLINFO_HTTP_CONNECTCODE, &proxy_status);
    if (proxy_status >= 300) {
      r.transport = TransportError::proxy;
      r.error = fmt::format("the proxy answered CONNECT with {}", proxy_status);
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(easy);
  return r;
}

// A probe's facts as the gateway's attempts report theirs (policy/outcome), for the one classifier:
// which of doctor's bounds ended it, else how the transport failed; for a 2xx stream, whether it
// ended whole and well-formed.
Outcome outcome_of(const HttpResult& r, bool stream) {
  Outcome o;
  o.status = r.status;
  o.detail = r.error;
  if (r.first_token_late || r.idle_late || r.timed_out) {
    o.timer = expired_bound(r.first_byte_ms.has_value(), stream, r.first_token_ms.has_value());
  } else {
    o.transport = r.transport;
  }
  if (stream && status_class(r.status) == StatusClass::success && o.timer == ErrorCode::ok) {
    o.malformed = r.malformed;
    o.upstream_error = !r.stream_error.empty();
    o.truncated = !r.done;
  }
  if (o.transport == TransportError::reset && status_class(r.status) == StatusClass::success)
    o.truncated = true;  // the answer began, then the connection broke
  o.timings.first_byte_ms = r.first_byte_ms;
  o.timings.first_token_ms = r.first_token_ms;
  o.timings.total_ms = r.total_ms;
  return o;
}

// How an answer that had begun broke, for stream_broken's fix ("the stream …").
std::string broken(const Outcome& o, const HttpResult& r, Millis idle) {
  if (o.malformed) return "carried an event that is not JSON";
  if (o.timer == ErrorCode::stream_idle_timeout)
    return fmt::format("stalled: nothing more came for {}", format_duration(idle));
  return fmt::format("was cut before its end ({})",
                     r.error.empty() ? "it closed without [DONE] or a finish_reason" : r.error);
}

// The server's own words from an OpenAI-shape error body, or Azure's {"error":{"code","message"}}.
std::string error_message(std::string_view body, std::string* code = nullptr) {
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return "";
  std::string_view v;
  if (code && doc["error"]["code"].get(v) == simdjson::SUCCESS) *code = std::string(v);
  if (doc["error"]["message"].get(v) == simdjson::SUCCESS) return std::string(v.substr(0, 200));
  return "";
}

std::vector<std::string> listed_models(std::string_view body) {
  std::vector<std::string> out;
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return out;
  simdjson::dom::array data;
  if (doc["data"].get(data) != simdjson::SUCCESS) return out;
  for (auto item : data) {
    std::string_view id;
    if (item["id"].get(id) == simdjson::SUCCESS) out.emplace_back(id);
  }
  return out;
}

// ---- the hops --------------------------------------------------------------------------------

class Diagnosis {
 public:
  Diagnosis(const Target& t, const ProbeOptions& o) : t_(t), o_(o), start_(Clock::now()) {
    report_.name = t.name;
    ctx_.target = &t_;
    ctx_.model = t.model;
    ctx_.in_container = o.in_container;
  }

  Report run();

 private:
  // Records a hop that began at `began`; false when it failed, with the cause and fix set.
  // `why`, when given, is what the fix says went wrong; otherwise the hop's detail.
  bool hop(const char* name, TimePoint began, bool ok, std::string detail, Cause cause = Cause::ok,
           std::string why = {}) {
    // What the server said (an error quoting the Authorization it was sent) must not show the key.
    scrub_secret(detail, t_.ep.api_key);
    scrub_secret(why, t_.ep.api_key);
    report_.hops.push_back({name, ok, to_ms(began - start_), ms_since(began), detail});
    if (!ok) {
      report_.cause = cause;
      ctx_.detail = why.empty() ? std::move(detail) : std::move(why);
      report_.fix = fix_for(cause, ctx_);
      scrub_secret(report_.fix, t_.ep.api_key);
    }
    return ok;
  }
  // A hop that failed on the wire: its cause is what the one classifier makes of `transport`.
  bool transport_failed(const char* name, TimePoint began, TransportError transport, std::string detail,
                        std::string why = {}) {
    Outcome o;
    o.transport = transport;
    return hop(name, began, false, std::move(detail), classify_probe(o), std::move(why));
  }
  // A 401 or 403: the key. When it looked like a placeholder, that is named; a key the server
  // accepted never is.
  Cause rejected_key() const { return placeholder_key_ ? Cause::placeholder_api_key : Cause::unauthorized; }
  // The CA bundle the TLS hop and the HTTP hops trust, as the hop's detail names it.
  std::string ca_shown() const {
    if (t_.ep.ca_bundle.empty()) return "the system's CAs";
    if (t_.ep.ca_bundle_source.empty() || t_.ep.ca_bundle_source == "ca_bundle")
      return fmt::format("ca_bundle {}", t_.ep.ca_bundle);
    return fmt::format("{} {}", t_.ep.ca_bundle_source, t_.ep.ca_bundle);
  }
  bool network();
  bool models();
  bool chat();
  void concurrency();
  HttpRequest request(const std::string& method, const std::string& api_path) const;
  // The chat hop's whole bound: 3 × the timeout it checks, at most the timeout + 60 s.
  Millis chat_bound() const {
    return std::min(t_.first_token_timeout * 3, t_.first_token_timeout + Millis(60'000));
  }

  const Target& t_;
  const ProbeOptions& o_;
  TimePoint start_;
  Report report_;
  FixContext ctx_;
  ProxyChoice proxy_;
  bool placeholder_key_ = false;
};

Report Diagnosis::run() {
  TimePoint began = Clock::now();
  ConfigCheck cfg = check_config(t_);
  ctx_.address = cfg.address;
  report_.url =
      cfg.address.url.empty() ? (t_.ep.base_url.empty() ? t_.ep.endpoint : t_.ep.base_url) : cfg.address.url;
  placeholder_key_ = cfg.placeholder_key;
  if (!hop("config", began, cfg.cause == Cause::ok, cfg.detail, cfg.cause)) return report_;
  if (network() && models() && chat()) {
    if (o_.probe_concurrency > 0) concurrency();
    report_.cause = Cause::ok;
    report_.fix = fix_for(Cause::ok, ctx_);
  }
  return report_;
}

bool Diagnosis::network() {
  const Address& a = ctx_.address;
  TimePoint began = Clock::now();
  proxy_ = choose_proxy(a.scheme, a.host, t_.ep.proxy, o_.getenv);
  ctx_.proxy_url = redact_credentials(proxy_.url);
  ctx_.proxy_source = proxy_.source;
  std::string proxy_detail;
  if (!proxy_.url.empty()) {
    proxy_detail = fmt::format("via {} (from {})", redact_credentials(proxy_.url), proxy_.source);
    bool from_variable = proxy_.source.find("_proxy") != std::string::npos ||
                         proxy_.source.find("_PROXY") != std::string::npos;
    if (from_variable && is_loopback_host(a.host))
      proxy_detail += fmt::format("; {} goes through the proxy: NO_PROXY does not list it", a.host);
  } else if (!proxy_.bypassed_by.empty()) {
    proxy_detail =
        fmt::format("direct: NO_PROXY entry '{}' bypasses the proxy for {}", proxy_.bypassed_by, a.host);
  } else {
    proxy_detail = "direct: no proxy variables apply";
  }
  hop("proxy", began, true, proxy_detail);

  // The first hop on the wire: the proxy when there is one, else the server itself.
  std::string host = a.host;
  int port = a.port;
  if (!proxy_.url.empty()) {
    auto p = parse_url(proxy_.url);
    if (!p) {
      hop("dns", Clock::now(), false, "the proxy URL is not http(s)://HOST:PORT", Cause::proxy_failure);
      return false;
    }
    host = p->host;
    port = p->port;
  }
  const bool via_proxy = !proxy_.url.empty();
  began = Clock::now();
  Resolution res = resolve(host, port, t_.connect_timeout);
  if (!res.error.empty() || res.addrs.empty()) {
    std::string why = res.error.empty() ? "no addresses" : res.error;
    if (via_proxy)
      return transport_failed("dns", began, TransportError::proxy,
                              fmt::format("the proxy host {} does not resolve: {}", host, why),
                              fmt::format("does not resolve ({})", why));
    return transport_failed("dns", began, TransportError::dns,
                            fmt::format("{} does not resolve: {}", host, why));
  }
  std::string all;
  for (const auto& t : res.text) all += (all.empty() ? "" : ", ") + t;
  hop("dns", began, true, fmt::format("{} → {}", host, all));

  began = Clock::now();
  Fd fd;
  size_t connected = 0;
  std::string outcomes;
  bool any_refused = false, any_silent = false;
  std::vector<Attempt> attempts = connect_all(res.addrs, res.lens, t_.connect_timeout);
  for (size_t i = 0; i < attempts.size(); ++i) {
    Attempt& at = attempts[i];
    std::string what = at.result == ConnectResult::connected ? "connected"
                       : at.result == ConnectResult::refused ? "refused (nothing listening)"
                       : at.result == ConnectResult::no_answer
                           ? fmt::format("no answer within {}", format_duration(t_.connect_timeout))
                           : at.error;
    if (at.result == ConnectResult::connected && fd.fd < 0) {
      fd = std::move(at.fd);
      connected = i;
    }
    any_refused = any_refused || at.result == ConnectResult::refused;
    any_silent = any_silent || at.result == ConnectResult::no_answer;
    outcomes += fmt::format("{}{}:{} {}", outcomes.empty() ? "" : "; ", res.text[i], port, what);
  }
  if (fd.fd < 0) {
    if (via_proxy)
      return transport_failed("connect", began, TransportError::proxy, outcomes,
                              any_refused
                                  ? fmt::format("refuses connections (nothing listens on {}:{})", host, port)
                                  : fmt::format("does not answer on {}:{}", host, port));
    return transport_failed(
        "connect", began,
        any_refused || !any_silent ? TransportError::connect_refused : TransportError::connect_timeout,
        outcomes);
  }
  hop("connect", began, true, outcomes);

  const TimePoint until = Clock::now() + t_.connect_timeout;
  if (via_proxy && a.scheme == "https") {
    began = Clock::now();
    std::string line;
    std::string hostport = fmt::format("{}:{}", a.host, a.port);
    int status = proxy_connect(fd.fd, hostport, until, line);
    if (status != 200) {
      std::string why = status == 0 ? "gave no answer to CONNECT " + hostport
                                    : fmt::format("answered CONNECT {} with '{}'", hostport, line);
      return transport_failed("proxy_connect", began, TransportError::proxy, why, why);
    }
    hop("proxy_connect", began, true, fmt::format("tunnel to {} open", hostport));
  }
  if (a.scheme == "https") {
    began = Clock::now();
    TlsResult tls = tls_handshake(fd.fd, a.host, t_.ep.ca_bundle, ca_shown(), true, until);
    if (!tls.ok && !tls.plain_http && !via_proxy && tls.detail.find("certificate") == std::string::npos) {
      // Some servers just close on a ClientHello: ask in plain HTTP on a fresh connection.
      Fd plain;
      if (connect_to(res.addrs[connected], res.lens[connected], t_.connect_timeout, plain) ==
          ConnectResult::connected)
        tls.plain_http = speaks_plain_http(plain.fd, until);
      if (tls.plain_http) tls.detail += "; the port answers plain HTTP";
    }
    if (tls.plain_http) return hop("tls", began, false, tls.detail, Cause::scheme_mismatch);
    if (!tls.ok) return transport_failed("tls", began, TransportError::tls, tls.detail);
    return hop("tls", began, true, tls.detail);
  }
  if (!via_proxy) {
    // http://: make sure the port does not speak TLS (a common mix-up), by offering a handshake.
    began = Clock::now();
    TlsResult tls = tls_handshake(fd.fd, a.host, "", "", false, until);
    if (tls.ok)
      return hop("tls", began, false,
                 fmt::format("{}:{} completed a TLS handshake ({})", a.host, a.port, tls.detail),
                 Cause::scheme_mismatch);
    hop("tls", began, true, "plain HTTP: the port does not speak TLS");
  }
  return true;
}

HttpRequest Diagnosis::request(const std::string& method, const std::string& api_path) const {
  // A query in the base URL stays after the API's path: {base}/models?x=1, not {base}?x=1/models.
  config::Endpoint ep = t_.ep;
  std::string query;
  if (size_t q = ep.base_url.find('?'); q != std::string::npos) {
    query = ep.base_url.substr(q + 1);
    ep.base_url.resize(q);
  }
  UpstreamTarget target = upstream_target(ep, api_path, query);
  HttpRequest r;
  r.method = method;
  r.url = target.url;
  if (!target.credential.empty()) r.headers.push_back(target.credential);
  r.proxy = proxy_.url;
  r.ca_bundle = t_.ep.ca_bundle;
  r.connect = t_.connect_timeout;
  return r;
}

bool Diagnosis::models() {
  TimePoint began = Clock::now();
  if (t_.ep.provider == config::Provider::azure && t_.ep.base_url.empty()) {
    hop("models", began, true, "skipped: Azure lists deployments only through its management API");
    return true;
  }
  HttpRequest req = request("GET", "/models");
  ctx_.request_url = req.url;
  // A list comes at once: --timeout bounds it too, at most 10 s.
  req.total = t_.connect_timeout + std::min(t_.first_token_timeout, Millis(10'000));
  HttpResult r = http(req);
  std::string code;
  ctx_.status = r.status;
  ctx_.upstream_message = error_message(r.body, &code);
  const std::string what = fmt::format("GET {}", req.url);
  const Outcome outcome = outcome_of(r, false);
  const Cause cause = classify_probe(outcome);
  if (cause != Cause::ok && cause != Cause::upstream_status) {
    std::string why = outcome.timer == ErrorCode::ok ? r.error
                      : r.first_byte_ms ? fmt::format("HTTP {}, then the list did not finish within {}",
                                                      r.status, format_duration(req.total))
                                        : fmt::format("nothing within {}", format_duration(req.total));
    return hop("models", began, false, fmt::format("{}: {}", what, why), cause, why);
  }
  // A proxy's own refusal (407, or a 403 or 5xx that is not the API's JSON) is the proxy's failure.
  if (!proxy_.url.empty() && ctx_.upstream_message.empty() &&
      (r.status == 407 || r.status == 403 || r.status >= 500)) {
    std::string why = r.status == 407 ? "asks for proxy credentials (HTTP 407)"
                      : r.status == 403
                          ? fmt::format("refused to forward to {} (HTTP 403)", ctx_.address.host)
                          : fmt::format("could not reach {} (HTTP {})", ctx_.address.host, r.status);
    return hop("models", began, false, fmt::format("{} → the proxy {}", what, why), Cause::proxy_failure,
               why);
  }
  const StatusClass models_status = status_class(r.status);
  if (models_status == StatusClass::unauthorized)
    return hop("models", began, false, fmt::format("{} → HTTP {}", what, r.status), rejected_key());
  if (models_status == StatusClass::not_found) {
    if (t_.ep.provider == config::Provider::azure)
      return hop("models", began, false, fmt::format("{} → HTTP 404 {}", what, ctx_.upstream_message),
                 Cause::azure_api_version);
    return hop("models", began, false, fmt::format("{} → HTTP 404", what), Cause::wrong_path);
  }
  if (models_status == StatusClass::rate_limited)
    return hop("models", began, false, fmt::format("{} → HTTP 429", what), Cause::rate_limited);
  if (models_status != StatusClass::success)
    return hop("models", began, false, fmt::format("{} → HTTP {}", what, r.status), Cause::upstream_status);
  // A 2xx that is not a model list (a web server's page, another service's JSON) is no API's answer:
  // the gateway's upstream_reset for a 2xx whose body is not the API's.
  if (std::string answered = not_the_api({Answer::Expect::models, r.content_type, r.server, r.body});
      !answered.empty()) {
    Outcome garbled = outcome;
    garbled.malformed = true;
    ctx_.answered = answered;
    return hop("models", began, false, fmt::format("{} → HTTP {} with {}", what, r.status, answered),
               classify_probe(garbled), answered);
  }
  ctx_.listed_models = listed_models(r.body);
  std::string detail = fmt::format("HTTP {}, {} model(s)", r.status, ctx_.listed_models.size());
  if (!ctx_.model.empty() && !ctx_.listed_models.empty() &&
      std::find(ctx_.listed_models.begin(), ctx_.listed_models.end(), ctx_.model) ==
          ctx_.listed_models.end()) {
    return hop("models", began, false, fmt::format("{}; '{}' is not among them", detail, ctx_.model),
               Cause::unknown_model);
  }
  if (ctx_.model.empty() && !ctx_.listed_models.empty()) {
    ctx_.model = ctx_.listed_models.front();
    detail += fmt::format("; trying '{}'", ctx_.model);
  } else if (!ctx_.model.empty()) {
    detail += fmt::format(", '{}' listed", ctx_.model);
  }
  return hop("models", began, true, detail);
}

bool Diagnosis::chat() {
  TimePoint began = Clock::now();
  if (ctx_.model.empty()) ctx_.model = t_.ep.deployment;
  const std::string model = ctx_.model;
  if (model.empty()) {
    hop("chat", began, true, "skipped: no model to ask (give --model)");
    return true;
  }
  HttpRequest req = request("POST", "/chat/completions");
  req.headers.push_back("Content-Type: application/json");
  JsonWriter body;
  body.begin_object().field("model", model).key("messages").begin_array();
  body.begin_object().field("role", "user").field("content", "Reply with the word OK.").end_object();
  body.end_array().field("max_tokens", 8).field("stream", true).end_object();
  req.body = body.take();
  // The check's own bound is longer than the timeout it checks, so that a first token that comes
  // late is measured, and the fix can say how late. It bounds the whole hop; a silence longer than
  // the timeout itself, once tokens flow, is a stall.
  const Millis bound = chat_bound();
  req.first_token = bound;
  req.idle = t_.first_token_timeout;
  req.total = bound;
  HttpResult r = http(req);
  std::string code;
  ctx_.status = r.status;
  ctx_.upstream_message = error_message(r.body, &code);
  auto timing = [&] {
    return fmt::format("first byte {}, first token {}, total {:.0f} ms",
                       r.first_byte_ms ? fmt::format("{:.0f} ms", *r.first_byte_ms) : "-",
                       r.first_token_ms ? fmt::format("{:.0f} ms", *r.first_token_ms) : "-", r.total_ms);
  };
  Outcome outcome = outcome_of(r, true);
  // A 2xx that is no event stream (a page, a JSON body, an error said with 200) is not the API's
  // answer to a streamed request: the gateway's upstream_reset, before any stream began.
  const std::string answered = outcome.timer == ErrorCode::ok && outcome.transport == TransportError::none &&
                                       status_class(r.status) == StatusClass::success
                                   ? not_the_api({Answer::Expect::stream, r.content_type, r.server, r.body})
                                   : std::string();
  if (!answered.empty()) {
    outcome.malformed = true;
    outcome.truncated = false;
  }
  const Cause cause = classify_probe(outcome, r.events > 0);
  // A first token later than the timeout is the finding, whatever the rest of the stream did
  // within what was left of the hop's bound.
  if (r.first_token_ms && *r.first_token_ms > static_cast<double>(t_.first_token_timeout.count()) &&
      (cause == Cause::ok || outcome.timer != ErrorCode::ok)) {
    ctx_.first_token_ms = *r.first_token_ms;
    return hop("chat", began, false, fmt::format("'{}' streamed, but {}", model, timing()),
               Cause::first_token_timeout);
  }
  if (cause == Cause::first_token_timeout) {
    ctx_.first_token_ms = 0;
    return hop("chat", began, false, fmt::format("no token within {} ({})", format_duration(bound), timing()),
               Cause::first_token_timeout);
  }
  if (cause == Cause::first_byte_timeout) {
    std::string why = fmt::format("no response headers within {}", format_duration(bound));
    return hop("chat", began, false, fmt::format("POST {}: {} ({})", req.url, why, timing()), cause, why);
  }
  if (!answered.empty()) {
    ctx_.answered = answered;
    return hop("chat", began, false,
               fmt::format("POST {} → HTTP {} with {} ({})", req.url, r.status, answered, timing()), cause,
               answered);
  }
  const StatusClass chat_status = status_class(r.status);
  if (cause == Cause::upstream_status && chat_status != StatusClass::success) {
    if (chat_status == StatusClass::unauthorized)
      return hop("chat", began, false, fmt::format("HTTP {}", r.status), rejected_key());
    if (chat_status == StatusClass::not_found) {
      Cause c = code == "DeploymentNotFound"                ? Cause::azure_deployment_not_found
                : t_.ep.provider == config::Provider::azure ? Cause::azure_api_version
                : code == "model_not_found" || !ctx_.upstream_message.empty() ? Cause::unknown_model
                                                                              : Cause::wrong_path;
      return hop("chat", began, false, fmt::format("HTTP 404 {}", ctx_.upstream_message), c);
    }
    if (chat_status == StatusClass::rate_limited)
      return hop("chat", began, false, fmt::format("HTTP 429 {}", ctx_.upstream_message),
                 Cause::rate_limited);
    return hop("chat", began, false, fmt::format("HTTP {} {}", r.status, ctx_.upstream_message),
               Cause::upstream_status);
  }
  if (cause == Cause::upstream_status) {  // a 2xx whose stream carried the upstream's own error event
    ctx_.upstream_message = r.stream_error;
    return hop("chat", began, false,
               fmt::format("the upstream reported an error mid-stream: {} ({})", r.stream_error, timing()),
               Cause::upstream_status);
  }
  if (cause == Cause::stream_broken) {
    std::string why = broken(outcome, r, t_.first_token_timeout);
    return hop("chat", began, false, fmt::format("{} ({})", why, timing()), Cause::stream_broken, why);
  }
  if (cause != Cause::ok) {
    std::string why = r.error.empty() ? "the event stream ended before its first event" : r.error;
    return hop("chat", began, false, fmt::format("POST {}: {} ({})", req.url, why, timing()), cause, why);
  }
  return hop("chat", began, true, fmt::format("'{}' streamed: {}", model, timing()));
}

void Diagnosis::concurrency() {
  TimePoint began = Clock::now();
  std::string model = ctx_.model.empty() ? t_.ep.deployment : ctx_.model;
  HttpRequest base = request("POST", "/chat/completions");
  base.headers.push_back("Content-Type: application/json");
  base.body = fmt::format(
      R"({{"model":"{}","messages":[{{"role":"user","content":"Reply with the word OK."}}],"max_tokens":8,"stream":true}})",
      model);
  base.first_token = chat_bound();
  base.idle = t_.first_token_timeout;
  base.total = chat_bound();
  std::string detail;
  double first = 0;
  std::optional<int> climbs;
  bool failed = false;
  for (int c = 1;; c = std::min(c * 2, o_.probe_concurrency)) {
    std::vector<HttpResult> results(static_cast<size_t>(c));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(c));
    for (int i = 0; i < c; ++i)
      threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = http(base); });
    for (auto& th : threads) th.join();
    std::vector<double> ttft;
    int errors = 0;
    for (const auto& r : results) {
      if (r.status == 200 && r.first_token_ms)
        ttft.push_back(*r.first_token_ms);
      else
        ++errors;
    }
    std::sort(ttft.begin(), ttft.end());
    double median = ttft.empty() ? 0 : ttft[ttft.size() / 2];
    if (c == 1) first = median;
    detail += fmt::format("{}{}: {:.0f} ms{}", detail.empty() ? "" : ", ", c, median,
                          errors ? fmt::format(" ({} failed)", errors) : "");
    if (!climbs && c > 1 && (errors > 0 || (first > 0 && median > first * 1.5))) climbs = c;
    failed = failed || errors > 0;
    if (c >= o_.probe_concurrency) break;
  }
  detail = "median first token by concurrency: " + detail;
  detail += climbs ? fmt::format("; latency climbs at {} concurrent requests: set max_in_flight below {}",
                                 *climbs, *climbs)
                   : "; no climb up to " + std::to_string(o_.probe_concurrency);
  report_.hops.push_back({"concurrency", true, to_ms(began - start_), ms_since(began), detail});
}

}  // namespace

Report diagnose(const Target& target, const ProbeOptions& options) {
  return Diagnosis(target, options).run();
}

}  // namespace ballast::doctor
