// What the simulator accepts in a request body. Every field it reads is checked before anything is
// reserved for the request (a rate-limit charge, a place in the queue, a generation slot), and a
// bad one is refused as OpenAI refuses it: 400 {"error": {message, type, param, code}}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ballast::sim {

enum class Op { chat, completions, embeddings, responses, models };

// The most output tokens a request may ask for (max_tokens, max_completion_tokens,
// max_output_tokens). More is refused, as OpenAI refuses a limit above the model's, rather than
// clamped: the answer's length and the --tpm charge then always follow what was asked. One million
// is above every current model's output limit, and is --tokens' own maximum.
inline constexpr int64_t kMaxOutputTokens = 1'000'000;
inline constexpr int64_t kMaxChoices = 128;      // n, bounded as OpenAI bounds it
inline constexpr int64_t kMaxDimensions = 4096;  // embeddings' dimensions

// A request as the simulator answers it.
struct SimRequest {
  std::string model;
  bool stream = false;
  std::optional<int64_t> max_tokens;  // max_completion_tokens, max_tokens or max_output_tokens
  bool include_usage = false;         // stream_options.include_usage
  std::vector<std::string> inputs;    // embeddings
  bool base64 = false;                // embeddings' encoding_format
  int dimensions = 8;
  // A chat request offering tools (tool_choice not "none", the last message not a tool's result):
  // the function the answer calls and the arguments it passes.
  std::string tool;
  std::string tool_arguments;
};

// OpenAI's error fields; an empty param or code is null.
struct RequestError {
  std::string message;
  std::string param;
  std::string code;
};

struct RequestCheck {
  std::optional<SimRequest> request;
  RequestError error;  // when there is no request
};

// Reads and checks the body of a request for `op` (`azure`: the deployment names the model).
RequestCheck check_request(Op op, bool azure, std::string_view body);

}  // namespace ballast::sim
