// What the terminal, JSON and HTML reports share: units and names. Internal to src/load.
#pragma once

#include <cstdint>
#include <string>

#include "load/report.hpp"

namespace ballast::load {

double ms(uint64_t us);
// "concurrency 8" or "40 req/s".
std::string load_name(const RunStats& run);
// The run at the knee, or nullptr.
const RunStats* knee_run(const Report& report);

}  // namespace ballast::load
