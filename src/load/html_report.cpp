// The HTML report: one self-contained page (inline SVG and CSS, no scripts, nothing fetched). A
// sweep is shown as plots against load with the SLO and the knee drawn on them, the knee's run in
// detail (its distribution and timeline), the runs and their failures as tables, and the limits to
// set. docs/load.md (`--html`) says what it shows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "load/report.hpp"
#include "load/report_parts.hpp"
#include "load/sweep.hpp"

namespace ballast::load {

namespace {

constexpr double kGap = std::numeric_limits<double>::quiet_NaN();  // a break in a line

// Everything from the user (target, model, command) and from the target (error codes) goes through
// here, in text and in attributes alike.
std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A figure for reading, with as many decimals as its size deserves: 1234, 56, 5.6, 0.56.
std::string num(double v) {
  if (!std::isfinite(v)) return "n/a";
  const double a = std::abs(v);
  if (a >= 10 || a == 0) return fmt::format("{:.0f}", v);
  if (a >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", fraction * 100);
}

// "2026-12-01T00:48:21Z" → "2026-12-01 00:48:21 UTC"; anything else as it came.
std::string when(const std::string& iso) {
  if (iso.size() < 19 || iso[10] != 'T') return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8) + " UTC";
}

// ---- Axes ------------------------------------------------------------------------------------

// A tick step for `span` cut into at most `intervals`: 1, 2 or 5 × 10^k, so that ticks fall on
// round values (0, 20, 40… rather than 0, 17.5, 35…).
double nice_step(double span, int intervals) {
  const double raw = span / intervals;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude;
  return 10 * magnitude;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  int decimals = 0;  // of the tick labels

  // Where `v` falls, from 0 (lo) to 1 (hi).
  double at(double v) const {
    if (log) return (std::log(v) - std::log(lo)) / (std::log(hi) - std::log(lo));
    return (v - lo) / (hi - lo);
  }
  std::string label(double v) const {
    return log ? fmt::format("{:g}", v) : fmt::format("{:.{}f}", v, decimals);
  }
};

// [lo, hi] widened to whole steps of a nice size. `whole`: steps of at least 1 (concurrency,
// seconds, counts).
Axis linear_axis(double lo, double hi, bool whole, int intervals = 5) {
  if (!(hi > lo)) hi = lo + (whole ? 1 : std::max(1.0, std::abs(lo)));
  double step = nice_step(hi - lo, intervals);
  if (whole) step = std::max(step, 1.0);
  Axis a;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  a.lo = first * step;
  a.hi = last * step;
  const auto n = static_cast<int>(std::llround(last - first));
  for (int i = 0; i <= n; ++i) a.ticks.push_back((first + i) * step);
  a.decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return a;
}

// For loads that span more than 20×: a sweep's doublings (1, 2, 4 … 512) would crowd into the first
// tenth of a linear axis. Ticks at powers of two for concurrency, at 1, 2, 5 × 10^k for rates.
Axis log_axis(double lo, double hi, bool whole) {
  std::vector<double> marks;
  if (whole) {
    for (int k = 0; std::ldexp(1.0, k) < hi * 2; ++k) marks.push_back(std::ldexp(1.0, k));
  } else {
    for (int k = static_cast<int>(std::floor(std::log10(lo))) - 1; k <= std::ceil(std::log10(hi)); ++k)
      for (double m : {1.0, 2.0, 5.0}) marks.push_back(m * std::pow(10, k));
  }
  Axis a;
  a.log = true;
  a.lo = marks.front();
  a.hi = marks.back();
  for (double m : marks) {
    if (m <= lo * (1 + 1e-9)) a.lo = m;
    if (m >= hi * (1 - 1e-9)) {
      a.hi = m;
      break;
    }
  }
  for (double m : marks)
    if (m >= a.lo && m <= a.hi) a.ticks.push_back(m);
  // At most 8 labels: every other mark, then every fourth.
  while (a.ticks.size() > 8) {
    std::vector<double> fewer;
    for (size_t i = 0; i < a.ticks.size(); i += 2) fewer.push_back(a.ticks[i]);
    a.ticks = std::move(fewer);
  }
  return a;
}

// The load axis of a sweep: from 0, unless the loads span so much that only a log scale shows them.
Axis load_axis(const std::vector<const RunStats*>& runs, bool whole) {
  double lo = runs.front()->load, hi = runs.front()->load;
  for (const auto* r : runs) {
    lo = std::min(lo, r->load);
    hi = std::max(hi, r->load);
  }
  if (lo > 0 && hi / lo > 20) return log_axis(lo, hi, whole);
  return linear_axis(0, hi, whole);
}

// ---- Charts ----------------------------------------------------------------------------------

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // a y of kGap breaks the line
  bool dashed = false;
  bool right = false;  // on the right-hand axis
  bool dots = true;    // a dot at each point (runs); none for step lines (seconds)
};

// A labelled line across the plot: vertical at an x (the knee, a percentile), or horizontal at a
// y (the SLO). `cls` names it in the page ("knee", "slo", "rule").
struct Rule {
  double at = 0;
  std::string label, cls, color;
};

struct Bar {
  double x0 = 0, x1 = 0, y = 0;
};

struct Chart {
  std::string id, title;
  std::string x_label, y_label, y2_label;  // with units
  Axis x;
  bool y_whole = false, y2_whole = false;
  std::vector<Series> series;
  std::vector<Bar> bars;
  std::string bar_name, bar_color;
  std::vector<Rule> x_rules, y_rules;
};

// About how wide `s` is in the plots' 11 px sans (bold, to be safe): 6.5 px a character, a
// multi-byte character counting once.
double text_width(std::string_view s) {
  double n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80 ? 1 : 0;
  return 6.5 * n;
}

// A chart has something to show when a line has two points or a bar has height.
bool has_data(const Chart& c) {
  for (const auto& b : c.bars)
    if (b.y > 0) return true;
  for (const auto& s : c.series) {
    int n = 0;
    for (auto [x, y] : s.points) n += std::isfinite(x) && std::isfinite(y) ? 1 : 0;
    if (n >= 2) return true;
  }
  return false;
}

// The chart as inline SVG: round ticks, y from 0, a right-hand axis of its own for series marked
// `right` (its ticks share the left one's grid lines), rules labelled where they cross the plot.
std::string render(const Chart& c) {
  constexpr double W = 560, H = 300, top = 34, bottom = 42, left = 58;
  bool has_right = false;
  double y_max = 0, y2_max = 0;
  for (const auto& s : c.series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      (s.right ? y2_max : y_max) = std::max(s.right ? y2_max : y_max, y);
      has_right = has_right || s.right;
    }
  for (const auto& b : c.bars) y_max = std::max(y_max, b.y);
  for (const auto& r : c.y_rules) y_max = std::max(y_max, r.at);
  const double right = has_right ? 58 : 18;
  // 5% of headroom, so that the highest point does not sit on the frame.
  const Axis y = linear_axis(0, y_max * 1.05, c.y_whole);
  Axis y2;
  if (has_right) {
    const int intervals = static_cast<int>(y.ticks.size()) - 1;
    double step = nice_step(y2_max > 0 ? y2_max * 1.05 : 1, intervals);
    if (c.y2_whole) step = std::max(step, 1.0);
    y2.hi = step * intervals;
    for (int i = 0; i <= intervals; ++i) y2.ticks.push_back(step * i);
    y2.decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  }
  auto px = [&](double v) { return left + std::clamp(c.x.at(v), 0.0, 1.0) * (W - left - right); };
  auto py = [&](const Axis& a, double v) {
    return H - bottom - std::clamp(a.at(v), 0.0, 1.0) * (H - top - bottom);
  };

  std::string svg = fmt::format(
      R"(<svg class="plot" viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{}">)",
      W, H, escape(c.title));
  // Grid and ticks.
  for (double t : y.ticks) {
    svg += fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#e8e8e8"/>)", left, py(y, t),
                       W - right, py(y, t));
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end">{}</text>)", left - 5, py(y, t) + 4,
                       y.label(t));
  }
  for (double t : y2.ticks)
    svg += fmt::format(R"(<text x="{}" y="{:.1f}">{}</text>)", W - right + 5, py(y2, t) + 4, y2.label(t));
  for (double t : c.x.ticks) {
    svg += fmt::format(R"(<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="#888"/>)", px(t), H - bottom,
                       px(t), H - bottom + 4);
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)", px(t), H - bottom + 16,
                       c.x.label(t));
  }
  svg +=
      fmt::format(R"(<path d="M{} {}V{}H{}" fill="none" stroke="#888"/>)", left, top, H - bottom, W - right);
  if (has_right)
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>)", W - right, top, W - right,
                       H - bottom);
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", (left + W - right) / 2, H - 8,
                     escape(c.x_label));
  const double mid = (top + H - bottom) / 2;
  svg += fmt::format(R"x(<text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>)x",
                     mid, escape(c.y_label));
  if (has_right)
    svg += fmt::format(R"x(<text transform="translate({} {}) rotate(90)" text-anchor="middle">{}</text>)x",
                       W - 12, mid, escape(c.y2_label));

  // Data: bars first, lines over them. What is drawn is kept as boxes and segments, so that the
  // rules' labels can be put where they cover none of it.
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> drawn;
  using Point = std::pair<double, double>;  // on the page, in px
  std::vector<std::pair<Point, Point>> segments;
  for (const auto& b : c.bars) {
    if (b.y <= 0) continue;
    const double x0 = px(b.x0) + 0.5, x1 = px(b.x0) + std::max(1.0, px(b.x1) - px(b.x0) - 1);
    svg +=
        fmt::format(R"(<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>)",
                    x0, py(y, b.y), x1 - x0, H - bottom - py(y, b.y), c.bar_color);
    drawn.push_back({x0, py(y, b.y), x1, H - bottom});
  }
  for (const auto& s : c.series) {
    const Axis& a = s.right ? y2 : y;
    std::vector<std::string> lines(1);
    std::optional<Point> last;
    for (auto [x, v] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(v)) {
        if (!lines.back().empty()) lines.emplace_back();
        last.reset();
        continue;
      }
      const Point at{px(x), py(a, v)};
      lines.back() += fmt::format("{:.1f},{:.1f} ", at.first, at.second);
      if (last) segments.push_back({*last, at});
      last = at;
    }
    for (auto& pts : lines) {
      if (pts.empty()) continue;
      pts.pop_back();
      svg +=
          fmt::format(R"(<polyline class="series" fill="none" stroke="{}" stroke-width="2"{} points="{}"/>)",
                      s.color, s.dashed ? R"( stroke-dasharray="6 4")" : "", pts);
    }
    if (s.dots)
      for (auto [x, v] : s.points)
        if (std::isfinite(x) && std::isfinite(v)) {
          svg +=
              fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)", px(x), py(a, v), s.color);
          drawn.push_back({px(x) - 3, py(a, v) - 3, px(x) + 3, py(a, v) + 3});
        }
  }

  // How much of what is drawn a label's box would cover.
  auto covers = [&](const Box& b) {
    int n = 0;
    for (const auto& d : drawn) n += d.x0 < b.x1 && b.x0 < d.x1 && d.y0 < b.y1 && b.y0 < d.y1 ? 1 : 0;
    for (const auto& [p, q] : segments)
      for (int step = 0; step <= 64; ++step) {
        const double t = step / 64.0;
        const double x = p.first + (q.first - p.first) * t, yy = p.second + (q.second - p.second) * t;
        if (x > b.x0 && x < b.x1 && yy > b.y0 && yy < b.y1) {
          ++n;
          break;
        }
      }
    return n;
  };
  // Vertical rules, labelled along the top; a label that would overlap another goes a line lower.
  std::vector<Rule> x_rules;
  for (const auto& r : c.x_rules)
    if (std::isfinite(r.at) && c.x.at(r.at) >= -1e-9 && c.x.at(r.at) <= 1 + 1e-9) x_rules.push_back(r);
  std::sort(x_rules.begin(), x_rules.end(), [](const Rule& a, const Rule& b) { return a.at < b.at; });
  std::vector<Box> labels;
  for (const auto& r : x_rules) {
    const double x = px(r.at), w = text_width(r.label);
    const bool flip = x + 4 + w > W - right;  // near the right edge: the label goes to the left
    Box box{flip ? x - 4 - w : x + 4, top + 1, flip ? x - 4 : x + 4 + w, top + 13};
    for (int row = 0; row < 4; ++row) {
      bool free = true;
      for (const auto& l : labels) free = free && (l.x1 + 4 < box.x0 || box.x1 + 4 < l.x0 || l.y0 != box.y0);
      if (free) break;
      box.y0 += 12;
      box.y1 += 12;
    }
    labels.push_back(box);
    drawn.push_back(box);
    drawn.push_back({x - 1, top, x + 1, H - bottom});
    svg += fmt::format(
        R"(<g class="{}"><line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="{}" stroke-width="1.5" stroke-dasharray="3 3"/>)"
        R"(<text x="{:.1f}" y="{:.1f}" fill="{}" text-anchor="{}">{}</text></g>)",
        r.cls, x, top, x, H - bottom, r.color, flip ? box.x1 : box.x0, box.y1 - 2, r.color,
        flip ? "end" : "start", escape(r.label));
  }
  // Horizontal rules, labelled at whichever end, above or below the line, covers least of the data.
  for (const auto& r : c.y_rules) {
    const double yy = py(y, r.at), w = text_width(r.label);
    Box best{};
    int fewest = -1;
    for (bool below : {false, true})
      for (bool at_left : {false, true}) {
        const double x0 = at_left ? left + 4 : W - right - 4 - w;
        Box box{x0, below ? yy + 2 : yy - 14, x0 + w, below ? yy + 14 : yy - 2};
        if (box.y0 < top || box.y1 > H - bottom) continue;
        const int n = covers(box);
        if (fewest < 0 || n < fewest) {
          fewest = n;
          best = box;
        }
      }
    if (fewest < 0) best = {W - right - 4 - w, yy - 14, W - right - 4, yy - 2};
    drawn.push_back(best);
    svg += fmt::format(
        R"(<g class="{}"><line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="{}" stroke-width="1.5" stroke-dasharray="8 4"/>)"
        R"(<text x="{:.1f}" y="{:.1f}" fill="{}">{}</text></g>)",
        r.cls, left, yy, W - right, yy, r.color, best.x0, best.y1 - 2, r.color, escape(r.label));
  }
  // Legend, along the top.
  double lx = left;
  auto key = [&](const std::string& name, const std::string& color, bool dashed) {
    svg += fmt::format(
        R"(<line class="key" x1="{}" y1="14" x2="{}" y2="14" stroke="{}" stroke-width="3"{}/><text x="{}" y="18">{}</text>)",
        lx, lx + 18, color, dashed ? R"( stroke-dasharray="5 3")" : "", lx + 22, escape(name));
    lx += 34 + text_width(name);
  };
  if (!c.bars.empty()) key(c.bar_name, c.bar_color, false);
  for (const auto& s : c.series) key(s.name, s.color, s.dashed);
  return svg + "</svg>";
}

