#include "sim/text.hpp"

#include <array>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include <simdjson.h>

#include "common/json_writer.hpp"

namespace ballast::sim {

namespace {

constexpr std::array<std::string_view, 48> kWords = {
    "the",     "model",   "answers", "with",     "a",      "steady", "stream", "of",    "tokens", "while",
    "ballast", "keeps",   "every",   "request",  "within", "its",    "bound",  "and",   "no",     "client",
    "waits",   "forever", "because", "timeouts", "are",    "named",  "by",     "phase", "so",     "each",
    "failure", "says",    "which",   "hop",      "broke",  "how",    "to",     "fix",   "it",     "when",
    "load",    "rises",   "queue",   "drains",   "in",     "order",  "fairly", "today"};

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

TextGenerator::TextGenerator(uint64_t seed, uint64_t n) : rng_(seed * 0x9E3779B97F4A7C15ull + n) {}

std::string TextGenerator::next() {
  std::string_view w = kWords[rng_() % kWords.size()];
  std::string t = first_ ? std::string(w) : " " + std::string(w);
  if (first_) t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
  first_ = false;
  return t;
}

namespace {

std::string joined(const std::vector<std::string>& tokens) {
  std::string s;
  for (const auto& t : tokens) s += t;
  return s;
}

void usage_object(JsonWriter& w, const Answer& a, bool responses_api) {
  w.begin_object();
  if (responses_api) {
    w.field("input_tokens", a.prompt_tokens).field("output_tokens", a.completion_tokens);
  } else {
    w.field("prompt_tokens", a.prompt_tokens).field("completion_tokens", a.completion_tokens);
  }
  w.field("total_tokens", a.prompt_tokens + a.completion_tokens).end_object();
}

void response_object(JsonWriter& w, const Answer& a, std::string_view status, const std::string* text) {
  w.begin_object().field("id", fmt::format("resp_sim_{}", a.n)).field("object", "response");
  w.field("created_at", a.created).field("status", status).field("model", a.model);
  w.key("output").begin_array();
  if (text) {
    w.begin_object()
        .field("type", "message")
        .field("id", fmt::format("msg_sim_{}", a.n))
        .field("status", "completed");
    w.field("role", "assistant").key("content").begin_array();
    w.begin_object()
        .field("type", "output_text")
        .field("text", *text)
        .key("annotations")
        .begin_array()
        .end_array();
    w.end_object().end_array().end_object();
  }
  w.end_array();
  w.key("usage");
  if (text)
    usage_object(w, a, true);
  else
    w.null();
  w.end_object();
}

std::string sse(std::string_view json) {
  return fmt::format("data: {}\n\n", json);
}

std::string sse_named(std::string_view event, std::string_view json) {
  return fmt::format("event: {}\ndata: {}\n\n", event, json);
}

// {"id":…,"object":…,"created":…,"model":…,"choices":[ — what every chat and completion body opens with.
void open_envelope(JsonWriter& w, const Answer& a, std::string_view object) {
  std::string id = (a.kind == Answer::Kind::chat ? "chatcmpl-sim-" : "cmpl-sim-") + std::to_string(a.n);
  w.begin_object()
      .field("id", id)
      .field("object", object)
      .field("created", a.created)
      .field("model", a.model);
  w.key("choices").begin_array();
}

}  // namespace

std::string Answer::whole(const std::vector<std::string>& tokens) const {
  std::string text = joined(tokens);
  JsonWriter w;
  std::string_view finish = !tool.empty() ? "tool_calls" : length_limited ? "length" : "stop";
  switch (kind) {
    case Kind::chat:
      open_envelope(w, *this, "chat.completion");
      w.begin_object().field("index", 0).key("message").begin_object().field("role", "assistant");
      if (tool.empty()) {
        w.field("content", text);
      } else {
        w.key("content").null().key("tool_calls").begin_array().begin_object();
        w.field("id", fmt::format("call_sim_{}", n)).field("type", "function").key("function").begin_object();
        w.field("name", tool).field("arguments", text).end_object().end_object().end_array();
      }
      w.key("refusal").null().end_object();
      w.key("logprobs").null().field("finish_reason", finish).end_object().end_array();
      w.key("usage");
      usage_object(w, *this, false);
      w.field("system_fingerprint", "sim").end_object();
      break;
    case Kind::completion:
      open_envelope(w, *this, "text_completion");
      w.begin_object()
          .field("text", text)
          .field("index", 0)
          .key("logprobs")
          .null()
          .field("finish_reason", finish);
      w.end_object().end_array().key("usage");
      usage_object(w, *this, false);
      w.end_object();
      break;
    case Kind::response:
      response_object(w, *this, "completed", &text);
      break;
  }
  return w.take();
}

std::string Answer::stream_start() const {
  JsonWriter w;
  switch (kind) {
    case Kind::chat:
      open_envelope(w, *this, "chat.completion.chunk");
      w.begin_object().field("index", 0).key("delta").begin_object().field("role", "assistant");
      if (tool.empty()) {
        w.field("content", "");
      } else {
        // How OpenAI opens a streamed call: its id and name first, the arguments in the deltas after.
        w.key("content").null().key("tool_calls").begin_array().begin_object().field("index", 0);
        w.field("id", fmt::format("call_sim_{}", n)).field("type", "function").key("function").begin_object();
        w.field("name", tool).field("arguments", "").end_object().end_object().end_array();
      }
      w.end_object().key("logprobs").null().key("finish_reason").null().end_object().end_array().end_object();
      return sse(w.str());
    case Kind::completion:
      return "";
    case Kind::response:
      w.begin_object().field("type", "response.created").field("sequence_number", 0).key("response");
      response_object(w, *this, "in_progress", nullptr);
      w.end_object();
      return sse_named("response.created", w.str());
  }
  return "";
}

std::string Answer::stream_delta(std::string_view token) const {
  JsonWriter w;
  switch (kind) {
    case Kind::chat:
      open_envelope(w, *this, "chat.completion.chunk");
      w.begin_object().field("index", 0).key("delta").begin_object();
      if (tool.empty()) {
        w.field("content", token);
      } else {
        w.key("tool_calls").begin_array().begin_object().field("index", 0).key("function").begin_object();
        w.field("arguments", token).end_object().end_object().end_array();
      }
      w.end_object();
      w.key("logprobs").null().key("finish_reason").null().end_object().end_array().end_object();
      return sse(w.str());
    case Kind::completion:
      open_envelope(w, *this, "text_completion");
      w.begin_object()
          .field("text", token)
          .field("index", 0)
          .key("logprobs")
          .null()
          .key("finish_reason")
          .null();
      w.end_object().end_array().end_object();
      return sse(w.str());
    case Kind::response:
      w.begin_object()
          .field("type", "response.output_text.delta")
          .field("item_id", fmt::format("msg_sim_{}", n));
      w.field("output_index", 0).field("content_index", 0).field("delta", token).end_object();
      return sse_named("response.output_text.delta", w.str());
  }
  return "";
}

std::string Answer::stream_end(const std::vector<std::string>& tokens, bool include_usage) const {
  std::string_view finish = !tool.empty() ? "tool_calls" : length_limited ? "length" : "stop";
  std::string out;
  JsonWriter w;
  switch (kind) {
    case Kind::chat:
    case Kind::completion: {
      bool chat = kind == Kind::chat;
      std::string_view object = chat ? "chat.completion.chunk" : "text_completion";
      open_envelope(w, *this, object);
      w.begin_object().field("index", 0);
      if (chat)
        w.key("delta").begin_object().end_object();
      else
        w.field("text", "");
      w.key("logprobs").null().field("finish_reason", finish).end_object().end_array().end_object();
      out = sse(w.str());
      if (include_usage) {
        // The usage chunk of stream_options.include_usage: no choices, only usage.
        JsonWriter u;
        open_envelope(u, *this, object);
        u.end_array().key("usage");
        usage_object(u, *this, false);
        u.end_object();
        out += sse(u.str());
      }
      out += "data: [DONE]\n\n";
      return out;
    }
    case Kind::response: {
      std::string text = joined(tokens);
      w.begin_object()
          .field("type", "response.completed")
          .field("sequence_number", static_cast<int64_t>(tokens.size() + 1));
      w.key("response");
      response_object(w, *this, "completed", &text);
      w.end_object();
      return sse_named("response.completed", w.str());
    }
  }
  return out;
}

std::string tool_arguments(std::string_view parameters_json) {
  JsonWriter w;
  w.begin_object();
  simdjson::dom::parser parser;
  simdjson::dom::object properties;
  simdjson::padded_string padded(parameters_json);
  simdjson::dom::element schema;
  if (parser.parse(padded).get(schema) == simdjson::SUCCESS &&
      schema["properties"].get(properties) == simdjson::SUCCESS) {
    std::vector<std::string_view> names;
    simdjson::dom::array required;
    if (schema["required"].get(required) == simdjson::SUCCESS) {
      for (auto r : required) {
        std::string_view name;
        if (r.get(name) == simdjson::SUCCESS) names.push_back(name);
      }
    }
    if (names.empty()) {
      for (auto [name, unused] : properties) names.push_back(name);
    }
    for (std::string_view name : names) {
      std::string_view type;
      simdjson::dom::element property;
      if (properties[name].get(property) != simdjson::SUCCESS ||
          property["type"].get(type) != simdjson::SUCCESS)
        type = "string";
      w.key(name);
      if (type == "integer" || type == "number")
        w.value(1);
      else if (type == "boolean")
        w.value(true);
      else if (type == "array")
        w.begin_array().end_array();
      else if (type == "object")
        w.begin_object().end_object();
      else
        w.value("sim");
    }
  }
  w.end_object();
  return w.take();
}

std::vector<std::string> split_arguments(std::string_view arguments, size_t size) {
  std::vector<std::string> pieces;
  for (size_t at = 0; at < arguments.size(); at += size) pieces.emplace_back(arguments.substr(at, size));
  if (pieces.empty()) pieces.emplace_back();
  return pieces;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8 |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], kTable[(v >> 6) & 63], kTable[v & 63]};
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v =
        static_cast<uint8_t>(bytes[i]) << 16 | (rest == 2 ? static_cast<uint8_t>(bytes[i + 1]) << 8 : 0);
    out += {kTable[v >> 18], kTable[(v >> 12) & 63], rest == 2 ? kTable[(v >> 6) & 63] : '=', '='};
  }
  return out;
}

