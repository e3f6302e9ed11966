// The SSE scanner (policy/sse_scanner) on an upstream byte stream, fed three ways: all at once, a
// byte at a time, and in chunks split where the input's hash says. Every way must hand out the same
// events, each a whole event ending in a blank line, and never more bytes than were fed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "policy/sse_scanner.hpp"

namespace {

using ballast::SseEvent;
using ballast::SseScanner;

// What one event said, copied: SseEvent::raw is valid only until the next feed().
struct Seen {
  std::string raw;
  bool comment_only, has_content, terminal, done, completed, upstream_error, malformed;
  std::string error_message;
  uint64_t choices, finished;
  bool has_usage;
  int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
  bool operator==(const Seen&) const = default;
};

struct Run {
  std::vector<Seen> events;
  bool oversized = false;
  size_t pending = 0;
  bool operator==(const Run&) const = default;
};

bool is_eol(char c) {
  return c == '\n' || c == '\r';
}

// The text without its last line ending ("\r\n", "\n" or "\r").
std::string_view drop_eol(std::string_view s) {
  if (s.ends_with("\r\n")) return s.substr(0, s.size() - 2);
  if (!s.empty() && is_eol(s.back())) return s.substr(0, s.size() - 1);
  return s;
}

void check_event(const SseEvent& ev, size_t fed) {
  FUZZ_CHECK(!ev.raw.empty() && ev.raw.size() <= fed);
  // An event ends with an empty line: its last line ending is preceded by another.
  FUZZ_CHECK(is_eol(ev.raw.back()));
  std::string_view body = drop_eol(ev.raw);
  FUZZ_CHECK(!body.empty() && is_eol(body.back()));
  FUZZ_CHECK(ev.raw.find_first_not_of("\r\n") != std::string_view::npos);  // blank runs are skipped
  FUZZ_CHECK(!ev.done || ev.terminal);
  FUZZ_CHECK(!ev.completed || ev.terminal);
  FUZZ_CHECK(!ev.upstream_error || ev.terminal);
  FUZZ_CHECK((ev.finished & ~ev.choices) == 0);
  FUZZ_CHECK(!ev.comment_only || (!ev.has_content && !ev.terminal && !ev.malformed && !ev.usage));
  FUZZ_CHECK(ev.error_message.size() <= 256);
}

// Drains every complete event after a feed.
void drain(SseScanner& scanner, Run& run, size_t fed, size_t& handed_out, ballast::StreamProgress& progress,
           bool& ended) {
  while (auto ev = scanner.next()) {
    check_event(*ev, fed);
    handed_out += ev->raw.size();
    FUZZ_CHECK(handed_out + scanner.pending_bytes() <= fed);
    progress.see(*ev);
    // [DONE] and response.completed end the answer for good (a choice that starts after the others
    // finished makes it incomplete again, as it should).
    ended = ended || ev->done || ev->completed;
    FUZZ_CHECK(!ended || progress.complete());
    Seen s{std::string(ev->raw), ev->comment_only,     ev->has_content, ev->terminal,      ev->done,
           ev->completed,        ev->upstream_error,   ev->malformed,   ev->error_message, ev->choices,
           ev->finished,         ev->usage.has_value()};
    if (ev->usage) {
      s.prompt_tokens = ev->usage->prompt_tokens;
      s.completion_tokens = ev->usage->completion_tokens;
      s.total_tokens = ev->usage->total_tokens;
    }
    run.events.push_back(std::move(s));
  }
  FUZZ_CHECK(handed_out + scanner.pending_bytes() <= fed);
}

// Feeds `stream` in the pieces `sizes` names (the last piece takes what is left).
Run feed(std::string_view stream, size_t max_line, const std::vector<size_t>& sizes) {
  SseScanner scanner(max_line);
  ballast::StreamProgress progress;
  bool ended = false;
  Run run;
  size_t fed = 0, handed_out = 0;
  for (size_t i = 0; fed < stream.size(); ++i) {
    size_t n = i < sizes.size() ? std::min(sizes[i], stream.size() - fed) : stream.size() - fed;
    scanner.feed(stream.substr(fed, n));
    fed += n;
    drain(scanner, run, fed, handed_out, progress, ended);
    if (scanner.oversized()) {
      // Nothing more is handed out once a line is over the limit, however much arrives.
      scanner.feed(stream.substr(fed));
      FUZZ_CHECK(!scanner.next());
      fed = stream.size();
      break;
    }
  }
  // The stream ends: a \r at its very end ends its line.
  scanner.end();
  drain(scanner, run, fed, handed_out, progress, ended);
  run.oversized = scanner.oversized();
  run.pending = scanner.pending_bytes();
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  ballast::fuzz::Splits random(stream);
  // A quarter of the inputs run with a short line limit, so that limits.max_sse_line is reached.
  size_t max_line = random.below(4) == 0 ? random.below(64) : size_t{1} << 20;

  Run whole = feed(stream, max_line, {stream.size()});
  Run bytes = feed(stream, max_line, std::vector<size_t>(stream.size(), 1));
  std::vector<size_t> chunks;
  for (size_t total = 0; total < stream.size();) {
    chunks.push_back(1 + random.below(random.below(2) ? 8 : 256));
    total += chunks.back();
  }
  Run chunked = feed(stream, max_line, chunks);
  FUZZ_CHECK(whole == bytes);
  FUZZ_CHECK(whole == chunked);
  if (!whole.oversized) {
    size_t handed_out = 0;
    for (const auto& e : whole.events) handed_out += e.raw.size();
    FUZZ_CHECK(handed_out + whole.pending <= stream.size());
  }

  // The event reader on its own, given any text as one event.
  SseEvent ev = ballast::inspect_sse_event(stream);
  FUZZ_CHECK(ev.raw.size() == stream.size());
  FUZZ_CHECK(!ev.done || ev.terminal);
  FUZZ_CHECK((ev.finished & ~ev.choices) == 0);
  return 0;
}