std::string figure(const Chart& c) {
  return fmt::format(R"(<figure id="{}"><figcaption>{}</figcaption>{}</figure>)", c.id, escape(c.title),
                     render(c));
}

// ---- What the page says ----------------------------------------------------------------------

constexpr const char* kP50 = "#4a90d9";
constexpr const char* kP90 = "#f5a623";
constexpr const char* kP99 = "#d0021b";
constexpr const char* kGood = "#2e7d32";
constexpr const char* kGrey = "#777777";
constexpr const char* kSloColor = "#8e24aa";
constexpr const char* kKneeColor = "#222222";

bool has_latency_target(const Slo& slo) {
  return slo.ttft_ms > 0 || slo.latency_ms > 0;
}

// The SLO in words: "p99 first token ≤ 500 ms, p99 latency ≤ 2000 ms and at most 1.0% of requests
// failing".
std::string slo_words(const Slo& slo) {
  std::vector<std::string> parts;
  if (slo.ttft_ms > 0) parts.push_back(fmt::format("p99 first token ≤ {:g} ms", slo.ttft_ms));
  if (slo.latency_ms > 0) parts.push_back(fmt::format("p99 latency ≤ {:g} ms", slo.latency_ms));
  parts.push_back(fmt::format("at most {} of requests failing", percent(slo.max_error_rate)));
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return out;
}

