// The top-level members of a JSON object as byte ranges of the text, so that one value can be
// replaced while every other byte of the body passes through as the client sent it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ballast {

struct JsonMember {
  std::string key;       // unescaped
  bool escaped = false;  // the key was written with escapes ("mod\u0065l")
  size_t value_begin = 0;
  size_t value_end = 0;  // one past the value's last byte
};

// The members of the object `json`, in order (duplicates included); nothing when the text is not
// one well-formed JSON object.
// An escaped key is decoded with this thread's JSON parser (json_parser()): a document parsed with
// it before this call is not valid after it.
std::optional<std::vector<JsonMember>> top_level_members(std::string_view json);

// `body` with the value of every top-level "model" replaced by `model` (as a JSON string), or with
// it added first when there was none; every other byte unchanged. The body as it was when it is not
// a JSON object.
std::string with_model(std::string_view body, std::string_view model);

}  // namespace ballast
