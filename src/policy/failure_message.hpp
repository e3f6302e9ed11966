// Every failure's message: which hop failed, at which endpoint (never its key), the phase timings
// reached, and the likely fix, naming the config key or variable to change.
#pragma once

#include <string>
#include <string_view>

#include "policy/deadline.hpp"
#include "policy/outcome.hpp"

namespace ballast {

struct FailureContext {
  std::string_view endpoint;  // "127.0.0.1:8000", or the endpoint's configured name
  std::string_view host;      // the host part alone, for DNS and localhost hints
  std::string_view proxy;     // the proxy in use ("" for none) and where it came from
  std::string_view proxy_source;
  const PhaseBounds* bounds = nullptr;
  const RequestDeadline* deadline = nullptr;
  bool in_container = false;  // running inside a container: localhost is not the host machine
  // The endpoint's base URL (or Azure endpoint): a configured name is shown with its host:port,
  // "dead (127.0.0.1:8000)", so that "is the port right?" can be answered from the message.
  std::string_view url;
};

std::string describe_failure(ErrorCode code, const Outcome& outcome, const FailureContext& ctx);

// "dns 0.1ms, connect 0.3ms, first byte 512ms": the milestones an attempt reached.
std::string describe_timings(const PhaseTimings& t);

// Every occurrence of `secret` (an endpoint's key) in `text` becomes ***: for what an upstream says
// back (an error body, header or event quoting the Authorization it was sent) before anyone sees it.
void scrub_secret(std::string& text, std::string_view secret);

}  // namespace ballast
