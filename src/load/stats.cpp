#include "load/stats.hpp"

#include <fmt/format.h>

namespace ballast::load {

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::client_timeout:
      return "client_timeout";
    case Outcome::connect_refused:
      return "connect_refused";
    case Outcome::rate_limited:
      return "rate_limited";
    case Outcome::server_error:
      return "server_error";
    case Outcome::truncated:
      return "truncated";
    case Outcome::other:
      return "other";
    case Outcome::not_sent:
      return "not_sent";
  }
  return "other";
}

void RunStats::add(const Sample& s) {
  ++requests;
  auto sec = static_cast<size_t>(s.second < 0 ? 0 : s.second);
  if (timeline.size() <= sec) timeline.resize(sec + 1);
  Second& t = timeline[sec];
  ++t.sent;
  // Latency counts for every request: a failure that took 10 s is what the client waited.
  latency.record(s.latency_us);
  t.latency.record(s.latency_us);
  if (s.outcome == Outcome::ok) {
    ++ok;
    ++t.ok;
    if (s.ttft_us) ttft.record(*s.ttft_us);
    for (uint32_t gap : s.itl_us) itl.record(gap);
    tokens += s.tokens;
    return;
  }
  ++t.errors;
  ++by_outcome[std::string(outcome_name(s.outcome))];
  if (s.status) ++by_status[s.status];
  if (!s.code.empty()) ++by_code[s.code];
}

std::string slo_breach(const RunStats& run, const Slo& slo) {
  if (run.requests == 0) return "no request completed";
  if (run.error_rate() > slo.max_error_rate)
    return fmt::format("error rate {:.1f}% > {:.1f}%", run.error_rate() * 100, slo.max_error_rate * 100);
  if (slo.ttft_ms > 0 && run.ttft.count() > 0) {
    double p99 = static_cast<double>(run.ttft.percentile(99)) / 1000;
    if (p99 > slo.ttft_ms) return fmt::format("p99 first token {:.0f} ms > {:.0f} ms", p99, slo.ttft_ms);
  }
  if (slo.latency_ms > 0) {
    double p99 = static_cast<double>(run.latency.percentile(99)) / 1000;
    if (p99 > slo.latency_ms) return fmt::format("p99 latency {:.0f} ms > {:.0f} ms", p99, slo.latency_ms);
  }
  return "";
}

}  // namespace ballast::load
