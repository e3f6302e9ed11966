// How load runs are shown: a line per run on the terminal, the knee and the limits to set, the
// JSON file (schema ballast.load/1, docs/load.md) and a self-contained HTML page with SVG plots.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "load/stats.hpp"

namespace ballast::load {

struct Report {
  std::string target, model;
  std::string command;  // the command line, as run
  std::string version;  // ballast's
  std::string started;  // when the first run began, UTC, ISO 8601
  double wall_s = 0;    // from the first run's start to the last one's end
  bool stream = false;
  Slo slo;
  std::vector<RunStats> runs;
  std::vector<std::string> breaches;  // per run: "" when within the SLO
  std::optional<double> knee;         // sweeps only
  bool knee_capped = false;           // the largest load tried was still within the SLO
  // How the knee was chosen: "slo" (the highest load within a given SLO) or "throughput" (no SLO
  // given: where more load stopped buying throughput, docs/load.md).
  std::string knee_rule = "slo";
  bool sweep = false;
};

// The limits to set so that the target stays at its knee.
struct Recommendation {
  int max_in_flight = 0;
  Millis first_token{0}, total{0};
  std::string ballast_yaml, langchain, asyncio;
};

// From the run at the knee: max_in_flight = the knee (for a concurrency sweep; for a rate sweep,
// the concurrency Little's law gives), timeouts at twice its p99 first token and latency.
Recommendation recommend(const Report& report);

std::string run_line(const RunStats& run, const std::string& breach);
std::string summary(const Report& report);
std::string to_json(const Report& report);
std::string to_html(const Report& report);

}  // namespace ballast::load
