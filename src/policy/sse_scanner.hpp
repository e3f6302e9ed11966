// Splits an upstream SSE byte stream into complete events and reads what the gateway needs from
// each: is it a comment (keep-alive), does it carry content (the first token), does it end the
// stream, is it the upstream's own error, is it malformed, does it report usage. Only complete
// events are handed out, so the gateway can always append an error event on a clean event
// boundary. StreamProgress then says, as the OpenAI SDKs would, whether what arrived is a whole
// answer.
#pragma once

#include <cstdint>
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
  bool terminal = false;      // ends the stream: [DONE], a Responses API final event, or an error event
  bool done = false;          // data: [DONE]
  bool completed = false;     // the Responses API's response.completed
  // The upstream's own failure: an event named error, data with a top-level "error", or the
  // Responses API's response.failed / response.incomplete / error.
  bool upstream_error = false;
  std::string error_message;  // the upstream's words for it, when it gave some
  std::string error_code;     // its error object's "code", when it had one (ballast's own, through ballast)
  bool malformed = false;     // data that is not JSON (and not [DONE])
  // Chat and completions: the choices this event carries, and those among them with a
  // finish_reason, by index (bit i for index i; indices from 63 up share bit 63).
  uint64_t choices = 0;
  uint64_t finished = 0;
  std::optional<Usage> usage;
};

// Whether a stream's events make a whole answer, judged as the OpenAI SDKs judge it: [DONE]; or
// every choice seen has its finish_reason (usage chunks may follow); or response.completed.
class StreamProgress {
 public:
  void see(const SseEvent& event);
  bool complete() const;

 private:
  bool done_ = false;
  uint64_t choices_ = 0;
  uint64_t finished_ = 0;
};

class SseScanner {
 public:
  // `max_line`: the longest line accepted (limits.max_sse_line); a longer one makes the stream
  // `oversized`, and nothing more is handed out.
  SseScanner(size_t max_line = size_t{1} << 20) : max_line_(max_line) {}  // NOLINT: {} is the default

  void feed(std::string_view bytes);
  // The next complete event, if one is buffered. Each byte is looked at once however the stream
  // is split, so the cost is linear in what arrives.
  std::optional<SseEvent> next();
  // Bytes of an event not yet complete.
  size_t pending_bytes() const { return buffer_.size() - pos_; }
  bool oversized() const { return oversized_; }
  // The stream has ended: nothing more will be fed. A \r at the very end, which until now might have
  // been the first half of a \r\n, ends its line, so an event it completes is handed out.
  void end() { ended_ = true; }
  bool ended() const { return ended_; }

 private:
  std::string buffer_;
  size_t pos_ = 0;         // the start of the event being read
  size_t scanned_ = 0;     // bytes after pos_ already looked at
  size_t line_start_ = 0;  // where the current line began, after pos_
  size_t max_line_;
  bool oversized_ = false;
  bool ended_ = false;
};

// Reads one event's fields (the text between blank lines) and judges it. Exposed for tests.
SseEvent inspect_sse_event(std::string_view raw);

}  // namespace ballast
