#include "sim/request_check.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ballast::sim {
namespace {

constexpr std::string_view kHi = R"("messages":[{"role":"user","content":"hi"}])";

std::string chat(std::string_view extra) {
  std::string body = R"({"model":"m",)" + std::string(kHi);
  if (!extra.empty()) body += "," + std::string(extra);
  return body + "}";
}

RequestError refusal(Op op, std::string_view body, bool azure = false) {
  auto r = check_request(op, azure, body);
  EXPECT_FALSE(r.request) << body;
  return r.error;
}

void expect_refused(Op op, std::string_view body, std::string_view param, std::string_view code,
                    std::string_view message = {}) {
  RequestError e = refusal(op, body);
  EXPECT_EQ(e.param, param) << body;
  EXPECT_EQ(e.code, code) << body;
  if (!message.empty()) {
    EXPECT_EQ(e.message, message) << body;
  }
}

TEST(SimRequestCheck, ReadsAWellFormedChatRequest) {
  auto r = check_request(
      Op::chat, false, chat(R"("stream":true,"stream_options":{"include_usage":true},"max_tokens":7,"n":1)"));
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->model, "m");
  EXPECT_TRUE(r.request->stream);
  EXPECT_TRUE(r.request->include_usage);
  EXPECT_EQ(r.request->max_tokens, 7);
}

TEST(SimRequestCheck, NullMeansAbsent) {
  auto r =
      check_request(Op::chat, false,
                    chat(R"("stream":null,"stream_options":null,"max_tokens":null,"n":null,"tools":null)"));
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_FALSE(r.request->stream);
  EXPECT_FALSE(r.request->max_tokens);
}

TEST(SimRequestCheck, TokenLimitsAsOpenAIRefusesThem) {
  expect_refused(
      Op::chat, chat(R"("max_tokens":-1)"), "max_tokens", "integer_below_min_value",
      "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got -1 instead.");
  expect_refused(Op::chat, chat(R"("max_tokens":0)"), "max_tokens", "integer_below_min_value");
  expect_refused(Op::chat, chat(R"("max_completion_tokens":0)"), "max_completion_tokens",
                 "integer_below_min_value");
  expect_refused(Op::chat, chat(R"("max_tokens":"10")"), "max_tokens", "invalid_type",
                 "Invalid type for 'max_tokens': expected an integer, but got a string instead.");
  expect_refused(Op::chat, chat(R"("max_tokens":1.5)"), "max_tokens", "invalid_type",
                 "Invalid type for 'max_tokens': expected an integer, but got a decimal number instead.");
  expect_refused(Op::chat, chat(R"("max_tokens":1e12)"), "max_tokens", "invalid_type");
  expect_refused(Op::chat, chat(R"("max_tokens":true)"), "max_tokens", "invalid_type");
  expect_refused(Op::chat, chat(R"("max_tokens":[1])"), "max_tokens", "invalid_type");
  expect_refused(Op::chat, chat(R"("max_tokens":1000001)"), "max_tokens", "invalid_value",
                 "max_tokens is too large: 1000001. This model supports at most 1000000 completion tokens, "
                 "whereas you provided 1000001.");
  expect_refused(Op::chat, chat(R"("max_completion_tokens":9223372036854775807)"), "max_completion_tokens",
                 "invalid_value");
  // Above INT64_MAX but still a whole number.
  expect_refused(Op::chat, chat(R"("max_tokens":18446744073709551615)"), "max_tokens", "invalid_value");
  expect_refused(Op::chat, chat(R"("max_tokens":-9223372036854775808)"), "max_tokens",
                 "integer_below_min_value");
}

TEST(SimRequestCheck, TokenLimitsInRangeAreKept) {
  auto r = check_request(Op::chat, false, chat(R"("max_tokens":1000000)"));
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->max_tokens, 1'000'000);
  // max_completion_tokens wins over max_tokens, as the gateway reads them.
  r = check_request(Op::chat, false, chat(R"("max_tokens":9,"max_completion_tokens":3)"));
  ASSERT_TRUE(r.request);
  EXPECT_EQ(r.request->max_tokens, 3);
  // Legacy completions allow 0; the Responses API wants at least 16.
  r = check_request(Op::completions, false, R"({"model":"m","prompt":"hi","max_tokens":0})");
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->max_tokens, 0);
  expect_refused(Op::completions, R"({"model":"m","prompt":"hi","max_tokens":-1})", "max_tokens",
                 "integer_below_min_value");
  expect_refused(Op::responses, R"({"model":"m","input":"hi","max_output_tokens":15})", "max_output_tokens",
                 "integer_below_min_value");
  r = check_request(Op::responses, false, R"({"model":"m","input":"hi","max_output_tokens":16})");
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->max_tokens, 16);
}

