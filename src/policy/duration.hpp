// Durations as people write them in config and flags: "250ms", "5s", "1.5s", "2m", "1h".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/time.hpp"

namespace ballast {

// Parses "<number><unit>" with unit one of us, ms, s, m, h. A bare number is refused: the unit is
// never guessed. Returns nothing on error.
std::optional<Millis> parse_duration(std::string_view text);

// "250ms", "5s", "2m": the shortest exact spelling, for messages and docs.
std::string format_duration(Millis d);

// Seconds as the OpenAI SDKs send them in x-stainless-timeout ("600", "12.5"). Nothing if not a
// positive finite number.
std::optional<Duration> parse_seconds(std::string_view text);

}  // namespace ballast
