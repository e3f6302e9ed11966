#include "policy/duration.hpp"

#include <charconv>
#include <cmath>

namespace ballast {

namespace {

std::optional<double> parse_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == std::string_view::npos || unit_at == 0) return std::nullopt;
  auto number = parse_number(text.substr(0, unit_at));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(unit_at);
  double ms = 0;
  if (unit == "us")
    ms = *number / 1000.0;
  else if (unit == "ms")
    ms = *number;
  else if (unit == "s")
    ms = *number * 1000.0;
  else if (unit == "m")
    ms = *number * 60'000.0;
  else if (unit == "h")
    ms = *number * 3'600'000.0;
  else
    return std::nullopt;
  if (ms > 1e12) return std::nullopt;
  return Millis(static_cast<int64_t>(std::llround(ms)));
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<Duration> parse_seconds(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  auto v = parse_number(text);
  if (!v || *v <= 0 || *v > 1e9) return std::nullopt;
  // "1e-20" is positive but under the clock's 1 ns tick: it is refused like "0", not read as a
  // zero timeout (a deadline already past on arrival).
  auto d = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(*v));
  if (d <= Duration::zero()) return std::nullopt;
  return d;
}

}  // namespace ballast