std::string breach_of(const Report& rep, const RunStats& run) {
  for (size_t i = 0; i < rep.runs.size() && i < rep.breaches.size(); ++i)
    if (&rep.runs[i] == &run) return rep.breaches[i];
  return "";
}

// The throughput rule's bounds, as the sweep applies them (load/sweep.hpp): a run may be the knee
// when its errors are within the SLO and its p50 latency within kSlowdown × the lightest load's;
// the knee is the smallest of those at kEnough of the best sustained throughput among them.
struct ThroughputRule {
  double p50_limit_ms = 0;
  const RunStats* best = nullptr;  // the highest sustained throughput among the acceptable runs
};

ThroughputRule throughput_rule(const Report& rep, const std::vector<const RunStats*>& runs) {
  ThroughputRule rule;
  rule.p50_limit_ms = Sweep::kSlowdown * ms(runs.front()->latency.percentile(50));
  for (const auto* r : runs) {
    const bool acceptable = breach_of(rep, *r).empty() && ms(r->latency.percentile(50)) <= rule.p50_limit_ms;
    if (acceptable && (!rule.best || r->sustained_throughput() > rule.best->sustained_throughput()))
      rule.best = r;
  }
  return rule;
}

std::string head(const Report& rep, const std::vector<const RunStats*>& runs, bool open) {
  std::string html = fmt::format("<h1>ballast load: {}</h1>", escape(rep.target));
  // What was run: when, with what, for how long.
  std::vector<std::string> facts;
  facts.push_back(fmt::format("model <b>{}</b>", escape(rep.model)));
  if (!rep.started.empty()) facts.push_back("started " + escape(when(rep.started)));
  if (!rep.version.empty()) facts.push_back("ballast " + escape(rep.version));
  facts.push_back(open ? "open loop (requests at a set rate)"
                       : "closed loop (a set number of requests in flight)");
  facts.push_back(rep.stream ? "streamed answers" : "whole answers (not streamed)");
  double shortest = runs.front()->duration_s, longest = shortest;
  for (const auto* r : runs) {
    shortest = std::min(shortest, r->duration_s);
    longest = std::max(longest, r->duration_s);
  }
  std::string measured = shortest == longest ? fmt::format("{:g} s", shortest)
                                             : fmt::format("{:g} to {:g} s", shortest, longest);
  facts.push_back(runs.size() == 1 ? fmt::format("one run, measured over {}", measured)
                                   : fmt::format("{} runs, each measured over {}", runs.size(), measured));
  if (rep.wall_s > 0) facts.push_back(fmt::format("{:.1f} s wall time in all", rep.wall_s));
  html += "<p class=meta>";
  for (size_t i = 0; i < facts.size(); ++i) html += (i ? " · " : "") + facts[i];
  html += "</p>";
  if (!rep.command.empty()) html += "<pre class=cmd>" + escape(rep.command) + "</pre>";
  return html;
}

