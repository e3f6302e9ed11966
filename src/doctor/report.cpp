#include "doctor/report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/json_writer.hpp"

namespace ballast::doctor {

namespace {

constexpr int kBarWidth = 24;

std::string bar(double start, double ms, double total) {
  if (total <= 0) total = 1;
  int from = std::clamp(static_cast<int>(std::floor(start / total * kBarWidth)), 0, kBarWidth - 1);
  int width = std::clamp(static_cast<int>(std::ceil(ms / total * kBarWidth)), 1, kBarWidth - from);
  std::string out;
  for (int i = 0; i < kBarWidth; ++i) out += i >= from && i < from + width ? "█" : " ";
  return out;
}

std::string duration(double ms) {
  if (ms < 1000) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.2f} s", ms / 1000);
}

}  // namespace

std::string render_text(const Report& r) {
  std::string out = fmt::format("{}  {}\n", r.name, r.url);
  double total = 0;
  for (const auto& h : r.hops) total = std::max(total, h.start_ms + h.ms);
  for (const auto& h : r.hops) {
    out += fmt::format("  {} {:<13} {:>9}  ▕{}▏ {}\n", h.ok ? "✓" : "✗", h.hop, duration(h.ms),
                       bar(h.start_ms, h.ms, total), h.detail);
  }
  out += fmt::format("  cause: {}\n  fix:   {}\n", cause_name(r.cause), r.fix);
  return out;
}

std::string render_json(const std::vector<Report>& reports) {
  const Report* first_bad = nullptr;
  for (const auto& r : reports) {
    if (r.cause != Cause::ok) {
      first_bad = &r;
      break;
    }
  }
  JsonWriter w;
  w.begin_object();
  w.field("cause", first_bad ? cause_name(first_bad->cause) : "ok");
  w.field("fix", first_bad ? first_bad->fix : (reports.empty() ? "" : reports.front().fix));
  w.key("endpoints").begin_array();
  for (const auto& r : reports) {
    w.begin_object()
        .field("name", r.name)
        .field("url", r.url)
        .field("cause", cause_name(r.cause))
        .field("fix", r.fix);
    w.key("hops").begin_array();
    for (const auto& h : r.hops) {
      w.begin_object().field("hop", h.hop).field("ok", h.ok).field("ms", std::round(h.ms * 10) / 10);
      w.field("detail", h.detail).end_object();
    }
    w.end_array().end_object();
  }
  w.end_array().end_object();
  return w.take();
}

}  // namespace ballast::doctor