TEST(SimRequestCheck, BodiesThatAreNotAnObject) {
  for (std::string_view body : {"", "{", "not json", R"({"model":"m",})", "{\"model\":\"m\"} x"}) {
    RequestError e = refusal(Op::chat, body);
    EXPECT_TRUE(e.message.starts_with("We could not parse the JSON body of your request.")) << body;
    EXPECT_EQ(e.param, "");
    EXPECT_EQ(e.code, "");
  }
  expect_refused(Op::chat, "[1,2]", "", "invalid_type",
                 "Invalid type for the request body: expected an object, but got an array instead.");
  expect_refused(Op::chat, "42", "", "invalid_type");
  expect_refused(Op::chat, "null", "", "invalid_type");
}

TEST(SimRequestCheck, Model) {
  expect_refused(Op::chat, std::string("{") + std::string(kHi) + "}", "", "",
                 "you must provide a model parameter");
  expect_refused(Op::chat, R"({"model":"",)" + std::string(kHi) + "}", "", "");
  expect_refused(Op::chat, R"({"model":7,)" + std::string(kHi) + "}", "model", "invalid_type");
  // An Azure deployment names the model.
  EXPECT_TRUE(check_request(Op::chat, true, std::string("{") + std::string(kHi) + "}").request);
}

TEST(SimRequestCheck, Messages) {
  expect_refused(Op::chat, R"({"model":"m"})", "messages", "missing_required_parameter",
                 "Missing required parameter: 'messages'.");
  expect_refused(Op::chat, R"({"model":"m","messages":"hi"})", "messages", "invalid_type");
  expect_refused(Op::chat, R"({"model":"m","messages":null})", "messages", "invalid_type");
  expect_refused(Op::chat, R"({"model":"m","messages":{"role":"user"}})", "messages", "invalid_type");
  expect_refused(Op::chat, R"({"model":"m","messages":["hi"]})", "messages[0]", "invalid_type");
  expect_refused(Op::chat, R"({"model":"m","messages":[{"content":"hi"}]})", "messages[0].role",
                 "missing_required_parameter");
  expect_refused(Op::chat, R"({"model":"m","messages":[{"role":1,"content":"hi"}]})", "messages[0].role",
                 "invalid_type");
  expect_refused(Op::chat,
                 R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]})",
                 "messages[1].role", "invalid_value");
  expect_refused(Op::chat, R"({"model":"m","messages":[{"role":"user","content":5}]})", "messages[0].content",
                 "invalid_type");
  expect_refused(Op::chat, R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content",
                 "missing_required_parameter");
  // An assistant's tool call carries no content; an empty conversation is answered (as vLLM does).
  EXPECT_TRUE(
      check_request(
          Op::chat, false,
          R"({"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","content":"{}","tool_call_id":"c"}]})")
          .request);
  EXPECT_TRUE(check_request(Op::chat, false, R"({"model":"m","messages":[]})").request);
  EXPECT_TRUE(
      check_request(Op::chat, false,
                    R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})")
          .request);
}