// The answer first: the knee (or the single run's verdict), the SLO it was held to, and how the
// knee was chosen.
std::string verdict(const Report& rep, const std::vector<const RunStats*>& runs, bool open) {
  std::string html;
  const RunStats* k = knee_run(rep);
  const std::string unit = open ? "requests/s" : "requests in flight";
  if (!rep.sweep) {
    const RunStats& r = *runs.front();
    const std::string breach = breach_of(rep, r);
    html += fmt::format(
        "<div class=\"verdict{}\"><b>One run at {}: {}.</b> {} req/s answered, p99 latency {} ms{}.</div>",
        breach.empty() ? "" : " bad", escape(load_name(r)),
        breach.empty() ? "within the SLO" : "broke the SLO (" + escape(breach) + ")", num(r.throughput()),
        num(ms(r.latency.percentile(99))),
        r.ttft.count() ? ", p99 first token " + num(ms(r.ttft.percentile(99))) + " ms" : "");
  } else if (rep.knee) {
    std::string figures;
    if (k) {
      figures = fmt::format(" {} req/s answered, p99 latency {} ms", num(k->throughput()),
                            num(ms(k->latency.percentile(99))));
      if (k->ttft.count()) figures += fmt::format(", p99 first token {} ms", num(ms(k->ttft.percentile(99))));
      figures += ".";
    }
    html += fmt::format("<div class=verdict><b>Knee: {}</b>{}.{}</div>",
                        k ? escape(load_name(*k)) : fmt::format("{:g} {}", *rep.knee, unit),
                        rep.knee_capped ? " (the largest load tried: the real knee is higher)" : "", figures);
  } else {
    const std::string first = rep.breaches.empty() ? "" : rep.breaches.front();
    html += fmt::format(
        "<div class=\"verdict bad\"><b>No knee: the first load already broke the SLO{}.</b></div>",
        first.empty() ? "" : " (" + escape(first) + ")");
  }

  html += "<p>SLO: " + slo_words(rep.slo) + ".";
  if (!has_latency_target(rep.slo)) html += " No first-token or latency target was set.";
  html += "</p>";
  if (rep.sweep && rep.knee_rule == "throughput") {
    const ThroughputRule rule = throughput_rule(rep, runs);
    const RunStats& lightest = *runs.front();
    html += fmt::format(
        "<p>With no first-token or latency target, the knee is where more load stopped buying "
        "throughput: the smallest load that reached {:g}% of the best throughput seen{}, among the "
        "loads whose errors stayed within the SLO and whose p50 latency stayed within {:g}× the "
        "lightest load's ({} ms at {}, so at most {} ms).{}</p>",
        Sweep::kEnough * 100,
        rule.best ? fmt::format(" ({} req/s, at {})", num(rule.best->sustained_throughput()),
                                escape(load_name(*rule.best)))
                  : "",
        Sweep::kSlowdown, num(ms(lightest.latency.percentile(50))), escape(load_name(lightest)),
        num(rule.p50_limit_ms),
        open ? ""
             : " Throughput here is sustained throughput, the concurrency over the mean latency of "
               "the successful answers (Little's law): a short window holds a whole number of rounds, "
               "so a count of answers in it shakes by a round.");
  } else if (rep.sweep) {
    html += "<p>The knee is the highest load that stayed within the SLO; runs beyond it broke it.</p>";
  }
  return html;
}

