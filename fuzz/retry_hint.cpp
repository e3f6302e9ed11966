// An upstream's response headers, one "name: value" a line, read for how long it asked to be left
// alone (policy/retry: retry-after-ms, Retry-After in seconds or as an HTTP date, OpenAI's
// x-ratelimit-reset-* durations). A hint is never negative, whatever the headers say.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "policy/retry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  ballast::HeaderPairs headers;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }

  // 2024-06-01T00:00:00Z: an HTTP date is read against a fixed clock so a finding reproduces.
  const auto wall_now = std::chrono::system_clock::from_time_t(1'717'200'000);
  if (auto hint = ballast::retry_hint(headers, wall_now)) FUZZ_CHECK(hint->count() >= 0);

  for (const auto& [name, value] : headers) {
    if (auto d = ballast::parse_go_duration(value)) FUZZ_CHECK(d->count() >= 0);
  }
  if (auto d = ballast::parse_go_duration(text)) FUZZ_CHECK(d->count() >= 0);
  return 0;
}
