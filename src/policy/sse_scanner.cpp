#include "policy/sse_scanner.hpp"

#include <algorithm>
#include <cstring>

#include "policy/json_read.hpp"

namespace ballast {

namespace {

// Where the line that starts at `i` ends: the first \r or \n at or after `i`, or text.size().
// memchr, not find_first_of, which calls memchr once per byte of `text` to look through "\r\n".
size_t line_end(std::string_view text, size_t i) {
  const char* p = text.data();
  const void* nl = std::memchr(p + i, '\n', text.size() - i);
  size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - p) : text.size();
  const void* cr = std::memchr(p + i, '\r', end - i);
  return cr ? static_cast<size_t>(static_cast<const char*>(cr) - p) : end;
}

bool non_empty_string(simdjson::dom::element e) {
  std::string_view s;
  return e.get(s) == simdjson::SUCCESS && !s.empty();
}

bool present(simdjson::dom::object o, const char* key) {
  simdjson::dom::element e;
  return o[key].get(e) == simdjson::SUCCESS && !e.is_null();
}

// Chat and legacy completions: a choice carries content when it has text, a tool or function
// call, a refusal, reasoning text, or a finish. A role-only first chunk does not.
bool choice_has_content(simdjson::dom::element choice) {
  simdjson::dom::object c;
  if (choice.get(c) != simdjson::SUCCESS) return false;
  if (present(c, "finish_reason")) return true;
  simdjson::dom::element e;
  if (c["text"].get(e) == simdjson::SUCCESS && non_empty_string(e)) return true;
  simdjson::dom::object delta;
  if (c["delta"].get(delta) != simdjson::SUCCESS) return false;
  for (const char* key : {"content", "refusal", "reasoning_content", "reasoning"}) {
    if (delta[key].get(e) == simdjson::SUCCESS && non_empty_string(e)) return true;
  }
  return present(delta, "tool_calls") || present(delta, "function_call");
}

uint64_t choice_bit(simdjson::dom::element choice) {
  int64_t index = 0;
  if (choice["index"].get(index) != simdjson::SUCCESS || index < 0) index = 0;
  return uint64_t{1} << std::min<int64_t>(index, 63);
}

// The message of an error object, or the error itself when it is a string, cut for a log line.
std::string error_words(simdjson::dom::element error) {
  std::string_view s;
  if (error.get(s) != simdjson::SUCCESS && error["message"].get(s) != simdjson::SUCCESS) return {};
  constexpr size_t kMax = 256;
  return std::string(s.substr(0, kMax));
}

// The "code" of an error object, cut as its words are.
std::string error_code(simdjson::dom::element error) {
  std::string_view s;
  if (!error.is_object() || error["code"].get(s) != simdjson::SUCCESS) return {};
  constexpr size_t kMax = 128;
  return std::string(s.substr(0, kMax));
}

void judge_data(std::string_view data, SseEvent& ev) {
  if (data == "[DONE]") {
    ev.terminal = true;
    ev.done = true;
    return;
  }
  simdjson::dom::element doc;
  if (json_parser().parse(data.data(), data.size()).get(doc) != simdjson::SUCCESS) {
    ev.malformed = true;
    return;
  }
  simdjson::dom::object obj;
  if (doc.get(obj) != simdjson::SUCCESS) return;
  simdjson::dom::element error;
  if (obj["error"].get(error) == simdjson::SUCCESS && !error.is_null()) {
    ev.upstream_error = true;
    ev.terminal = true;
    ev.error_message = error_words(error);
    ev.error_code = error_code(error);
    return;
  }
  simdjson::dom::element u;
  if (obj["usage"].get(u) == simdjson::SUCCESS && !u.is_null()) ev.usage = usage_from(u);
  simdjson::dom::array choices;
  if (obj["choices"].get(choices) == simdjson::SUCCESS) {
    for (auto choice : choices) {
      uint64_t bit = choice_bit(choice);
      ev.choices |= bit;
      if (choice.is_object() && present(choice.get_object().value(), "finish_reason")) ev.finished |= bit;
      if (choice_has_content(choice)) ev.has_content = true;
    }
    return;
  }
  // The Responses API: typed events; deltas carry content, three events end the stream.
  std::string_view type;
  if (obj["type"].get(type) != simdjson::SUCCESS) return;
  if (type.ends_with(".delta")) ev.has_content = true;
  if (type == "response.completed" || type == "response.incomplete" || type == "response.failed" ||
      type == "error") {
    ev.terminal = true;
    ev.has_content = true;
    ev.completed = type == "response.completed";
    ev.upstream_error = !ev.completed;
    if (ev.upstream_error) {
      simdjson::dom::element e;
      if (obj["response"]["error"].get(e) == simdjson::SUCCESS) {
        ev.error_message = error_words(e);
        ev.error_code = error_code(e);
      } else if (obj["message"].get(e) == simdjson::SUCCESS) {
        ev.error_message = error_words(e);
      }
      if (ev.error_message.empty()) ev.error_message = std::string(type);
    }
    if (obj["response"]["usage"].get(u) == simdjson::SUCCESS && !u.is_null()) ev.usage = usage_from(u);
  }
}

}  // namespace

