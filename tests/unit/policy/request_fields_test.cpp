#include "policy/request_fields.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(RequestFields, ReadsModelStreamAndLimit) {
  auto r = read_request_fields(R"({"model":"gpt-4o-mini","stream":true,"max_tokens":64,"messages":[]})");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.fields.model, "gpt-4o-mini");
  EXPECT_TRUE(r.fields.stream);
  EXPECT_EQ(r.fields.max_tokens, 64);
}

TEST(RequestFields, MaxCompletionTokensWins) {
  auto r = read_request_fields(R"({"model":"m","max_tokens":10,"max_completion_tokens":20})");
  EXPECT_EQ(r.fields.max_tokens, 20);
}

TEST(RequestFields, NullStreamMeansNotStreamed) {
  auto r = read_request_fields(R"({"model":"m","stream":null})");
  EXPECT_EQ(r.error, "");
  EXPECT_FALSE(r.fields.stream);
}

TEST(RequestFields, ExplainsWhatIsWrong) {
  EXPECT_NE(read_request_fields("{\"model\":").error.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(read_request_fields("[1,2]").error, "the request body must be a JSON object");
  EXPECT_EQ(read_request_fields(R"({"model":5})").error, "'model' must be a string");
  EXPECT_EQ(read_request_fields(R"({"model":"m","stream":"yes"})").error, "'stream' must be true or false");
}

TEST(RequestFields, ReadsUsageFromEveryResponseShape) {
  auto chat = read_usage(R"({"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->completion_tokens, 4);
  auto responses = read_usage(R"({"object":"response","usage":{"input_tokens":5,"output_tokens":6}})");
  ASSERT_TRUE(responses);
  EXPECT_EQ(responses->prompt_tokens, 5);
  EXPECT_EQ(responses->total_tokens, 11);
  EXPECT_FALSE(read_usage(R"({"choices":[]})"));
  EXPECT_FALSE(read_usage("not json"));
}

}  // namespace
}  // namespace ballast
