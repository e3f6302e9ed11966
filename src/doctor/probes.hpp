// `ballast doctor`'s probes: each hop from the client to the model, tried for real and timed, in
// order, stopping at the first that fails. Sockets and TLS are driven directly (non-blocking, each
// wait bounded by poll), HTTP through libcurl; what the facts mean is diagnosis.cpp's.
#pragma once

#include "doctor/report.hpp"
#include "policy/proxy_env.hpp"

namespace ballast::doctor {

struct ProbeOptions {
  GetEnv getenv;
  bool in_container = false;
  int probe_concurrency = 0;  // 0: no concurrency ramp
};

Report diagnose(const Target& target, const ProbeOptions& options);

}  // namespace ballast::doctor
