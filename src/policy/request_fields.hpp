// The few request and response fields ballast reads; bodies are otherwise passed through untouched.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/usage.hpp"

namespace ballast {

struct RequestFields {
  std::string model;
  bool stream = false;
  std::optional<int64_t> max_tokens;  // max_tokens, max_completion_tokens or max_output_tokens
};

struct RequestFieldsResult {
  RequestFields fields;
  std::string error;  // empty on success; otherwise what is wrong, for a 400 invalid_request
};

// Reads model, stream and the output-token limit from a JSON request body.
RequestFieldsResult read_request_fields(std::string_view body);

// The `error.code` of an upstream's OpenAI-shaped error body ("context_length_exceeded",
// "content_filter"), or the top-level `code` of a bare error object; empty when there is none.
std::string upstream_error_code(std::string_view body);

// A non-streamed response body: is it JSON at all, and its `usage` (chat, completions, embeddings,
// responses) if it reports one.
struct ResponseBody {
  bool json = false;
  std::optional<Usage> usage;
};
ResponseBody read_response_body(std::string_view body);

}  // namespace ballast