// The knee, drawn on every plot against load.
std::vector<Rule> knee_rules(const Report& rep) {
  if (!rep.knee) return {};
  return {Rule{*rep.knee, fmt::format("knee {:g}", *rep.knee), "knee", kKneeColor}};
}

Chart against_load(const Report& rep, const Axis& x, const std::string& x_label, std::string id,
                   std::string title, std::string y_label) {
  Chart c;
  c.id = std::move(id);
  c.title = std::move(title);
  c.x = x;
  c.x_label = x_label;
  c.y_label = std::move(y_label);
  c.x_rules = knee_rules(rep);
  return c;
}

Series percentile_series(const std::string& name, const char* color, const std::vector<const RunStats*>& runs,
                         const Histogram RunStats::*h, double p) {
  Series s{name, color, {}};
  for (const auto* r : runs)
    if (((*r).*h).count()) s.points.emplace_back(r->load, ms(((*r).*h).percentile(p)));
  return s;
}

// p50, p90 and p99 of `h` against load, with the SLO's line when it bounds them (`slo_ms` > 0).
Chart percentiles_against_load(const Report& rep, const std::vector<const RunStats*>& runs, const Axis& x,
                               const std::string& x_label, std::string id, std::string title,
                               std::string y_label, const Histogram RunStats::*h, double slo_ms) {
  Chart c = against_load(rep, x, x_label, std::move(id), std::move(title), std::move(y_label));
  c.series = {percentile_series("p50", kP50, runs, h, 50), percentile_series("p90", kP90, runs, h, 90),
              percentile_series("p99", kP99, runs, h, 99)};
  if (slo_ms > 0) c.y_rules.push_back({slo_ms, fmt::format("SLO p99 ≤ {:g} ms", slo_ms), "slo", kSloColor});
  return c;
}