SseEvent inspect_sse_event(std::string_view raw) {
  SseEvent ev;
  ev.raw = raw;
  // One data line (the usual event) is read where it lies; several are joined with \n.
  std::string_view data;
  std::string joined;
  bool has_data = false;
  std::string_view event_name;
  ev.comment_only = true;
  size_t i = 0;
  while (i < raw.size()) {
    size_t end = line_end(raw, i);
    std::string_view line = raw.substr(i, end - i);
    i = end;
    if (i < raw.size() && raw[i] == '\r') ++i;
    if (i < raw.size() && raw[i] == '\n') ++i;
    if (line.empty() || line.front() == ':') continue;
    ev.comment_only = false;
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data) {
        if (joined.empty()) joined.assign(data);
        joined.append(1, '\n').append(value);
        data = joined;
      } else {
        data = value;
      }
      has_data = true;
    } else if (field == "event") {
      event_name = value;
    }
  }
  if (event_name == "error") {
    ev.upstream_error = true;
    ev.terminal = true;
  }
  if (has_data) judge_data(data, ev);
  return ev;
}

void StreamProgress::see(const SseEvent& ev) {
  done_ = done_ || ev.done || ev.completed;
  choices_ |= ev.choices;
  finished_ |= ev.finished;
}

bool StreamProgress::complete() const {
  return done_ || (choices_ != 0 && (choices_ & ~finished_) == 0);
}

void SseScanner::feed(std::string_view bytes) {
  // Compact once the consumed prefix dominates, so the buffer stays about one event long.
  if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<SseEvent> SseScanner::next() {
  // An event ends at the first empty line; lines end in \n, \r\n or \r. The scan resumes where
  // the last call stopped (scanned_, line_start_ are relative to pos_).
  while (!oversized_) {
    std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
    size_t i = scanned_;
    size_t event_end = 0;
    while (i < rest.size() && event_end == 0) {
      i = line_end(rest, i);
      if (i == rest.size()) break;
      char c = rest[i];
      if (c == '\r' && i + 1 == rest.size()) break;  // a \r\n split across reads: wait for the rest
      size_t eol = (c == '\r' && rest[i + 1] == '\n') ? 2 : 1;
      if (i - line_start_ > max_line_) {
        oversized_ = true;
        return std::nullopt;
      }
      if (i == line_start_) event_end = i + eol;  // an empty line
      i += eol;
      line_start_ = i;
    }
    scanned_ = i;
    if (event_end == 0) {
      if (scanned_ - line_start_ > max_line_) oversized_ = true;
      return std::nullopt;
    }
    std::string_view raw = rest.substr(0, event_end);
    pos_ += raw.size();
    scanned_ = 0;
    line_start_ = 0;
    // A stray blank line between events.
    if (std::all_of(raw.begin(), raw.end(), [](char c) { return c == '\r' || c == '\n'; })) continue;
    return inspect_sse_event(raw);
  }
  return std::nullopt;
}

}  // namespace ballast
