// Splits an upstream SSE byte stream into complete events and reads what the gateway needs from
// each: is it a comment (keep-alive), does it carry content (the first token), does it end the
// stream, is it malformed, does it report usage. Only complete events are handed out, so the
// gateway can always append an error event on a clean event boundary.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/usage.hpp"

namespace ballast {

struct SseEvent {
  std::string_view
      raw;  // the event's bytes including its terminating blank line; valid until the next feed()
  bool comment_only = false;  // only ":" lines: a keep-alive
  bool has_content = false;   // a token, tool call, refusal, reasoning text or finish
  bool terminal = false;      // [DONE], a Responses API final event, or an error event
  bool upstream_error = false;
  bool malformed = false;  // data that is not JSON (and not [DONE])
  std::optional<Usage> usage;
};

class SseScanner {
 public:
  void feed(std::string_view bytes);
  // The next complete event, if one is buffered.
  std::optional<SseEvent> next();
  // Bytes of an event not yet complete.
  size_t pending_bytes() const { return buffer_.size() - pos_; }

 private:
  std::string buffer_;
  size_t pos_ = 0;
};

// Reads one event's fields (the text between blank lines) and judges it. Exposed for tests.
SseEvent inspect_sse_event(std::string_view raw);

}  // namespace ballast
