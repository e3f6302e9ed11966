// What doctor found for each endpoint, hop by hop, and how it is shown: a waterfall for people,
// JSON for machines. Pure: rendering only.
#pragma once

#include <string>
#include <vector>

#include "doctor/diagnosis.hpp"

namespace ballast::doctor {

struct Hop {
  std::string hop;  // config, proxy, dns, connect, proxy_connect, tls, models, chat, concurrency
  bool ok = true;
  double start_ms = 0;  // since the endpoint's diagnosis began
  double ms = 0;
  std::string detail;
};

struct Report {
  std::string name;
  std::string url;
  Cause cause = Cause::ok;
  std::string fix;
  std::vector<Hop> hops;
};

// One endpoint's waterfall: each hop with ✓/✗, its duration and a bar placed at its start, then the
// cause and the fix.
std::string render_text(const Report& report);

// {"cause", "fix", "endpoints": [{"name", "url", "cause", "fix", "hops": [{"hop", "ok", "ms", "detail"}]}]}.
// The overall cause is the first endpoint's that is not ok.
std::string render_json(const std::vector<Report>& reports);

}  // namespace ballast::doctor
