#include "policy/retry.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "policy/duration.hpp"
#include "policy/header_filter.hpp"

namespace ballast {

Millis backoff(const RetryPolicy& policy, int retry, double unit) {
  double ceiling = static_cast<double>(policy.base.count());
  for (int i = 1; i < retry && ceiling < static_cast<double>(policy.cap.count()); ++i) ceiling *= 2;
  ceiling = std::min(ceiling, static_cast<double>(policy.cap.count()));
  unit = std::clamp(unit, 0.0, 1.0);
  return Millis(static_cast<int64_t>(std::floor(ceiling * unit)));
}

namespace {

const std::string* find(const HeaderPairs& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, the only form servers send today). The year can be
// anything from 0 to 9999, and system_clock (nanoseconds) ends in 2262: a date is clamped to
// 1970-2200 first. Either way the wait it gives is the same: none, or past any retry_after_cap.
std::optional<std::chrono::system_clock::time_point> parse_http_date(const std::string& text) {
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  constexpr std::time_t kLatest = 7'258'118'400;  // 2200-01-01T00:00:00Z
  return std::chrono::system_clock::from_time_t(std::clamp<std::time_t>(::timegm(&tm), 0, kLatest));
}

Millis at_least_zero(Millis d) {
  return std::max(d, Millis(0));
}

}  // namespace

std::optional<Millis> parse_go_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  while (!text.empty()) {
    size_t unit_at = text.find_first_not_of("0123456789.");
    if (unit_at == 0 || unit_at == std::string_view::npos) return std::nullopt;
    size_t unit_end = text.find_first_of("0123456789.", unit_at);
    if (unit_end == std::string_view::npos) unit_end = text.size();
    auto part = parse_duration(text.substr(0, unit_end));
    if (!part) return std::nullopt;
    total_ms += static_cast<double>(part->count());
    text.remove_prefix(unit_end);
  }
  return Millis(static_cast<int64_t>(total_ms));
}

std::optional<Millis> retry_hint(const HeaderPairs& headers, std::chrono::system_clock::time_point wall_now) {
  if (const auto* ms = find(headers, "retry-after-ms")) {
    if (auto d = parse_seconds(*ms)) {
      return at_least_zero(std::chrono::duration_cast<Millis>(*d / 1000));
    }
  }
  if (const auto* ra = find(headers, "retry-after")) {
    if (auto d = parse_seconds(*ra)) return at_least_zero(std::chrono::ceil<Millis>(*d));
    if (*ra == "0") return Millis(0);
    if (auto when = parse_http_date(*ra)) {
      return at_least_zero(std::chrono::duration_cast<Millis>(*when - wall_now));
    }
  }
  std::optional<Millis> hint;
  bool exhausted_found = false;
  for (auto [reset, remaining] : {std::pair{"x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"},
                                  std::pair{"x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"}}) {
    const auto* r = find(headers, reset);
    if (!r) continue;
    auto d = parse_go_duration(*r);
    if (!d) continue;
    const auto* left = find(headers, remaining);
    bool exhausted = left && *left == "0";
    if (exhausted && (!exhausted_found || !hint || *d > *hint)) {
      hint = d;  // the limit actually hit decides; if both are, the later reset
      exhausted_found = true;
    } else if (!exhausted_found && (!hint || *d < *hint)) {
      hint = d;
    }
  }
  return hint;
}

RetryBudget::RetryBudget(const RetryPolicy& policy)
    : ratio_(policy.budget_ratio),
      window_s_(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(policy.budget_window).count(), 1, 64)) {
  min_per_window_ = policy.budget_min_per_s * static_cast<double>(window_s_);
}

RetryBudget::Slot& RetryBudget::slot(TimePoint now) {
  int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Slot& s = slots_[static_cast<size_t>(second) % slots_.size()];
  if (s.second != second) s = Slot{second, 0, 0};
  return s;
}

template <typename F>
double RetryBudget::sum(TimePoint now, F field) {
  int64_t second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  double total = 0;
  for (const Slot& s : slots_) {
    if (s.second > second - window_s_ && s.second <= second) total += field(s);
  }
  return total;
}

void RetryBudget::record_request(TimePoint now) {
  ++slot(now).requests;
}

void RetryBudget::record_client_retry(TimePoint now) {
  ++slot(now).retries;
}

double RetryBudget::requests(TimePoint now) {
  return sum(now, [](const Slot& s) { return s.requests; });
}

double RetryBudget::retries(TimePoint now) {
  return sum(now, [](const Slot& s) { return s.retries; });
}

double RetryBudget::allowed(TimePoint now) {
  return ratio_ * requests(now) + min_per_window_;
}

bool RetryBudget::try_spend(TimePoint now) {
  if (retries(now) + 1 > allowed(now)) return false;
  ++slot(now).retries;
  return true;
}

}  // namespace ballast
