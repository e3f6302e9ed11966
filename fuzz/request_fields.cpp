// A request body as a client may send it, read the ways ballast reads one: the fields it routes on
// (policy/request_fields), the top-level members and the model rewrite (policy/json_members), and
// the response-side readers on the same bytes. A separate simdjson parser is the reference: any
// JSON object it accepts must split into the same members, in order, and a rewrite must stay a JSON
// object that changed the model's values (or added the model first, when there was none) and
// nothing else.
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "policy/json_members.hpp"
#include "policy/request_fields.hpp"

namespace {

// Not the thread's json_parser(): top_level_members may reuse that one.
simdjson::dom::parser& reference() {
  static simdjson::dom::parser p;
  return p;
}

// The top-level keys of `text` in order, as the reference reads them; false if it is no JSON object.
bool reference_keys(std::string_view text, std::vector<std::string>& keys) {
  simdjson::dom::object obj;
  if (reference().parse(text.data(), text.size()).get(obj) != simdjson::SUCCESS) return false;
  for (auto field : obj) keys.emplace_back(field.key);
  return true;
}

bool valid_json(std::string_view text) {
  simdjson::dom::element e;
  return reference().parse(text.data(), text.size()).get(e) == simdjson::SUCCESS;
}

std::string_view value_of(std::string_view text, const ballast::JsonMember& m) {
  return text.substr(m.value_begin, m.value_end - m.value_begin);
}

void check_rewrite(std::string_view body, const std::vector<ballast::JsonMember>& before,
                   std::string_view model) {
  std::string out = ballast::with_model(body, model);
  std::vector<std::string> keys;
  FUZZ_CHECK(reference_keys(out, keys));
  auto after = ballast::top_level_members(out);
  auto is_the_model = [&](const ballast::JsonMember& a) {
    simdjson::dom::element e;
    std::string_view written;
    std::string_view text = value_of(out, a);
    return reference().parse(text.data(), text.size()).get(e) == simdjson::SUCCESS &&
           e.get(written) == simdjson::SUCCESS && written == model;
  };
  // A body without a model gets one, first; every other member stays as it was, in order.
  const bool had_model = std::any_of(before.begin(), before.end(),
                                     [](const ballast::JsonMember& m) { return m.key == "model"; });
  const size_t added = had_model ? 0 : 1;
  FUZZ_CHECK(after && after->size() == before.size() + added);
  if (!had_model) FUZZ_CHECK((*after)[0].key == "model" && keys[0] == "model" && is_the_model((*after)[0]));
  for (size_t i = 0; i < before.size(); ++i) {
    const auto& b = before[i];
    const auto& a = (*after)[i + added];
    FUZZ_CHECK(a.key == b.key && keys[i + added] == b.key);
    if (b.key != "model") {
      FUZZ_CHECK(value_of(out, a) == value_of(body, b));
      continue;
    }
    FUZZ_CHECK(is_the_model(a));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  std::vector<std::string> keys;
  bool object = reference_keys(body, keys);
  auto members = ballast::top_level_members(body);
  if (object) {
    // Whatever a JSON parser takes for an object, the member scan must read alike: the duplicate
    // and escaped-key checks depend on it.
    FUZZ_CHECK(members.has_value());
    FUZZ_CHECK(members->size() == keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      FUZZ_CHECK((*members)[i].key == keys[i]);
      FUZZ_CHECK(valid_json(value_of(body, (*members)[i])));
    }
  }
  if (members) {
    size_t end = 0;
    for (const auto& m : *members) {
      FUZZ_CHECK(m.value_begin >= end && m.value_begin < m.value_end && m.value_end <= body.size());
      end = m.value_end;
    }
  }

  auto fields = ballast::read_request_fields(body);
  if (fields.error.empty()) {
    FUZZ_CHECK(object);
    if (fields.fields.max_tokens) {
      FUZZ_CHECK(*fields.fields.max_tokens >= 0 && *fields.fields.max_tokens < (int64_t{1} << 31));
    }
    // Read once: the model routed on is the body's only "model".
    FUZZ_CHECK(std::count(keys.begin(), keys.end(), "model") <= 1);
  }

  if (!members) {
    FUZZ_CHECK(ballast::with_model(body, "gpt-4o-mini") == body);
  } else if (object) {
    check_rewrite(body, *members, "gpt-4o-mini");
    check_rewrite(body, *members, "");
    check_rewrite(body, *members, "we\"ird\\ \n\x01 \xc3\xa9 model");
  }

  bool json = valid_json(body);
  FUZZ_CHECK(ballast::read_response_body(body).json == json);
  std::string code = ballast::upstream_error_code(body);
  FUZZ_CHECK(json || code.empty());
  return 0;
}
