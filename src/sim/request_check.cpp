#include "sim/request_check.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "policy/json_read.hpp"
#include "policy/request_fields.hpp"
#include "sim/text.hpp"

namespace ballast::sim {

namespace {

std::string_view type_name(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
      return "an integer";
    case simdjson::dom::element_type::DOUBLE:
      return "a decimal number";
    case simdjson::dom::element_type::STRING:
      return "a string";
    case simdjson::dom::element_type::BOOL:
      return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

// The first problem found; each check returns false once there is one.
struct Problems {
  RequestError error;

  bool fail(std::string message, std::string_view param, std::string_view code) {
    error = {std::move(message), std::string(param), std::string(code)};
    return false;
  }
  bool missing(std::string_view param) {
    return fail(fmt::format("Missing required parameter: '{}'.", param), param, "missing_required_parameter");
  }
  bool wrong_type(std::string_view param, std::string_view expected, simdjson::dom::element got) {
    return fail(fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param, expected,
                            type_name(got)),
                param, "invalid_type");
  }
  bool bad_value(std::string_view param, std::string_view value, std::string_view supported) {
    return fail(
        fmt::format("Invalid value: '{}'. Supported values are: {}.", bounded_echo(value, 64), supported),
        param, "invalid_value");
  }
};

// The member `key` of `obj`, when it is there and not null.
bool member(simdjson::dom::object obj, std::string_view key, simdjson::dom::element& out) {
  return obj[key].get(out) == simdjson::SUCCESS && !out.is_null();
}

// An optional whole number from `min` to `max`. `output_limit`: a token limit, refused above `max`
// in the words OpenAI uses for a limit above the model's.
bool whole_number(simdjson::dom::object obj, std::string_view key, int64_t min, int64_t max,
                  std::optional<int64_t>& out, Problems& p, bool output_limit = false) {
  simdjson::dom::element e;
  if (!member(obj, key, e)) return true;
  auto above = [&](std::string_view shown) {
    if (output_limit) {
      return p.fail(fmt::format("{} is too large: {}. This model supports at most {} completion tokens, "
                                "whereas you provided {}.",
                                key, shown, max, shown),
                    key, "invalid_value");
    }
    return p.fail(fmt::format("Invalid '{}': integer above maximum value. Expected a value <= {}, but got {} "
                              "instead.",
                              key, max, shown),
                  key, "integer_above_max_value");
  };
  int64_t v = 0;
  if (e.get(v) != simdjson::SUCCESS) {
    uint64_t big = 0;
    // Above INT64_MAX: still a whole number, and far above any bound.
    if (e.get(big) == simdjson::SUCCESS) return above(std::to_string(big));
    return p.wrong_type(key, "an integer", e);
  }
  if (v < min) {
    return p.fail(fmt::format("Invalid '{}': integer below minimum value. Expected a value >= {}, but got {} "
                              "instead.",
                              key, min, v),
                  key, "integer_below_min_value");
  }
  if (v > max) return above(std::to_string(v));
  out = v;
  return true;
}

bool boolean(simdjson::dom::object obj, std::string_view key, std::string_view param, bool& out,
             Problems& p) {
  simdjson::dom::element e;
  if (!member(obj, key, e)) return true;
  if (e.get(out) != simdjson::SUCCESS) return p.wrong_type(param, "a boolean", e);
  return true;
}

bool check_messages(simdjson::dom::object doc, Problems& p) {
  simdjson::dom::element e;
  if (doc["messages"].get(e) != simdjson::SUCCESS) return p.missing("messages");
  simdjson::dom::array messages;
  if (e.get(messages) != simdjson::SUCCESS) return p.wrong_type("messages", "an array", e);
  // An empty array is answered, where OpenAI refuses it (empty_array): vLLM answers it, and a
  // caller testing timeouts or faults need not write a conversation.
  size_t i = 0;
  for (simdjson::dom::element m : messages) {
    const std::string at = fmt::format("messages[{}]", i++);
    simdjson::dom::object message;
    if (m.get(message) != simdjson::SUCCESS) return p.wrong_type(at, "an object", m);
    simdjson::dom::element role_e;
    if (!member(message, "role", role_e)) return p.missing(at + ".role");
    std::string_view role;
    if (role_e.get(role) != simdjson::SUCCESS) return p.wrong_type(at + ".role", "a string", role_e);
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool" &&
        role != "function") {
      return p.bad_value(at + ".role", role,
                         "'system', 'assistant', 'user', 'function', 'tool', and 'developer'");
    }
    simdjson::dom::element content;
    if (member(message, "content", content)) {
      if (!content.is_string() && !content.is_array())
        return p.wrong_type(at + ".content", "one of a string or array of objects", content);
    } else if (role == "system" || role == "developer" || role == "user") {
      // An assistant message may carry tool calls instead, a tool or function message a null result.
      return p.missing(at + ".content");
    }
  }
  return true;
}

bool check_tools(simdjson::dom::object doc, Problems& p) {
  simdjson::dom::element e;
  if (member(doc, "tools", e)) {
    simdjson::dom::array tools;
    if (e.get(tools) != simdjson::SUCCESS) return p.wrong_type("tools", "an array", e);
    size_t i = 0;
    for (simdjson::dom::element t : tools) {
      const std::string at = fmt::format("tools[{}]", i++);
      simdjson::dom::object tool;
      if (t.get(tool) != simdjson::SUCCESS) return p.wrong_type(at, "an object", t);
      simdjson::dom::element type_e;
      if (!member(tool, "type", type_e)) return p.missing(at + ".type");
      std::string_view type;
      if (type_e.get(type) != simdjson::SUCCESS) return p.wrong_type(at + ".type", "a string", type_e);
      if (type != "function") continue;  // other kinds (custom tools) are offered, never called
      simdjson::dom::element fn_e;
      if (!member(tool, "function", fn_e)) return p.missing(at + ".function");
      simdjson::dom::object fn;
      if (fn_e.get(fn) != simdjson::SUCCESS) return p.wrong_type(at + ".function", "an object", fn_e);
      simdjson::dom::element name;
      if (!member(fn, "name", name)) return p.missing(at + ".function.name");
      if (!name.is_string()) return p.wrong_type(at + ".function.name", "a string", name);
      simdjson::dom::element parameters;
      if (member(fn, "parameters", parameters) && !parameters.is_object())
        return p.wrong_type(at + ".function.parameters", "an object", parameters);
    }
  }
  if (member(doc, "tool_choice", e)) {
    std::string_view choice;
    simdjson::dom::object named;
    if (e.get(choice) == simdjson::SUCCESS) {
      if (choice != "none" && choice != "auto" && choice != "required")
        return p.bad_value("tool_choice", choice, "'none', 'auto', and 'required'");
    } else if (e.get(named) == simdjson::SUCCESS) {
      simdjson::dom::element name;
      if (named["function"]["name"].get(name) == simdjson::SUCCESS && !name.is_string())
        return p.wrong_type("tool_choice.function.name", "a string", name);
    } else {
      return p.wrong_type("tool_choice", "one of a string or object", e);
    }
  }
  return true;
}

// Which offered tool a chat request's answer calls: the one tool_choice names, else the first.
// None when tool_choice is "none", or when the last message is a tool's result (the model then
// answers in words, as agents expect).
void choose_tool(simdjson::dom::object doc, SimRequest& r) {
  simdjson::dom::array tools;
  if (doc["tools"].get(tools) != simdjson::SUCCESS || tools.size() == 0) return;
  std::string_view choice;
  if (doc["tool_choice"].get(choice) == simdjson::SUCCESS && choice == "none") return;
  simdjson::dom::array messages;
  if (doc["messages"].get(messages) == simdjson::SUCCESS && messages.size() > 0) {
    std::string_view role;
    if (messages.at(messages.size() - 1)["role"].get(role) == simdjson::SUCCESS && role == "tool") return;
  }
  std::string_view named;
  if (doc["tool_choice"]["function"]["name"].get(named) != simdjson::SUCCESS) named = {};
  for (simdjson::dom::element tool : tools) {
    std::string_view name;
    if (tool["function"]["name"].get(name) != simdjson::SUCCESS) continue;
    if (!named.empty() && name != named) continue;
    r.tool = name;
    simdjson::dom::element parameters;
    r.tool_arguments = tool["function"]["parameters"].get(parameters) == simdjson::SUCCESS
                           ? sim::tool_arguments(simdjson::to_string(parameters))
                           : "{}";
    return;
  }
}

bool check_embeddings(simdjson::dom::object doc, SimRequest& r, Problems& p) {
  simdjson::dom::element input;
  if (!member(doc, "input", input)) return p.missing("input");
  std::string_view one;
  simdjson::dom::array many;
  if (input.get(one) == simdjson::SUCCESS) {
    r.inputs.emplace_back(one);
  } else if (input.get(many) == simdjson::SUCCESS) {
    if (many.size() == 0) {
      return p.fail(
          "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty "
          "array instead.",
          "input", "empty_array");
    }
    size_t i = 0;
    for (simdjson::dom::element item : many) {
      // Strings, or token ids: one array of integers, or an array of them.
      if (item.get(one) == simdjson::SUCCESS)
        r.inputs.emplace_back(one);
      else if (item.is_int64() || item.is_array())
        r.inputs.emplace_back(simdjson::to_string(item));
      else
        return p.wrong_type(fmt::format("input[{}]", i), "one of a string or array of integers", item);
      ++i;
    }
  } else {
    return p.wrong_type("input", "one of a string or array", input);
  }
  simdjson::dom::element format;
  if (member(doc, "encoding_format", format)) {
    std::string_view f;
    if (format.get(f) != simdjson::SUCCESS) return p.wrong_type("encoding_format", "a string", format);
    if (f != "float" && f != "base64") return p.bad_value("encoding_format", f, "'float' and 'base64'");
    r.base64 = f == "base64";
  }
  std::optional<int64_t> dimensions;
  if (!whole_number(doc, "dimensions", 1, kMaxDimensions, dimensions, p)) return false;
  if (dimensions) r.dimensions = static_cast<int>(*dimensions);
  return true;
}

bool check_fields(Op op, bool azure, simdjson::dom::object doc, SimRequest& r, Problems& p) {
  simdjson::dom::element e;
  if (member(doc, "model", e)) {
    std::string_view model;
    if (e.get(model) != simdjson::SUCCESS) return p.wrong_type("model", "a string", e);
    r.model = model;
  }
  // OpenAI's words, with no param or code; an Azure deployment names the model.
  if (!azure && r.model.empty()) return p.fail("you must provide a model parameter", "", "");
  if (op == Op::embeddings) return check_embeddings(doc, r, p);
  if (!boolean(doc, "stream", "stream", r.stream, p)) return false;

  if (op == Op::chat || op == Op::completions) {
    if (member(doc, "stream_options", e)) {
      simdjson::dom::object options;
      if (e.get(options) != simdjson::SUCCESS) return p.wrong_type("stream_options", "an object", e);
      if (!r.stream)
        return p.fail("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      "stream_options", "");
      if (!boolean(options, "include_usage", "stream_options.include_usage", r.include_usage, p))
        return false;
    }
    std::optional<int64_t> n;
    if (!whole_number(doc, "n", 1, kMaxChoices, n, p)) return false;
  }
  if (op == Op::chat) {
    if (!check_messages(doc, p) || !check_tools(doc, p)) return false;
    // Either limit; max_completion_tokens is read first, as the gateway reads it.
    std::optional<int64_t> limit;
    if (!whole_number(doc, "max_completion_tokens", 1, kMaxOutputTokens, limit, p, true)) return false;
    std::optional<int64_t> legacy;
    if (!whole_number(doc, "max_tokens", 1, kMaxOutputTokens, legacy, p, true)) return false;
    r.max_tokens = limit ? limit : legacy;
    choose_tool(doc, r);
  } else if (op == Op::completions) {
    if (!member(doc, "prompt", e)) return p.missing("prompt");
    if (!e.is_string() && !e.is_array()) return p.wrong_type("prompt", "one of a string or array", e);
    // 0 is allowed here, as OpenAI allows it: with echo, only the prompt comes back.
    if (!whole_number(doc, "max_tokens", 0, kMaxOutputTokens, r.max_tokens, p, true)) return false;
  } else if (op == Op::responses) {
    if (member(doc, "input", e) && !e.is_string() && !e.is_array())
      return p.wrong_type("input", "one of a string or array", e);
    if (member(doc, "tools", e) && !e.is_array()) return p.wrong_type("tools", "an array", e);
    // The Responses API's minimum is 16.
    if (!whole_number(doc, "max_output_tokens", 16, kMaxOutputTokens, r.max_tokens, p, true)) return false;
  }
  return true;
}

}  // namespace

RequestCheck check_request(Op op, bool azure, std::string_view body) {
  RequestCheck out;
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) {
    out.error.message =
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
        "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
        "JSON. If you have trouble figuring out how to fix this, please contact us through our help center "
        "at help.openai.com.)";
    return out;
  }
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) {
    out.error = {fmt::format("Invalid type for the request body: expected an object, but got {} instead.",
                             type_name(doc)),
                 "", "invalid_type"};
    return out;
  }
  SimRequest r;
  Problems problems;
  if (!check_fields(op, azure, object, r, problems)) {
    out.error = std::move(problems.error);
    return out;
  }
  // Last, as it parses the body again (the document above is then gone): what the gateway refuses
  // in a body (a key it reads given twice, or written with escapes), the simulator refuses too.
  auto shared = read_request_fields(body);
  if (!shared.error.empty()) {
    out.error.message = std::move(shared.error);
    return out;
  }
  out.request = std::move(r);
  return out;
}

}  // namespace ballast::sim
