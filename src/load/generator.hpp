// The load generator: closed loop (N workers, each sending its next request when the last one
// ended) or open loop (Poisson arrivals at a rate, each request timed from when it was due to be
// sent, so that a stall shows as the delay requests really saw, not as fewer requests). One Asio
// loop and one curl multi, as in the gateway.
#pragma once

#include <string>
#include <vector>

#include "common/time.hpp"
#include "load/stats.hpp"

namespace ballast::load {

struct Request {
  std::string url;  // {target}/chat/completions
  std::vector<std::string> headers;
  std::string body;
  bool stream = false;
  Millis timeout{60'000};  // the client's: a request not done by then is a client timeout
};

struct RunSpec {
  bool open = false;  // open loop at `load` requests/s, else closed loop with `load` workers
  double load = 1;
  Millis duration{10'000};
  uint64_t seed = 1;
  bool progress = false;  // a live line on stderr (only on a terminal)
  // Closed loop: after a 429/503 with Retry-After, a worker waits as told (at most 60 s, and not
  // past the window) before its next request.
  bool respect_retry_after = true;
};

RunStats run(const Request& request, const RunSpec& spec);

}  // namespace ballast::load