std::string load_plots(const Report& rep, const std::vector<const RunStats*>& runs, bool open) {
  const Axis x = load_axis(runs, !open);
  const std::string x_label = open ? "offered load (requests/s)" : "concurrency (requests in flight)";
  std::vector<Chart> charts;

  Chart tp =
      against_load(rep, x, x_label, "throughput", "Throughput against load", "throughput (requests/s)");
  Series answered{"answered/s", kGood, {}};
  for (const auto* r : runs) answered.points.emplace_back(r->load, r->throughput());
  tp.series.push_back(answered);
  if (!open) {
    // What the throughput rule compares closed-loop runs by (Little's law).
    Series sustained{"sustained/s (concurrency ÷ mean latency)", kP50, {}, true};
    for (const auto* r : runs) sustained.points.emplace_back(r->load, r->sustained_throughput());
    tp.series.push_back(sustained);
  } else {
    // What was asked for: throughput below this line is load the target did not absorb.
    Series offered{"offered", kGrey, {}, true, false, false};
    for (const auto* r : runs) offered.points.emplace_back(r->load, r->load);
    tp.series.push_back(offered);
  }
  const ThroughputRule rule = throughput_rule(rep, runs);
  if (rep.sweep && rep.knee_rule == "throughput" && rule.best) {
    const double enough = Sweep::kEnough * rule.best->sustained_throughput();
    tp.y_rules.push_back(
        {enough, fmt::format("{:g}% of best: {} req/s", Sweep::kEnough * 100, num(enough)), "rule", kGrey});
  }
  charts.push_back(tp);

  Chart err = against_load(rep, x, x_label, "errors", "Error rate against load", "failed (% of requests)");
  Series failed{"errors", kP99, {}};
  for (const auto* r : runs) failed.points.emplace_back(r->load, r->error_rate() * 100);
  err.series.push_back(failed);
  err.y_rules.push_back(
      {rep.slo.max_error_rate * 100, "SLO ≤ " + percent(rep.slo.max_error_rate), "slo", kSloColor});
  charts.push_back(err);

  if (rep.stream) {
    charts.push_back(percentiles_against_load(rep, runs, x, x_label, "ttft", "First token against load",
                                              "time to first token (ms)", &RunStats::ttft, rep.slo.ttft_ms));
  }

  Chart lat = percentiles_against_load(rep, runs, x, x_label, "latency", "Latency against load",
                                       "latency (ms)", &RunStats::latency, rep.slo.latency_ms);
  if (rep.sweep && rep.knee_rule == "throughput")
    lat.y_rules.push_back(
        {rule.p50_limit_ms,
         fmt::format("p50 limit, {:g}× lightest: {} ms", Sweep::kSlowdown, num(rule.p50_limit_ms)), "rule",
         kGrey});
  charts.push_back(lat);

  if (rep.stream) {
    Chart itl =
        against_load(rep, x, x_label, "itl", "Inter-token latency against load", "gap between tokens (ms)");
    itl.series = {percentile_series("p50", kP50, runs, &RunStats::itl, 50),
                  percentile_series("p99", kP99, runs, &RunStats::itl, 99)};
    charts.push_back(itl);

    Chart tok =
        against_load(rep, x, x_label, "tokens", "Tokens per second against load", "tokens/s (all requests)");
    Series tokens{"tokens/s", kGood, {}};
    for (const auto* r : runs) tokens.points.emplace_back(r->load, r->tokens_per_s());
    tok.series.push_back(tokens);
    charts.push_back(tok);
  }

  std::string html = "<h2>Against load</h2><div class=plots>";
  for (const auto& c : charts)
    if (has_data(c)) html += figure(c);
  return html + "</div>";
}

// `hist` as bars of a round width across the axis: at most 40, and each at least 1/32 of the
// largest value, twice the histogram's widest bucket there (1/64), so that no bar falls between
// buckets and shows empty.
std::vector<Bar> bars_of(const Histogram& hist, const Axis& x) {
  const double width = nice_step(std::max((x.hi - x.lo) / 40, ms(hist.max()) / 32), 1);
  std::vector<Bar> bars(static_cast<size_t>(std::ceil((x.hi - x.lo) / width - 1e-9)));
  for (size_t i = 0; i < bars.size(); ++i) {
    bars[i].x0 = x.lo + width * static_cast<double>(i);
    bars[i].x1 = bars[i].x0 + width;
  }
  if (bars.empty()) return bars;
  hist.for_each_bucket([&](uint64_t upper, uint64_t n) {
    // A bucket's upper bound is within 1.6% of its values, and never beyond the largest one seen.
    const double v = ms(std::min(upper, hist.max()));
    auto i = static_cast<size_t>(std::max(0.0, std::ceil((v - x.lo) / width) - 1));
    bars[std::min(i, bars.size() - 1)].y += static_cast<double>(n);
  });
  return bars;
}

