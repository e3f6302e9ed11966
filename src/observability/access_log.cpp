#include "observability/access_log.hpp"

#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "common/json_writer.hpp"

namespace ballast {

namespace {

void write_timings(JsonWriter& w, const PhaseTimings& t) {
  w.field("dns_ms", t.dns_ms).field("connect_ms", t.connect_ms).field("tls_ms", t.tls_ms);
  w.field("first_byte_ms", t.first_byte_ms)
      .field("first_token_ms", t.first_token_ms)
      .field("total_ms", t.total_ms);
}

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace

std::string format_access_line(const AccessRecord& r, std::string_view timestamp) {
  JsonWriter w;
  w.begin_object();
  w.field("ts", timestamp).field("id", r.id).field("method", r.method).field("path", r.path);
  w.field("peer", r.peer).field("model", r.model).field("endpoint", r.endpoint);
  w.field("upstream_model", r.upstream_model).field("stream", r.stream);
  w.field("status", r.status).field("code", code_name(r.code));
  w.field("duration_ms", r.duration_ms).field("client_timeout_ms", r.client_timeout_ms);
  w.field("client_timeout_source", r.client_timeout_source);
  w.field("queue_ms", r.queue_ms).field("backoff_ms", r.backoff_ms).field("retry_after_ms", r.retry_after_ms);
  w.key("attempts").begin_array();
  for (const auto& a : r.attempts) {
    w.begin_object().field("endpoint", a.endpoint).field("model", a.model);
    w.field("status", a.status).field("code", code_name(a.code));
    w.field("reused_connection", a.reused_connection);
    write_timings(w, a.timings);
    w.end_object();
  }
  w.end_array();
  if (!r.attempts.empty()) write_timings(w, r.attempts.back().timings);
  w.key("usage");
  if (r.usage) {
    w.begin_object().field("prompt_tokens", r.usage->prompt_tokens);
    w.field("completion_tokens", r.usage->completion_tokens)
        .field("total_tokens", r.usage->total_tokens)
        .end_object();
  } else {
    w.null();
  }
  w.field("malformed_events", r.malformed_events);
  w.field("bytes_in", static_cast<uint64_t>(r.bytes_in))
      .field("bytes_out", static_cast<uint64_t>(r.bytes_out));
  if (!r.message.empty()) w.field("message", r.message);
  w.end_object();
  return w.take();
}

std::string AccessLog::open(const std::string& target) {
  if (target == "off") return "";
  if (target == "stdout") {
    file_ = stdout;
  } else if (target == "stderr") {
    file_ = stderr;
  } else {
    file_ = std::fopen(target.c_str(), "a");
    if (!file_) return fmt::format("cannot open the access log '{}': {}", target, std::strerror(errno));
    owned_ = true;
  }
  return "";
}

void AccessLog::write(const AccessRecord& record) {
  if (!file_) return;
  std::string line = format_access_line(record, utc_now());
  line.push_back('\n');
  // FILE's own lock keeps the workers' lines whole. A failed write (EPIPE once the reader is gone:
  // SIGPIPE is ignored) is counted and forgotten, so the next line is tried afresh.
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    std::clearerr(file_);
  }
}

AccessLog::~AccessLog() {
  if (owned_ && file_) std::fclose(file_);
}

}  // namespace ballast
