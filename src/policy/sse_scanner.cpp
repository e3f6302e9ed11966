#include "policy/sse_scanner.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

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

// What one chat or legacy completions choice says, read in one pass over its members (and its
// delta's): each key is compared once, not looked up member by member. As with a lookup, the first
// of a repeated key counts.
struct ChoiceFacts {
  uint64_t bit = 1;       // 1 << index (indices from 63 up share bit 63)
  bool finished = false;  // a finish_reason that is not null
  // Carries content: text, a tool or function call, a refusal, reasoning text, or a finish. A
  // role-only first chunk does not.
  bool content = false;
};

ChoiceFacts read_choice(simdjson::dom::element choice) {
  ChoiceFacts f;
  simdjson::dom::object c;
  if (choice.get(c) != simdjson::SUCCESS) return f;
  bool seen_index = false, seen_finish = false, seen_text = false, seen_delta = false;
  for (auto [key, value] : c) {
    if (key == "index" && !seen_index) {
      seen_index = true;
      int64_t index = 0;
      if (value.get(index) != simdjson::SUCCESS || index < 0) index = 0;
      f.bit = uint64_t{1} << std::min<int64_t>(index, 63);
    } else if (key == "finish_reason" && !seen_finish) {
      seen_finish = true;
      f.finished = !value.is_null();
    } else if (key == "text" && !seen_text) {
      seen_text = true;
      if (non_empty_string(value)) f.content = true;
    } else if (key == "delta" && !seen_delta) {
      seen_delta = true;
      simdjson::dom::object delta;
      if (value.get(delta) != simdjson::SUCCESS) continue;
      // Text counts when it is a non-empty string; a tool or function call when it is not null.
      struct Key {
        std::string_view name;
        bool text;
      };
      static constexpr Key kKeys[] = {{"content", true},   {"refusal", true},     {"reasoning_content", true},
                                      {"reasoning", true}, {"tool_calls", false}, {"function_call", false}};
      uint8_t seen = 0;
      for (auto [k, v] : delta) {
        for (size_t i = 0; i < std::size(kKeys); ++i) {
          if (k != kKeys[i].name || (seen & (1U << i))) continue;
          seen |= 1U << i;
          if (kKeys[i].text ? non_empty_string(v) : !v.is_null()) f.content = true;
        }
      }
    }
  }
  if (f.finished) f.content = true;
  return f;
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
  // Empty data is not JSON (and may point nowhere: simdjson is not handed a null pointer).
  if (data.empty() || json_parser().parse(data.data(), data.size()).get(doc) != simdjson::SUCCESS) {
    ev.malformed = true;
    return;
  }
  simdjson::dom::object obj;
  if (doc.get(obj) != simdjson::SUCCESS) return;
  // The members this judges by, found in one pass; the first of a repeated key counts.
  std::optional<simdjson::dom::element> error, usage, choices, kind;
  for (auto [key, value] : obj) {
    if (key == "error") {
      if (!error) error = value;
    } else if (key == "usage") {
      if (!usage) usage = value;
    } else if (key == "choices") {
      if (!choices) choices = value;
    } else if (key == "type") {
      if (!kind) kind = value;
    }
  }
  if (error && !error->is_null()) {
    ev.upstream_error = true;
    ev.terminal = true;
    ev.error_message = error_words(*error);
    ev.error_code = error_code(*error);
    return;
  }
  if (usage && !usage->is_null()) ev.usage = usage_from(*usage);
  simdjson::dom::array list;
  if (choices && choices->get(list) == simdjson::SUCCESS) {
    for (auto choice : list) {
      ChoiceFacts f = read_choice(choice);
      ev.choices |= f.bit;
      if (f.finished) ev.finished |= f.bit;
      if (f.content) ev.has_content = true;
    }
    return;
  }
  // The Responses API: typed events; deltas carry content, three events end the stream.
  std::string_view type;
  if (!kind || kind->get(type) != simdjson::SUCCESS) return;
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
    simdjson::dom::element u;
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
      // A \r last of all may be half of a \r\n split across reads: wait for the rest, unless the
      // stream has ended.
      if (c == '\r' && i + 1 == rest.size() && !ended_) break;
      size_t eol = (c == '\r' && i + 1 < rest.size() && rest[i + 1] == '\n') ? 2 : 1;
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
