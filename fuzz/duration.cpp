// Durations as config and flags write them (policy/duration: "250ms", "1.5s", "2m") and the seconds
// the SDKs send in x-stainless-timeout. A parsed duration is never negative, and the shortest
// spelling format_duration gives it reads back as the same duration.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "check.hpp"
#include "policy/duration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ballast::Millis;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto d = ballast::parse_duration(text)) {
    FUZZ_CHECK(d->count() >= 0 && d->count() <= 1'000'000'000'000);
    FUZZ_CHECK(ballast::parse_duration(ballast::format_duration(*d)) == d);
  }

  if (auto s = ballast::parse_seconds(text)) {
    // "a positive finite number" of seconds, at most 1e9.
    FUZZ_CHECK(*s > ballast::Duration::zero());
    FUZZ_CHECK(*s <= std::chrono::seconds(1'000'000'000));
  }

  // Any count of milliseconds formats; those a config can hold read back.
  if (size >= sizeof(int64_t)) {
    int64_t ms = 0;
    std::memcpy(&ms, data, sizeof ms);
    std::string spelled = ballast::format_duration(Millis(ms));
    if (ms >= 0 && ms <= 1'000'000'000'000) FUZZ_CHECK(ballast::parse_duration(spelled) == Millis(ms));
  }
  return 0;
}