// One run in detail: its distribution and its timeline.
std::string detail_plots(const Report& rep, const RunStats& run, const std::string& which) {
  std::string html = fmt::format("<h2>{} in detail</h2><div class=plots>", escape(load_name(run)) + which);

  const bool first_token = run.ttft.count() > 0;
  const Histogram& hist = first_token ? run.ttft : run.latency;
  if (hist.count()) {
    Chart d;
    d.id = "distribution";
    d.title = fmt::format("{} at {}", first_token ? "Time to first token" : "Latency", load_name(run));
    d.x_label = first_token ? "time to first token (ms)" : "latency (ms)";
    d.y_label = "requests";
    d.y_whole = true;
    d.bar_name = first_token ? "requests by first-token time" : "requests by latency";
    d.bar_color = kP50;
    d.x_rules = {Rule{ms(hist.percentile(50)), "p50", "rule", kGrey},
                 Rule{ms(hist.percentile(99)), "p99", "rule", kP99}};
    double hi = ms(hist.max());
    const double slo = first_token ? rep.slo.ttft_ms : rep.slo.latency_ms;
    if (slo > 0) {
      hi = std::max(hi, slo * 1.05);
      d.x_rules.push_back({slo, fmt::format("SLO {:g} ms", slo), "slo", kSloColor});
    }
    // From 0, even for values in a narrow band: the histogram holds them within 1.6%, so a closer
    // look would show its buckets rather than the requests.
    d.x = linear_axis(0, hi, false);
    d.bars = bars_of(hist, d.x);
    if (has_data(d)) html += figure(d);
  }

  if (!run.timeline.empty()) {
    Chart t;
    t.id = "timeline";
    t.title = fmt::format("Second by second at {}", load_name(run));
    const double span = run.duration_s > 0 ? run.duration_s : static_cast<double>(run.timeline.size());
    t.x = linear_axis(0, std::max(span, 1.0), true);
    t.x_label = "second of the run";
    t.y_label = "latency of requests due that second (ms)";
    t.y2_label = "requests/s";
    t.y2_whole = true;
    Series p50{"p50", kP50, {}, false, false, false}, p99{"p99", kP99, {}, false, false, false};
    Series sent{"sent/s", kGrey, {}, true, true, false}, done{"completed/s", kGood, {}, false, true, false};
    // Each second is a step from its start to its end; the last one may be partial.
    for (size_t i = 0; i < run.timeline.size(); ++i) {
      const Second& s = run.timeline[i];
      const double a = static_cast<double>(i);
      const double b = std::max(std::min(a + 1, span), a + 0.001);
      if (s.latency.count()) {
        p50.points.insert(p50.points.end(),
                          {{a, ms(s.latency.percentile(50))}, {b, ms(s.latency.percentile(50))}});
        p99.points.insert(p99.points.end(),
                          {{a, ms(s.latency.percentile(99))}, {b, ms(s.latency.percentile(99))}});
      } else {
        p50.points.emplace_back(a, kGap);
        p99.points.emplace_back(a, kGap);
      }
      // A rate over a sliver of a second says little and would stretch the axis: left out.
      if (b - a < 0.25) continue;
      const double per_s = 1 / (b - a);
      sent.points.insert(sent.points.end(), {{a, static_cast<double>(s.sent) * per_s},
                                             {b, static_cast<double>(s.sent) * per_s}});
      done.points.insert(done.points.end(), {{a, static_cast<double>(s.done) * per_s},
                                             {b, static_cast<double>(s.done) * per_s}});
    }
    t.series = {p50, p99, sent, done};
    if (has_data(t)) html += figure(t);
  }
  return html + "</div>";
}

std::string runs_table(const Report& rep, const std::vector<const RunStats*>& runs) {
  bool tokens = false;
  for (const auto* r : runs) tokens = tokens || r->tokens > 0;
  const RunStats* k = knee_run(rep);
  // A closed-loop sweep: also the figure the throughput rule compares runs by.
  const bool closed = rep.sweep && runs.front()->mode == "closed";
  std::string html =
      "<h2>Runs</h2><div class=wide><table><tr><th>load</th><th>requests</th><th>ok</th><th>answered/s</th>";
  if (closed) html += "<th>sustained/s</th>";
  html += "<th>refused</th><th>errors</th><th>open at end</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>";
  if (rep.stream) html += "<th>first token p99 ms</th><th>inter-token p99 ms</th>";
  if (tokens) html += "<th>tokens/s</th>";
  html += "<th class=slo>SLO</th></tr>";
  auto cell = [](const Histogram& h, double p) { return h.count() ? num(ms(h.percentile(p))) : "n/a"; };
  for (const auto* r : runs) {
    const std::string breach = breach_of(rep, *r);
    html +=
        fmt::format("<tr{}><td>{}{}</td><td>{}</td><td>{}</td><td>{:.1f}</td>", r == k ? " class=knee" : "",
                    escape(load_name(*r)), r == k ? " (knee)" : "", r->requests, r->ok, r->throughput());
    if (closed) html += fmt::format("<td>{:.1f}</td>", r->sustained_throughput());
    html += fmt::format("<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>", r->refused,
                        percent(r->error_rate()), r->open_at_end, cell(r->latency, 50), cell(r->latency, 90),
                        cell(r->latency, 99));
    if (rep.stream) html += fmt::format("<td>{}</td><td>{}</td>", cell(r->ttft, 99), cell(r->itl, 99));
    if (tokens) html += fmt::format("<td>{}</td>", num(r->tokens_per_s()));
    html += breach.empty() ? "<td class=\"slo good\">within</td>"
                           : "<td class=\"slo bad\">broke: " + escape(breach) + "</td>";
    html += "</tr>";
  }
  return html + "</table></div>";
}

