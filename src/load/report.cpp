#include "load/report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "policy/duration.hpp"

namespace ballast::load {

namespace {

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
  std::string errors;
  for (const auto& [name, n] : r.by_outcome)
    errors += fmt::format("{}{} {}", errors.empty() ? "" : ", ", name, n);
  for (const auto& [code, n] : r.by_code) errors += fmt::format(", {} {}", code, n);
  std::string ttft = r.ttft.count() ? fmt::format("  ttft p50 {:.0f} p99 {:.0f} ms",
                                                  ms(r.ttft.percentile(50)), ms(r.ttft.percentile(99)))
                                    : "";
  return fmt::format(
      "{:<16} {:>8.1f} req/s  ok {:>6}  err {:>5.1f}%  latency p50 {:.0f} p90 {:.0f} p99 {:.0f} max {:.0f} "
      "ms{}{}{}",
      load_name(r), r.throughput(), r.ok, r.error_rate() * 100, ms(r.latency.percentile(50)),
      ms(r.latency.percentile(90)), ms(r.latency.percentile(99)), ms(r.latency.max()), ttft,
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
  out += fmt::format("knee: {}{} — the highest load within the SLO\n",
                     k ? load_name(*k) : fmt::format("{:g}", *rep.knee),
                     rep.knee_capped ? " (the largest tried: the real knee is higher)" : "");
  Recommendation rec = recommend(rep);
  if (rec.max_in_flight > 0) {
    out += fmt::format("\nin ballast:\n{}\nLangChain:\n{}\nasyncio + the OpenAI SDK:\n{}", rec.ballast_yaml,
                       rec.langchain, rec.asyncio);
  }
  return out;
}

std::string to_json(const Report& rep) {
  JsonWriter w;
  w.begin_object().field("schema", "ballast.load/1").field("target", rep.target).field("model", rep.model);
  w.field("stream", rep.stream).field("sweep", rep.sweep);
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
    w.field("throughput_rps", r.throughput()).field("tokens_per_s", r.tokens_per_s());
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
      w.field("errors", sec.errors).field("p50_ms", ms(sec.latency.percentile(50)));
      w.field("p99_ms", ms(sec.latency.percentile(99))).field("max_ms", ms(sec.latency.max())).end_object();
    }
    w.end_array().end_object();
  }
  w.end_array();
  w.key("knee");
  if (rep.knee) {
    w.begin_object().field("load", *rep.knee).field("capped", rep.knee_capped).end_object();
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

// ---- HTML ------------------------------------------------------------------------------------

namespace {

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
};

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

// A line chart as inline SVG: axes with a few ticks, one polyline (and dots) per series, a legend.
std::string chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, bool bars = false) {
  const double W = 640, H = 300, L = 60, R = 20, T = 30, B = 45;
  double xmin = 1e300, xmax = -1e300, ymax = 0;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  if (xmin > xmax) xmin = 0, xmax = 1;
  if (bars) {
    // A distribution starts at zero and leaves room for its last bar.
    xmin = 0;
    xmax *= 1.1;
  }
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  auto X = [&](double x) { return L + (x - xmin) / (xmax - xmin) * (W - L - R); };
  auto Y = [&](double y) { return H - B - y / ymax * (H - T - B); };
  std::string svg = fmt::format(
      R"(<svg viewBox="0 0 {} {}" width="{}" height="{}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">)",
      W, H, W, H);
  svg += fmt::format(R"(<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>)", L, escape(title));
  svg += fmt::format(
      R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>)",
      L, H - B, W - R, H - B, L, T, L, H - B);
  for (int i = 0; i <= 4; ++i) {
    double yv = ymax * i / 4, xv = xmin + (xmax - xmin) * i / 4;
    svg += fmt::format(
        R"(<text x="{}" y="{}" text-anchor="end">{:.4g}</text><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>)",
        L - 4, Y(yv) + 4, yv, L, Y(yv), W - R, Y(yv));
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{:.4g}</text>)", X(xv), H - B + 15, xv);
  }
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", (L + W - R) / 2, H - 8,
                     escape(x_label));
  svg += fmt::format(R"x(<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>)x",
                     (T + H - B) / 2, (T + H - B) / 2, escape(y_label));
  double legend_x = L + 10;
  for (const auto& s : series) {
    if (bars) {
      const double w = std::max(2.0, (W - L - R) / 80);
      for (auto [x, y] : s.points)
        svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>)", X(x) - w / 2, Y(y), w,
                           H - B - Y(y), s.color);
    } else {
      std::string pts;
      for (auto [x, y] : s.points) pts += fmt::format("{:.1f},{:.1f} ", X(x), Y(y));
      svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2"{} points="{}"/>)", s.color,
                         s.dashed ? R"( stroke-dasharray="5,4")" : "", pts);
      for (auto [x, y] : s.points)
        svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}"/>)", X(x), Y(y), s.color);
    }
    svg +=
        fmt::format(R"(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>)",
                    legend_x, T - 2, s.color, legend_x + 14, T + 7, escape(s.name));
    legend_x += 20 + 7 * static_cast<double>(s.name.size());
  }
  return svg + "</svg>";
}

}  // namespace

