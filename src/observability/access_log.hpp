// One JSON line per request: what was asked, where it went, every attempt with its phase
// timings, how it ended (status and taxonomy code), tokens and bytes.
#pragma once

#include <atomic>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/error_code.hpp"
#include "policy/outcome.hpp"
#include "policy/usage.hpp"

namespace ballast {

struct AttemptRecord {
  std::string endpoint;
  std::string model;  // the model its upstream was asked for
  int status = 0;
  ErrorCode code = ErrorCode::ok;
  bool reused_connection = false;
  PhaseTimings timings;
};

struct AccessRecord {
  std::string id;
  std::string method;
  std::string path;
  std::string peer;
  std::string model;
  std::string endpoint;        // where the response came from (the last attempt's)
  std::string upstream_model;  // the model that endpoint was asked for (its model:, else `model`)
  bool stream = false;
  int status = 0;
  ErrorCode code = ErrorCode::ok;
  std::optional<double> client_timeout_ms;          // the client's deadline or patience that applied, if any
  std::string_view client_timeout_source = "none";  // sent | read | learned | none (policy/deadline)
  double queue_ms = 0;                // waiting for endpoints' max_in_flight slots, every attempt's
  double backoff_ms = 0;              // waiting between attempts
  std::optional<int> retry_after_ms;  // what the client was told to wait, when it was
  std::vector<AttemptRecord> attempts;
  std::optional<Usage> usage;
  int malformed_events = 0;  // stream events dropped because their data was not JSON
  size_t bytes_in = 0;
  size_t bytes_out = 0;
  double duration_ms = 0;
  std::string message;  // the failure's message, when there was one
};

std::string format_access_line(const AccessRecord& record, std::string_view timestamp);

// Where the lines go: "stdout", "stderr", "off", or a file (appended to).
class AccessLog {
 public:
  AccessLog() = default;
  // It closes the file it opened: one owner.
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  // Returns an error message, or "" on success.
  std::string open(const std::string& target);
  void write(const AccessRecord& record);
  bool enabled() const { return file_ != nullptr; }
  // Lines that could not be written (a reader that went away, a full disk): serving goes on.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  ~AccessLog();

 private:
  std::atomic<uint64_t> dropped_{0};
  std::FILE* file_ = nullptr;
  bool owned_ = false;
};

// Lines of the server log (stderr) that could not be written. Counted by its sink, shown in
// /metrics beside the access log's.
inline std::atomic<uint64_t> server_log_lines_dropped{0};

}  // namespace ballast
