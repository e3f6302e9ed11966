// Shared by the policy files that read JSON: one simdjson parser per thread (it keeps its buffers
// between documents) and the reading of a `usage` object in any provider's shape.
#pragma once

#include <simdjson.h>

#include <optional>

#include "policy/usage.hpp"

namespace ballast {

simdjson::dom::parser& json_parser();

std::optional<Usage> usage_from(simdjson::dom::element usage);

}  // namespace ballast
