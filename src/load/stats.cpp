#include "load/stats.hpp"

#include <algorithm>

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
    case Outcome::refused:
      return "refused";
    case Outcome::rate_limited:
      return "rate_limited";
    case Outcome::server_error:
      return "server_error";
    case Outcome::stream_error:
      return "stream_error";
    case Outcome::truncated:
      return "truncated";
    case Outcome::bad_body:
      return "bad_body";
    case Outcome::other:
      return "other";
    case Outcome::not_sent:
      return "not_sent";
  }
  return "other";
}

namespace {

Second& second_of(std::vector<Second>& timeline, double at) {
  auto sec = static_cast<size_t>(at < 0 ? 0 : at);
  if (timeline.size() <= sec) timeline.resize(sec + 1);
  return timeline[sec];
}

}  // namespace

void RunStats::add(const Sample& s) {
  ++requests;
  if (s.open_at_end) ++open_at_end;
  Second& t = second_of(timeline, s.second);
  ++t.sent;
  // Latency counts for every request sent: a failure that took 10 s is what the client waited.
  if (s.outcome != Outcome::not_sent) {
    latency.record(s.latency_us);
    t.latency.record(s.latency_us);
  }
  if (s.outcome == Outcome::ok) {
    ++ok;
    ++t.ok;
    if (s.ttft_us) ttft.record(*s.ttft_us);
    for (uint32_t gap : s.itl_us) itl.record(gap);
    tokens += s.tokens_in_window;
    if (!s.warmup) {
      steady_latency_s += static_cast<double>(s.latency_us) / 1e6;
      ++steady_ok;
    }
    if (!s.open_at_end) {
      ++ok_in_window;
      // Within the window, so inside the timeline's seconds (the last may be a partial one).
      ++second_of(timeline, std::min(s.ended, duration_s > 0 ? duration_s - 1e-9 : s.ended)).done;
    }
    return;
  }
  ++t.errors;
  if (s.outcome == Outcome::refused) {
    ++refused;
    refused_wait_s += s.retry_after_s;
  }
  ++by_outcome[std::string(outcome_name(s.outcome))];
  if (s.status) ++by_status[s.status];
  if (!s.code.empty()) ++by_code[s.code];
}

double RunStats::sustained_throughput() const {
  if (mode != "closed") return throughput();
  if (steady_ok == 0 || steady_latency_s <= 0) return 0;
  double mean = steady_latency_s / static_cast<double>(steady_ok);
  return load / mean * (1 - error_rate());
}

std::string slo_breach(const RunStats& run, const Slo& slo) {
  if (run.requests == 0) return "no request completed";
  if (run.error_rate() > slo.max_error_rate)
    return fmt::format("error rate {:.1f}% > {:.1f}%", run.error_rate() * 100, slo.max_error_rate * 100);
  if (slo.ttft_ms > 0) {
    // A non-streamed answer's first token comes with the whole answer (as does a stream's that
    // carried none): its latency stands for it.
    bool measured = run.ttft.count() > 0;
    double p99 = static_cast<double>((measured ? run.ttft : run.latency).percentile(99)) / 1000;
    if (p99 > slo.ttft_ms)
      return fmt::format("p99 first token {:.0f} ms{} > {:.0f} ms", p99,
                         measured ? "" : " (the whole answer)", slo.ttft_ms);
  }
  if (slo.latency_ms > 0) {
    double p99 = static_cast<double>(run.latency.percentile(99)) / 1000;
    if (p99 > slo.latency_ms) return fmt::format("p99 latency {:.0f} ms > {:.0f} ms", p99, slo.latency_ms);
  }
  return "";
}

}  // namespace ballast::load
