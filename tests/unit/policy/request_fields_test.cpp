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

TEST(RequestFields, AKeyReadTwiceIsRefused) {
  EXPECT_EQ(read_request_fields(R"({"model":"cheap","messages":[],"model":"expensive"})").error,
            "the request body has 'model' more than once: send it once");
  EXPECT_EQ(read_request_fields(R"({"model":"m","stream":false,"stream":true})").error,
            "the request body has 'stream' more than once: send it once");
  EXPECT_NE(read_request_fields(R"({"model":"m","max_tokens":1,"max_tokens":2})").error, "");
  EXPECT_NE(read_request_fields(R"({"mod\u0065l":"a","model":"b"})").error, "")
      << "an escaped key is the same key";
  EXPECT_EQ(read_request_fields(R"({"mod\u0065l":"a","messages":[]})").error,
            "the request body writes the key 'model' with escapes: write it plainly");
  EXPECT_EQ(read_request_fields(R"({"model":"m","messages":[{"model":"x"},{"model":"y"}]})").error, "")
      << "only top-level keys count";
}

TEST(RequestFields, AnEscapedKeyElsewhereLeavesTheFieldsReadRight) {
  // Reading an escaped key must not disturb the parsed document the fields are read from.
  auto r = read_request_fields(
      R"({"model":"m","messag\u0065s":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":7})");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.fields.model, "m");
  EXPECT_TRUE(r.fields.stream);
  EXPECT_EQ(r.fields.max_tokens, 7);
}

TEST(RequestFields, TokenLimitsAreNumbersTheLimitersCanUse) {
  for (const char* bad :
       {R"({"model":"m","max_tokens":-1})", R"({"model":"m","max_tokens":2147483648})",
        R"({"model":"m","max_tokens":1e300})", R"({"model":"m","max_completion_tokens":"10"})",
        R"({"model":"m","max_tokens":1.5})"}) {
    EXPECT_NE(read_request_fields(bad).error, "") << bad;
  }
  EXPECT_EQ(read_request_fields(R"({"model":"m","max_tokens":-1})").error,
            "'max_tokens' must be a whole number from 0 to 2147483647");
  EXPECT_EQ(read_request_fields(R"({"model":"m","max_tokens":2147483647})").fields.max_tokens, 2147483647);
  EXPECT_EQ(read_request_fields(R"({"model":"m","max_tokens":null})").error, "");
}

TEST(RequestFields, ReadsUsageFromEveryResponseShape) {
  auto chat = read_response_body(R"({"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})");
  EXPECT_TRUE(chat.json);
  ASSERT_TRUE(chat.usage);
  EXPECT_EQ(chat.usage->completion_tokens, 4);
  auto responses =
      read_response_body(R"({"object":"response","usage":{"input_tokens":5,"output_tokens":6}})");
  ASSERT_TRUE(responses.usage);
  EXPECT_EQ(responses.usage->prompt_tokens, 5);
  EXPECT_EQ(responses.usage->total_tokens, 11);
  EXPECT_TRUE(read_response_body(R"({"choices":[]})").json);
  EXPECT_FALSE(read_response_body(R"({"choices":[]})").usage);
  EXPECT_FALSE(read_response_body("not json").json);
  EXPECT_FALSE(read_response_body("<html>502 Bad Gateway</html>").json);
}

}  // namespace
}  // namespace ballast
