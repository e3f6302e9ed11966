// What the simulator says: deterministic tokens and the OpenAI-shaped bodies and stream events
// that carry them (chat completions, legacy completions, the Responses API, embeddings).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ballast::sim {

// Tokens for request number `n`: the same words for the same seed and n, whatever the arrival order.
class TextGenerator {
 public:
  TextGenerator(uint64_t seed, uint64_t n);
  std::string next();

 private:
  std::mt19937_64 rng_;
  bool first_ = true;
};

struct Answer {
  enum class Kind { chat, completion, response };
  Kind kind;
  std::string model;
  uint64_t n;  // request number, for ids
  int64_t created;
  int64_t prompt_tokens;
  int completion_tokens;
  bool length_limited;  // stopped by the request's max_tokens
  // A chat answer that calls this function instead of saying something; its "tokens" are then the
  // pieces of the call's JSON arguments.
  std::string tool;

  std::string whole(const std::vector<std::string>& tokens) const;
  std::string stream_start() const;
  std::string stream_delta(std::string_view token) const;
  std::string stream_end(const std::vector<std::string>& tokens, bool include_usage) const;
};

// The arguments a simulated call of a function with this JSON-schema `parameters` object passes:
// every required property (every property when none is marked), with a value of its type.
std::string tool_arguments(std::string_view parameters_json);

// `arguments` in pieces of at most `size` bytes, as a stream carries them.
std::vector<std::string> split_arguments(std::string_view arguments, size_t size = 8);

std::string embeddings_body(std::string_view model, const std::vector<std::string>& inputs, int dimensions,
                            bool base64, uint64_t seed);

std::string base64_encode(std::string_view bytes);

}  // namespace ballast::sim