TEST(SimRequestCheck, StreamAndItsOptions) {
  expect_refused(Op::chat, chat(R"("stream":"yes")"), "stream", "invalid_type",
                 "Invalid type for 'stream': expected a boolean, but got a string instead.");
  expect_refused(Op::chat, chat(R"("stream":1)"), "stream", "invalid_type");
  expect_refused(Op::chat, chat(R"("stream_options":{"include_usage":true})"), "stream_options", "",
                 "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
  expect_refused(Op::chat, chat(R"("stream":true,"stream_options":true)"), "stream_options", "invalid_type");
  expect_refused(Op::chat, chat(R"("stream":true,"stream_options":{"include_usage":"yes"})"),
                 "stream_options.include_usage", "invalid_type");
}

TEST(SimRequestCheck, Choices) {
  expect_refused(Op::chat, chat(R"("n":-1)"), "n", "integer_below_min_value",
                 "Invalid 'n': integer below minimum value. Expected a value >= 1, but got -1 instead.");
  expect_refused(Op::chat, chat(R"("n":0)"), "n", "integer_below_min_value");
  expect_refused(Op::chat, chat(R"("n":129)"), "n", "integer_above_max_value",
                 "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead.");
  expect_refused(Op::chat, chat(R"("n":"2")"), "n", "invalid_type");
  expect_refused(Op::completions, R"({"model":"m","prompt":"hi","n":-1})", "n", "integer_below_min_value");
}

TEST(SimRequestCheck, Tools) {
  expect_refused(Op::chat, chat(R"("tools":"f")"), "tools", "invalid_type");
  expect_refused(Op::chat, chat(R"("tools":[1])"), "tools[0]", "invalid_type");
  expect_refused(Op::chat, chat(R"("tools":[{"function":{"name":"f"}}])"), "tools[0].type",
                 "missing_required_parameter");
  expect_refused(Op::chat, chat(R"("tools":[{"type":"function"}])"), "tools[0].function",
                 "missing_required_parameter");
  expect_refused(Op::chat, chat(R"("tools":[{"type":"function","function":{}}])"), "tools[0].function.name",
                 "missing_required_parameter");
  expect_refused(Op::chat, chat(R"("tools":[{"type":"function","function":{"name":3}}])"),
                 "tools[0].function.name", "invalid_type");
  expect_refused(Op::chat, chat(R"("tools":[{"type":"function","function":{"name":"f","parameters":"x"}}])"),
                 "tools[0].function.parameters", "invalid_type");
  expect_refused(Op::chat, chat(R"("tool_choice":"sometimes")"), "tool_choice", "invalid_value");
  expect_refused(Op::chat, chat(R"("tool_choice":3)"), "tool_choice", "invalid_type");
  expect_refused(Op::chat, chat(R"("tool_choice":{"type":"function","function":{"name":3}})"),
                 "tool_choice.function.name", "invalid_type");
}

TEST(SimRequestCheck, ChoosesTheToolAnAnswerCalls) {
  auto r = check_request(
      Op::chat, false,
      chat(
          R"("tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}}],"tool_choice":{"type":"function","function":{"name":"b"}})"));
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->tool, "b");
  EXPECT_EQ(r.request->tool_arguments, R"({"x":1})");
  r = check_request(Op::chat, false,
                    chat(R"("tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"none")"));
  ASSERT_TRUE(r.request);
  EXPECT_EQ(r.request->tool, "");
}

TEST(SimRequestCheck, Completions) {
  expect_refused(Op::completions, R"({"model":"m"})", "prompt", "missing_required_parameter");
  expect_refused(Op::completions, R"({"model":"m","prompt":3})", "prompt", "invalid_type");
  EXPECT_TRUE(check_request(Op::completions, false, R"({"model":"m","prompt":["a","b"]})").request);
}

TEST(SimRequestCheck, Embeddings) {
  auto r = check_request(Op::embeddings, false,
                         R"({"model":"m","input":["a",[1,2],3],"encoding_format":"base64","dimensions":4})");
  ASSERT_TRUE(r.request) << r.error.message;
  EXPECT_EQ(r.request->inputs.size(), 3u);
  EXPECT_TRUE(r.request->base64);
  EXPECT_EQ(r.request->dimensions, 4);
  expect_refused(Op::embeddings, R"({"model":"m"})", "input", "missing_required_parameter");
  expect_refused(Op::embeddings, R"({"model":"m","input":[]})", "input", "empty_array");
  expect_refused(Op::embeddings, R"({"model":"m","input":{}})", "input", "invalid_type");
  expect_refused(Op::embeddings, R"({"model":"m","input":["a",{}]})", "input[1]", "invalid_type");
  expect_refused(Op::embeddings, R"({"model":"m","input":"a","encoding_format":"hex"})", "encoding_format",
                 "invalid_value");
  expect_refused(Op::embeddings, R"({"model":"m","input":"a","dimensions":0})", "dimensions",
                 "integer_below_min_value");
  expect_refused(Op::embeddings, R"({"model":"m","input":"a","dimensions":4097})", "dimensions",
                 "integer_above_max_value");
}

TEST(SimRequestCheck, Responses) {
  EXPECT_TRUE(check_request(Op::responses, false, R"({"model":"m","input":"hi","stream":true})").request);
  expect_refused(Op::responses, R"({"model":"m","input":3})", "input", "invalid_type");
  expect_refused(Op::responses, R"({"model":"m","input":"hi","stream":"no"})", "stream", "invalid_type");
}

TEST(SimRequestCheck, WhatTheGatewayRefusesTheSimulatorRefusesToo) {
  RequestError e = refusal(Op::chat, chat(R"("model":"other")"));
  EXPECT_NE(e.message.find("'model' more than once"), std::string::npos) << e.message;
  e = refusal(Op::chat, R"({"mod\u0065l":"m",)" + std::string(kHi) + "}");
  EXPECT_NE(e.message.find("with escapes"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace ballast::sim
