// Token counts as providers report them in `usage`.
#pragma once

#include <cstdint>
#include <optional>

namespace ballast {

struct Usage {
  int64_t prompt_tokens = 0;      // prompt_tokens, or input_tokens in the Responses API
  int64_t completion_tokens = 0;  // completion_tokens, or output_tokens
  int64_t total_tokens = 0;
};

}  // namespace ballast