std::string to_html(const Report& rep) {
  std::vector<const RunStats*> runs;
  for (const auto& r : rep.runs) runs.push_back(&r);
  std::sort(runs.begin(), runs.end(), [](auto* a, auto* b) { return a->load < b->load; });
  const bool open = !rep.runs.empty() && rep.runs.front().mode == "open";
  const std::string x_label = open ? "requests per second" : "concurrent requests";

  std::string html = R"(<!doctype html><html><head><meta charset="utf-8"><title>ballast load</title><style>
body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}pre{background:#f6f6f6;padding:8px}.bad{color:#b00}
figure{margin:1.5em 0}</style></head><body>)";
  html += fmt::format("<h1>ballast load: {} ({})</h1>", escape(rep.target), escape(rep.model));
  html += fmt::format("<p>SLO: p99 first token ≤ {} ms, p99 latency ≤ {} ms, errors ≤ {:.1f}%.</p>",
                      rep.slo.ttft_ms > 0 ? fmt::format("{:g}", rep.slo.ttft_ms) : "–",
                      rep.slo.latency_ms > 0 ? fmt::format("{:g}", rep.slo.latency_ms) : "–",
                      rep.slo.max_error_rate * 100);
  if (rep.sweep) {
    if (rep.knee)
      html += fmt::format("<p><b>Knee: {:g} {}</b>{}.</p>", *rep.knee,
                          open ? "requests/s" : "concurrent requests",
                          rep.knee_capped ? " (the largest tried)" : "");
    else
      html += "<p class=bad><b>No knee: the first load already broke the SLO.</b></p>";
  }
  html +=
      "<table><tr><th>load</th><th>req/s</th><th>ok</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th>"
      "<th>ttft p99</th><th>SLO</th></tr>";
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const RunStats& r = rep.runs[i];
    const std::string& breach = i < rep.breaches.size() ? rep.breaches[i] : "";
    html += fmt::format(
        "<tr><td>{}</td><td>{:.1f}</td><td>{}</td><td>{:.1f}%</td><td>{:.0f} ms</td><td>{:.0f} "
        "ms</td><td>{:.0f} ms</td>"
        "<td>{}</td><td{}>{}</td></tr>",
        escape(load_name(r)), r.throughput(), r.ok, r.error_rate() * 100, ms(r.latency.percentile(50)),
        ms(r.latency.percentile(90)), ms(r.latency.percentile(99)),
        r.ttft.count() ? fmt::format("{:.0f} ms", ms(r.ttft.percentile(99))) : "–",
        breach.empty() ? "" : " class=bad", breach.empty() ? "✓" : escape(breach));
  }
  html += "</table>";

  if (runs.size() > 1) {
    Series p50{"p50", "#4a90d9", {}}, p90{"p90", "#f5a623", {}}, p99{"p99", "#d0021b", {}};
    Series err{"error rate %", "#7b7b7b", {}, true};
    for (auto* r : runs) {
      p50.points.emplace_back(r->load, ms(r->latency.percentile(50)));
      p90.points.emplace_back(r->load, ms(r->latency.percentile(90)));
      p99.points.emplace_back(r->load, ms(r->latency.percentile(99)));
      err.points.emplace_back(r->load, r->error_rate() * 100);
    }
    html +=
        "<figure>" + chart("Latency percentiles against load", x_label, "ms", {p50, p90, p99}) + "</figure>";
    html += "<figure>" + chart("Error rate against load", x_label, "% of requests", {err}) + "</figure>";
  }
  // One run in detail: the knee's, or the last.
  const RunStats* detail = nullptr;
  for (const auto& r : rep.runs)
    if (!rep.knee || r.load == *rep.knee) detail = &r;
  if (detail) {
    const Histogram& dist = detail->ttft.count() ? detail->ttft : detail->latency;
    Series bars{detail->ttft.count() ? "first token" : "latency", "#4a90d9", {}};
    dist.for_each_bucket(
        [&](uint64_t upper, uint64_t n) { bars.points.emplace_back(ms(upper), static_cast<double>(n)); });
    html += "<figure>" +
            chart(fmt::format("{} distribution at {}", bars.name, load_name(*detail)), "ms", "requests",
                  {bars}, true) +
            "</figure>";
    Series tp50{"p50 latency", "#4a90d9", {}}, tp99{"p99 latency", "#d0021b", {}},
        sent{"sent /s ÷ 10", "#7b7b7b", {}, true};
    for (size_t s = 0; s < detail->timeline.size(); ++s) {
      const Second& sec = detail->timeline[s];
      tp50.points.emplace_back(static_cast<double>(s), ms(sec.latency.percentile(50)));
      tp99.points.emplace_back(static_cast<double>(s), ms(sec.latency.percentile(99)));
      sent.points.emplace_back(static_cast<double>(s), static_cast<double>(sec.sent) / 10);
    }
    html += "<figure>" +
            chart(fmt::format("Timeline at {} (requests by the second they were due)", load_name(*detail)),
                  "second", "ms", {tp50, tp99, sent}) +
            "</figure>";
  }
  Recommendation rec = recommend(rep);
  if (rec.max_in_flight > 0) {
    html += "<h2>Limits to set</h2><p>ballast:</p><pre>" + escape(rec.ballast_yaml) +
            "</pre><p>LangChain:</p><pre>" + escape(rec.langchain) +
            "</pre><p>asyncio and the OpenAI SDK:</p><pre>" + escape(rec.asyncio) + "</pre>";
  }
  return html + "</body></html>\n";
}

}  // namespace ballast::load
