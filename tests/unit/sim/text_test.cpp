#include "sim/text.hpp"

#include <gtest/gtest.h>

#include "policy/sse_scanner.hpp"

namespace ballast::sim {
namespace {

TEST(Text, SameSeedAndRequestSameWords) {
  TextGenerator a(7, 3), b(7, 3), c(8, 3);
  std::string sa, sb, sc;
  for (int i = 0; i < 10; ++i) {
    sa += a.next();
    sb += b.next();
    sc += c.next();
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Text, StreamEventsReadAsTheGatewayExpects) {
  Answer a{Answer::Kind::chat, "m", 1, 0, 3, 2, false};
  EXPECT_FALSE(inspect_sse_event(a.stream_start()).has_content);
  EXPECT_TRUE(inspect_sse_event(a.stream_delta("Hi")).has_content);
  std::string end = a.stream_end({"Hi", " there"}, true);
  SseScanner s;
  s.feed(end);
  int events = 0;
  bool terminal = false, usage = false;
  while (auto e = s.next()) {
    ++events;
    terminal = terminal || e->terminal;
    usage = usage || e->usage.has_value();
  }
  EXPECT_EQ(events, 3);  // finish chunk, usage chunk, [DONE]
  EXPECT_TRUE(terminal);
  EXPECT_TRUE(usage);
}

TEST(Text, ToolCallArgumentsFollowTheFunctionsSchema) {
  EXPECT_EQ(
      tool_arguments(R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},)"
                     R"("required":["city"]})"),
      R"({"city":"sim"})");
  // No property marked required: every one is passed, each with a value of its type.
  EXPECT_EQ(tool_arguments(
                R"({"properties":{"n":{"type":"number"},"ok":{"type":"boolean"},"xs":{"type":"array"}}})"),
            R"({"n":1,"ok":true,"xs":[]})");
  EXPECT_EQ(tool_arguments("not json"), "{}");
  EXPECT_EQ(split_arguments(R"({"city":"sim"})"), (std::vector<std::string>{R"({"city":)", R"("sim"})"}));
  EXPECT_EQ(split_arguments(""), std::vector<std::string>{""});
}

TEST(Text, AToolCallStreamsAsOpenAIStreamsIt) {
  Answer a{Answer::Kind::chat, "m", 4, 0, 3, 2, false, "get_weather"};
  // The call's id and name come first, and count as the first token.
  std::string start = a.stream_start();
  EXPECT_NE(
      start.find(
          R"("tool_calls":[{"index":0,"id":"call_sim_4","type":"function","function":{"name":"get_weather","arguments":""}}])"),
      std::string::npos);
  EXPECT_TRUE(inspect_sse_event(start).has_content);
  EXPECT_NE(a.stream_delta("{\"c").find(R"("delta":{"tool_calls":[{"index":0,"function":{"arguments":)"),
            std::string::npos);
  EXPECT_NE(a.stream_end({}, false).find(R"("finish_reason":"tool_calls")"), std::string::npos);
  std::string whole = a.whole({R"({"city":)", R"("sim"})"});
  EXPECT_NE(
      whole.find(
          R"("content":null,"tool_calls":[{"id":"call_sim_4","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"sim\"}"}}])"),
      std::string::npos);
  EXPECT_NE(whole.find(R"("finish_reason":"tool_calls")"), std::string::npos);
}

TEST(Text, ResponsesStreamEndsWithCompleted) {
  Answer a{Answer::Kind::response, "m", 1, 0, 3, 1, false};
  auto e = inspect_sse_event(a.stream_end({"x"}, false));
  EXPECT_TRUE(e.terminal);
  ASSERT_TRUE(e.usage);
  EXPECT_EQ(e.usage->completion_tokens, 1);
}

TEST(Text, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Text, EmbeddingsAreDeterministicPerText) {
  auto a = embeddings_body("e", {"hello", "world"}, 4, false, 1);
  auto b = embeddings_body("e", {"hello", "world"}, 4, false, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.find("\"index\":1"), std::string::npos);
  EXPECT_NE(a.find("\"prompt_tokens\":2"), std::string::npos);
}

}  // namespace
}  // namespace ballast::sim
