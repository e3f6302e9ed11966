// The simulator's faults: parsing their specs and deciding, per request, which apply.
//   status=CODE[,retry-after=S][,code=NAME]  answer CODE (200-599) at once (NAME: the error body's
//                                            code; 204, 205 and 304 have no body)
//   blackhole                    read the request, never answer
//   reset                        close the connection before answering
//   slow-headers=MS              hold the response headers for MS
//   slow-first-token=MS          first token after MS instead of --ttft
//   stall-after=K                K tokens, then silence with the connection open
//   cut-after=K                  K tokens, then close without [DONE]
//   malformed                    one invalid SSE chunk after the first token (non-streamed: invalid JSON)
//   malformed-at=K               one invalid SSE chunk after K tokens; the stream goes on, whole
//   no-done                      a whole stream (finish_reason, usage) that ends without data: [DONE]
//   error-event=K                K tokens, then the provider's mid-stream error (data: {"error": …})
//   keepalive-only               SSE comments and no tokens
// Each may end in @PROBABILITY (0..1), e.g. "status=503@0.3", and then in #N: only the next N
// requests it hits, e.g. "status=500#1" fails one request and then lets every other through.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ballast::sim {

enum class FaultKind {
  status,
  blackhole,
  reset,
  slow_headers,
  slow_first_token,
  stall_after,
  cut_after,
  malformed,
  malformed_at,
  no_done,
  error_event,
  keepalive_only,
};

struct Fault {
  FaultKind kind = FaultKind::status;
  int value = 0;           // status code, milliseconds or token count
  int retry_after = -1;    // seconds, for status; -1 for none
  std::string error_code;  // for status: the error body's code (e.g. context_length_exceeded)
  double probability = 1.0;
  int times = -1;    // how many more requests it may hit; -1: every one
  std::string spec;  // as written, for /sim/faults
};

struct FaultParse {
  std::optional<Fault> fault;
  std::string error;
};
FaultParse parse_fault(std::string_view spec);

// Several specs separated by ';' or spaces (the x-sim-fault header form).
struct FaultListParse {
  std::vector<Fault> faults;
  std::string error;
};
FaultListParse parse_fault_list(std::string_view specs);

// What one request will suffer: every fault whose probability roll hit, merged.
struct FaultPlan {
  std::optional<int> status;
  int retry_after = -1;
  std::string error_code;
  bool blackhole = false;
  bool reset = false;
  bool malformed = false;
  bool keepalive_only = false;
  int slow_headers_ms = 0;
  std::optional<int> slow_first_token_ms;
  std::optional<int> stall_after;
  std::optional<int> cut_after;
  std::optional<int> malformed_at;
  bool no_done = false;
  std::optional<int> error_event;
  bool any() const;
};

// Rolls each fault in order with `rng`: deterministic for a given seed and request order. A fault
// with a count left (#N) spends one when it hits.
FaultPlan plan_faults(std::vector<Fault>& faults, std::mt19937_64& rng);

}  // namespace ballast::sim
