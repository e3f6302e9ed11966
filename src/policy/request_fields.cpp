#include "policy/request_fields.hpp"

#include "policy/json_members.hpp"
#include "policy/json_read.hpp"

namespace ballast {

simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser p;
  return p;
}

std::optional<Usage> usage_from(simdjson::dom::element u) {
  if (!u.is_object()) return std::nullopt;
  Usage usage;
  auto get = [&](const char* a, const char* b) -> int64_t {
    int64_t v = 0;
    if (u[a].get(v) == simdjson::SUCCESS) return v;
    if (b && u[b].get(v) == simdjson::SUCCESS) return v;
    return 0;
  };
  usage.prompt_tokens = get("prompt_tokens", "input_tokens");
  usage.completion_tokens = get("completion_tokens", "output_tokens");
  usage.total_tokens = get("total_tokens", nullptr);
  if (usage.total_tokens == 0) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return usage;
}

RequestFieldsResult read_request_fields(std::string_view body) {
  RequestFieldsResult r;
  // Done before the parse below, whose document would not survive it (see top_level_members).
  // A key given twice means one thing to ballast's parser and maybe another to the upstream's (the
  // first, or the last): a client could route or authorize as one model and be served as another.
  static constexpr std::string_view kReadOnce[] = {"model", "stream", "max_tokens", "max_completion_tokens",
                                                   "max_output_tokens"};
  if (auto members = top_level_members(body)) {
    for (auto key : kReadOnce) {
      int seen = 0;
      bool escaped = false;
      for (const auto& m : *members) {
        seen += m.key == key ? 1 : 0;
        escaped = escaped || (m.key == key && m.escaped);
      }
      if (seen > 1) {
        r.error = "the request body has '" + std::string(key) + "' more than once: send it once";
        return r;
      }
      // Parsers disagree on escaped keys (some match "mod\u0065l" to "model", some do not): the
      // keys ballast reads are refused written that way, so every reader sees the same request.
      if (escaped) {
        r.error = "the request body writes the key '" + std::string(key) + "' with escapes: write it plainly";
        return r;
      }
    }
  }
  simdjson::dom::element doc;
  if (auto err = json_parser().parse(body.data(), body.size()).get(doc); err) {
    r.error = std::string("the request body is not valid JSON: ") + simdjson::error_message(err);
    return r;
  }
  if (!doc.is_object()) {
    r.error = "the request body must be a JSON object";
    return r;
  }
  simdjson::dom::element model;
  if (doc["model"].get(model) == simdjson::SUCCESS) {
    std::string_view m;
    if (model.get(m) != simdjson::SUCCESS) {
      r.error = "'model' must be a string";
      return r;
    }
    r.fields.model = std::string(m);
  }
  simdjson::dom::element stream;
  if (doc["stream"].get(stream) == simdjson::SUCCESS && !stream.is_null()) {
    bool s = false;
    if (stream.get(s) != simdjson::SUCCESS) {
      r.error = "'stream' must be true or false";
      return r;
    }
    r.fields.stream = s;
  }
  // The output allowance is charged to token limits before the answer comes: it must be a number
  // the limiters can do arithmetic on.
  constexpr int64_t kMaxTokens = int64_t{1} << 31;
  for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
    simdjson::dom::element e;
    if (doc[key].get(e) != simdjson::SUCCESS || e.is_null()) continue;
    int64_t v = 0;
    if (e.get(v) != simdjson::SUCCESS || v < 0 || v >= kMaxTokens) {
      r.error = "'" + std::string(key) + "' must be a whole number from 0 to 2147483647";
      return r;
    }
    if (!r.fields.max_tokens) r.fields.max_tokens = v;
  }
  return r;
}

std::string upstream_error_code(std::string_view body) {
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return {};
  std::string_view code;
  if (doc["error"]["code"].get(code) == simdjson::SUCCESS) return std::string(code);
  if (doc["code"].get(code) == simdjson::SUCCESS) return std::string(code);
  return {};
}

ResponseBody read_response_body(std::string_view body) {
  ResponseBody r;
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return r;
  r.json = true;
  simdjson::dom::element u;
  // Chat and completions carry usage at the top; the Responses API inside "response".
  if (doc["usage"].get(u) == simdjson::SUCCESS || doc["response"]["usage"].get(u) == simdjson::SUCCESS)
    r.usage = usage_from(u);
  return r;
}

}  // namespace ballast
