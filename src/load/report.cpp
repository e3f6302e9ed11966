#include "load/report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "load/report_parts.hpp"
#include "policy/duration.hpp"

namespace ballast::load {

namespace {

Millis whole_seconds_at_least(double ms_value, Millis floor) {
  auto s = static_cast<int64_t>(std::ceil(ms_value / 1000));
  return std::max(Millis(s * 1000), floor);
}

void percentiles(JsonWriter& w, std::string_view key, const Histogram& h) {
  w.key(key);
  if (h.count() == 0) {
    w.null();
    return;
  }
  w.begin_object()
      .field("p50", ms(h.percentile(50)))
      .field("p90", ms(h.percentile(90)))
      .field("p99", ms(h.percentile(99)))
      .field("max", ms(h.max()))
      .field("mean", h.mean() / 1000)
      .end_object();
}

}  // namespace

double ms(uint64_t us) {
  return static_cast<double>(us) / 1000;
}

std::string load_name(const RunStats& r) {
  return r.mode == "open" ? fmt::format("{:g} req/s", r.load) : fmt::format("concurrency {:g}", r.load);
}

const RunStats* knee_run(const Report& rep) {
  if (!rep.knee) return nullptr;
  const RunStats* found = nullptr;
  for (const auto& r : rep.runs)
    if (r.load == *rep.knee) found = &r;
  return found;
}

Recommendation recommend(const Report& rep) {
  Recommendation rec;
  const RunStats* k = knee_run(rep);
  if (!k) return rec;
  double mean_latency_s = k->latency.mean() / 1e6;
  rec.max_in_flight = k->mode == "open" ? std::max(1, static_cast<int>(std::ceil(k->load * mean_latency_s)))
                                        : static_cast<int>(k->load);
  // Twice what the knee's slowest 1% saw: room for a bad moment, still far below the defaults.
  rec.first_token = whole_seconds_at_least(
      2 * ms(k->ttft.count() ? k->ttft.percentile(99) : k->latency.percentile(99)), Millis(1000));
  rec.total =
      std::max(whole_seconds_at_least(2 * ms(k->latency.percentile(99)), Millis(1000)), rec.first_token);
  const std::string ft = format_duration(rec.first_token), total = format_duration(rec.total);
  rec.ballast_yaml = fmt::format(
      "models:\n  - name: {}\n    endpoints:\n      - base_url: {}\n        max_in_flight: {}\n"
      "timeouts: {{first_token: {}, total: {}}}\n",
      rep.model, rep.target, rec.max_in_flight, ft, total);
  rec.langchain = fmt::format(
      "llm = ChatOpenAI(model=\"{}\", base_url=\"{}\", timeout={}, max_retries=2)\n"
      "results = llm.batch(inputs, config={{\"max_concurrency\": {}}})\n",
      rep.model, rep.target, rec.total.count() / 1000, rec.max_in_flight);
  rec.asyncio = fmt::format(
      "limit = asyncio.Semaphore({})\n\nasync def ask(client, messages):\n    async with limit:\n"
      "        return await client.chat.completions.create(model=\"{}\", messages=messages, timeout={})\n",
      rec.max_in_flight, rep.model, rec.total.count() / 1000);
  return rec;
}

std::string run_line(const RunStats& r, const std::string& breach) {
  // Classes first (they add up to the failures), then the codes the answers named.
  std::string errors;
  for (const auto& [name, n] : r.by_outcome)
    errors += fmt::format("{}{} {}", errors.empty() ? "" : ", ", name, n);
  std::string codes;
  for (const auto& [code, n] : r.by_code) codes += fmt::format("{}{} {}", codes.empty() ? "" : ", ", code, n);
  if (!codes.empty()) errors += "; codes: " + codes;
  if (r.refused)
    errors +=
        fmt::format("; Retry-After {:.1f} s on average", r.refused_wait_s / static_cast<double>(r.refused));
  std::string ttft = r.ttft.count() ? fmt::format("  ttft p50 {:.0f} p99 {:.0f} ms",
                                                  ms(r.ttft.percentile(50)), ms(r.ttft.percentile(99)))
                                    : "";
  std::string open = r.open_at_end ? fmt::format("  open at end {}", r.open_at_end) : "";
  return fmt::format(
      "{:<16} {:>8.1f} req/s  ok {:>6}  err {:>5.1f}%  latency p50 {:.0f} p90 {:.0f} p99 {:.0f} max {:.0f} "
      "ms{}{}{}{}",
      load_name(r), r.throughput(), r.ok, r.error_rate() * 100, ms(r.latency.percentile(50)),
      ms(r.latency.percentile(90)), ms(r.latency.percentile(99)), ms(r.latency.max()), ttft, open,
      errors.empty() ? "" : "  [" + errors + "]", breach.empty() ? "" : "  ✗ " + breach);
}

std::string summary(const Report& rep) {
  std::string out;
  if (!rep.sweep) return out;
  if (!rep.knee) {
    out += "no knee: even the first load broke the SLO";
    if (!rep.breaches.empty()) out += " (" + rep.breaches.front() + ")";
    return out + "\n";
  }
  const RunStats* k = knee_run(rep);
  out += fmt::format("knee: {}{} — {}\n", k ? load_name(*k) : fmt::format("{:g}", *rep.knee),
                     rep.knee_capped ? " (the largest tried: the real knee is higher)" : "",
                     rep.knee_rule == "throughput" ? "where more load stops adding throughput"
                                                   : "the highest load within the SLO");
  Recommendation rec = recommend(rep);
  if (rec.max_in_flight > 0) {
    out += fmt::format("\nin ballast:\n{}\nLangChain:\n{}\nasyncio + the OpenAI SDK:\n{}", rec.ballast_yaml,
                       rec.langchain, rec.asyncio);
  }
  return out;
}

std::string to_json(const Report& rep) {
  JsonWriter w;
  w.begin_object().field("schema", "ballast.load/2").field("target", rep.target).field("model", rep.model);
  w.field("stream", rep.stream).field("sweep", rep.sweep);
  w.field("command", rep.command).field("version", rep.version).field("started", rep.started);
  w.field("wall_s", rep.wall_s);
  w.key("slo").begin_object();
  w.field("ttft_ms", rep.slo.ttft_ms)
      .field("latency_ms", rep.slo.latency_ms)
      .field("max_error_rate", rep.slo.max_error_rate);
  w.end_object();
  w.key("runs").begin_array();
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const RunStats& r = rep.runs[i];
    const std::string& breach = i < rep.breaches.size() ? rep.breaches[i] : "";
    w.begin_object().field("mode", r.mode).field("load", r.load).field("duration_s", r.duration_s);
    w.field("requests", r.requests).field("ok", r.ok).field("error_rate", r.error_rate());
    w.field("ok_in_window", r.ok_in_window).field("open_at_end", r.open_at_end);
    w.field("refused", r.refused).field("refused_wait_s", r.refused_wait_s);
    w.field("throughput_rps", r.throughput()).field("sustained_rps", r.sustained_throughput());
    w.field("tokens_per_s", r.tokens_per_s());
    percentiles(w, "latency_ms", r.latency);
    percentiles(w, "ttft_ms", r.ttft);
    percentiles(w, "itl_ms", r.itl);
    w.key("errors").begin_object();
    for (const auto& [name, n] : r.by_outcome) w.field(name, n);
    w.end_object();
    w.key("statuses").begin_object();
    for (const auto& [status, n] : r.by_status) w.field(std::to_string(status), n);
    w.end_object();
    w.key("codes").begin_object();
    for (const auto& [code, n] : r.by_code) w.field(code, n);
    w.end_object();
    w.field("within_slo", breach.empty()).field("breach", breach);
    w.key("timeline").begin_array();
    for (size_t s = 0; s < r.timeline.size(); ++s) {
      const Second& sec = r.timeline[s];
      w.begin_object().field("second", static_cast<uint64_t>(s)).field("sent", sec.sent).field("ok", sec.ok);
      w.field("errors", sec.errors).field("done", sec.done).field("p50_ms", ms(sec.latency.percentile(50)));
      w.field("p99_ms", ms(sec.latency.percentile(99))).field("max_ms", ms(sec.latency.max())).end_object();
    }
    w.end_array().end_object();
  }
  w.end_array();
  w.key("knee");
  if (rep.knee) {
    w.begin_object().field("load", *rep.knee).field("capped", rep.knee_capped).field("rule", rep.knee_rule);
    w.end_object();
  } else {
    w.null();
  }
  w.key("recommendation");
  Recommendation rec = recommend(rep);
  if (rec.max_in_flight > 0) {
    w.begin_object().field("max_in_flight", rec.max_in_flight);
    w.field("first_token_timeout_s", static_cast<double>(rec.first_token.count()) / 1000);
    w.field("total_timeout_s", static_cast<double>(rec.total.count()) / 1000);
    w.key("snippets").begin_object().field("ballast", rec.ballast_yaml).field("langchain", rec.langchain);
    w.field("asyncio", rec.asyncio).end_object().end_object();
  } else {
    w.null();
  }
  w.end_object();
  return w.take();
}

}  // namespace ballast::load