std::string embeddings_body(std::string_view model, const std::vector<std::string>& inputs, int dimensions,
                            bool base64, uint64_t seed) {
  JsonWriter w;
  w.begin_object().field("object", "list").key("data").begin_array();
  int64_t tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    tokens += std::max<int64_t>(1, static_cast<int64_t>(inputs[i].size() / 4));
    // A unit vector that depends only on the text and the seed: equal texts embed equally.
    std::mt19937_64 rng(fnv1a(inputs[i], seed ^ 0x5bd1e995ull));
    std::vector<float> v(static_cast<size_t>(dimensions));
    double norm = 0;
    for (auto& x : v) {
      x = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53 * 2.0 - 1.0);
      norm += static_cast<double>(x) * x;
    }
    norm = std::sqrt(norm);
    for (auto& x : v) x = static_cast<float>(x / norm);
    w.begin_object().field("object", "embedding").field("index", static_cast<int64_t>(i)).key("embedding");
    if (base64) {
      std::string bytes(v.size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), v.data(), bytes.size());
      w.value(base64_encode(bytes));
    } else {
      w.begin_array();
      for (float x : v) w.value(static_cast<double>(x));
      w.end_array();
    }
    w.end_object();
  }
  w.end_array().field("model", model).key("usage").begin_object();
  w.field("prompt_tokens", tokens).field("total_tokens", tokens).end_object().end_object();
  return w.take();
}

}  // namespace ballast::sim