std::string failures_table(const std::vector<const RunStats*>& runs) {
  std::string rows;
  for (const auto* r : runs) {
    if (r->by_outcome.empty() && r->by_status.empty() && r->by_code.empty()) continue;
    auto list = [](const auto& counts) {
      std::string out;
      for (const auto& [name, n] : counts) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, n);
      return out;
    };
    std::string classes = escape(list(r->by_outcome));
    if (r->refused)
      classes += fmt::format(" (the refusals asked for {:.1f} s of waiting in all)", r->refused_wait_s);
    rows +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", escape(load_name(*r)),
                    r->requests - r->ok, classes, escape(list(r->by_status)), escape(list(r->by_code)));
  }
  if (rows.empty()) return "<h2>Failures</h2><p>No request failed.</p>";
  return "<h2>Failures</h2><div class=wide><table class=failures><tr><th>load</th><th>failed</th>"
         "<th>by class</th><th>HTTP statuses</th><th>ballast codes</th></tr>" +
         rows + "</table></div>";
}

constexpr const char* kStyle = R"(<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:1160px;
margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 6px;overflow-wrap:anywhere}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d1d9e0}
.meta{color:#59636e;margin:0 0 8px}
pre{background:#f6f8fa;border:1px solid #d1d9e0;border-radius:6px;padding:8px 10px;font-size:12.5px;
white-space:pre-wrap;overflow-wrap:anywhere}
.verdict{border-left:4px solid #2e7d32;background:#f1f8f1;padding:8px 12px;margin:14px 0 8px}
.verdict.bad{border-color:#b71c1c;background:#fdf2f2}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px 28px}
figure{margin:0}figcaption{font-weight:600;margin:6px 0 2px}
svg.plot{display:block;width:100%;height:auto;font:11px system-ui,sans-serif}
svg.plot text{fill:#333}svg.plot g text{font-weight:600}
.wide{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 7px;text-align:right;border-bottom:1px solid #eaeef2;white-space:nowrap}
th{background:#f6f8fa;font-weight:600;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}
.failures th,.failures td{text-align:left;white-space:normal}
tr.knee td{background:#fff7db;font-weight:600}
td.slo,th.slo{text-align:left;white-space:normal;min-width:15em}.good{color:#2e7d32}.bad{color:#b71c1c}
</style>)";

}  // namespace

std::string to_html(const Report& rep) {
  std::vector<const RunStats*> runs;
  for (const auto& r : rep.runs) runs.push_back(&r);
  std::stable_sort(runs.begin(), runs.end(), [](auto* a, auto* b) { return a->load < b->load; });
  const bool open = !runs.empty() && runs.front()->mode == "open";

  std::string html = "<!doctype html><html lang=en><head><meta charset=\"utf-8\"><title>ballast load: " +
                     escape(rep.target) + "</title>" + kStyle + "</head><body>";
  if (runs.empty()) return html + "<h1>ballast load</h1><p>No run was made.</p></body></html>\n";
  html += head(rep, runs, open);
  html += verdict(rep, runs, open);

  // Plots against load need two loads; a single run is shown in detail only.
  if (runs.front()->load != runs.back()->load) html += load_plots(rep, runs, open);
  // In detail: the knee's run, else the single run, else (no knee) the lightest load's.
  if (const RunStats* k = knee_run(rep))
    html += detail_plots(rep, *k, " (the knee)");
  else
    html += detail_plots(rep, *runs.front(), rep.sweep ? " (the lightest load)" : "");

  html += runs_table(rep, runs);
  html += failures_table(runs);
  Recommendation rec = recommend(rep);
  if (rec.max_in_flight > 0) {
    html += "<h2>Limits to set</h2><p>In ballast:</p><pre>" + escape(rec.ballast_yaml) +
            "</pre><p>LangChain:</p><pre>" + escape(rec.langchain) +
            "</pre><p>asyncio and the OpenAI SDK:</p><pre>" + escape(rec.asyncio) + "</pre>";
  }
  return html + "</body></html>\n";
}

}  // namespace ballast::load
