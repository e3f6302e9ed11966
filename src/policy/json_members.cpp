#include "policy/json_members.hpp"

#include "common/json_writer.hpp"
#include "policy/json_read.hpp"

namespace ballast {

namespace {

// A small cursor over JSON text that steps over whole values without building them. Its checks
// are structural only; the body has passed simdjson's full validation before this reads it.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_space();
    return i_ == s_.size();
  }
  size_t pos() const { return i_; }

  // A string starting at the cursor, quotes included; false if there is none.
  bool string(std::string_view* raw) {
    skip_space();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    size_t start = i_++;
    while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
    if (i_ >= s_.size()) return false;
    ++i_;
    *raw = s_.substr(start, i_ - start);
    return true;
  }

  // Any value: a string, an object or array (brackets balanced, strings respected), or a scalar.
  bool value() {
    skip_space();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    std::string_view ignored;
    if (c == '"') return string(&ignored);
    if (c == '{' || c == '[') {
      int depth = 0;
      while (i_ < s_.size()) {
        char d = s_[i_];
        if (d == '"') {
          if (!string(&ignored)) return false;
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          --depth;
          if (depth == 0) {
            ++i_;
            return true;
          }
        }
        ++i_;
      }
      return false;
    }
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']' && s_[i_] != ' ' &&
           s_[i_] != '\t' && s_[i_] != '\n' && s_[i_] != '\r')
      ++i_;
    return i_ > start;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// A key as the parser reads it: escapes ("mod\u0065l") decoded, so none can hide a "model".
std::string unescape_key(std::string_view raw) {
  std::string_view inner = raw.substr(1, raw.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return std::string(inner);
  simdjson::dom::element e;
  std::string_view decoded;
  if (json_parser().parse(raw.data(), raw.size()).get(e) != simdjson::SUCCESS ||
      e.get(decoded) != simdjson::SUCCESS)
    return std::string(inner);
  return std::string(decoded);
}

}  // namespace

std::optional<std::vector<JsonMember>> top_level_members(std::string_view json) {
  Scanner s(json);
  if (!s.eat('{')) return std::nullopt;
  std::vector<JsonMember> members;
  if (s.eat('}')) return s.at_end() ? std::optional(members) : std::nullopt;
  for (;;) {
    std::string_view raw;
    if (!s.string(&raw) || !s.eat(':')) return std::nullopt;
    s.skip_space();
    JsonMember m;
    m.key = unescape_key(raw);
    m.escaped = raw.find('\\') != std::string_view::npos;
    m.value_begin = s.pos();
    if (!s.value()) return std::nullopt;
    m.value_end = s.pos();
    members.push_back(std::move(m));
    if (s.eat(',')) continue;
    if (s.eat('}')) break;
    return std::nullopt;
  }
  if (!s.at_end()) return std::nullopt;
  return members;
}

std::string with_model(std::string_view body, std::string_view model) {
  auto members = top_level_members(body);
  if (!members) return std::string(body);
  std::string quoted;
  append_json_string(quoted, model);
  std::string out;
  out.reserve(body.size() + quoted.size());
  size_t copied = 0;
  for (const auto& m : *members) {
    if (m.key != "model") continue;
    out.append(body.substr(copied, m.value_begin - copied)).append(quoted);
    copied = m.value_end;
  }
  if (copied == 0) {
    // No model yet: it becomes the first member.
    const size_t open = body.find('{') + 1;
    out.append(body.substr(0, open)).append("\"model\":").append(quoted);
    if (!members->empty()) out.push_back(',');
    copied = open;
  }
  out.append(body.substr(copied));
  return out;
}

}  // namespace ballast
