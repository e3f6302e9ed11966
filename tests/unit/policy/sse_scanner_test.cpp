#include "policy/sse_scanner.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

std::vector<SseEvent> scan_all(SseScanner& s, std::string_view bytes,
                               std::vector<std::string>* raws = nullptr) {
  s.feed(bytes);
  std::vector<SseEvent> out;
  while (auto e = s.next()) {
    if (raws) raws->emplace_back(e->raw);
    out.push_back(*e);
  }
  return out;
}

// Feeds `stream` `step` bytes at a time and collects every event handed out.
std::vector<SseEvent> scan_in_steps(SseScanner& s, std::string_view stream, size_t step,
                                    std::vector<std::string>* raws = nullptr) {
  std::vector<SseEvent> events;
  for (size_t i = 0; i < stream.size(); i += step) {
    auto got = scan_all(s, stream.substr(i, step), raws);
    events.insert(events.end(), got.begin(), got.end());
  }
  return events;
}

TEST(SseScanner, RoleOnlyFirstChunkIsNotAToken) {
  auto e = inspect_sse_event(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
  EXPECT_FALSE(e.has_content);
  EXPECT_FALSE(e.terminal);
  EXPECT_FALSE(e.malformed);
}

TEST(SseScanner, ContentToolCallsAndFinishAreTokens) {
  EXPECT_TRUE(inspect_sse_event("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n").has_content);
  EXPECT_TRUE(inspect_sse_event("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n")
                  .has_content);
  EXPECT_TRUE(
      inspect_sse_event("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n").has_content);
  EXPECT_TRUE(inspect_sse_event("data: {\"choices\":[{\"text\":\"legacy\"}]}\n\n").has_content);
  EXPECT_TRUE(
      inspect_sse_event("data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n").has_content);
}

TEST(SseScanner, KeepAliveCommentsAreNotTokens) {
  auto e = inspect_sse_event(": keep-alive\n\n");
  EXPECT_TRUE(e.comment_only);
  EXPECT_FALSE(e.has_content);
}

TEST(SseScanner, DoneAndResponsesFinalEventsEndTheStream) {
  EXPECT_TRUE(inspect_sse_event("data: [DONE]\n\n").terminal);
  auto done = inspect_sse_event(
      "event: response.completed\ndata: "
      "{\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,"
      "\"output_tokens\":4,\"total_tokens\":7}}}\n\n");
  EXPECT_TRUE(done.terminal);
  ASSERT_TRUE(done.usage);
  EXPECT_EQ(done.usage->completion_tokens, 4);
  EXPECT_TRUE(inspect_sse_event("event: response.output_text.delta\ndata: "
                                "{\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n")
                  .has_content);
}

TEST(SseScanner, AnUpstreamErrorEventIsTerminal) {
  auto e = inspect_sse_event("data: {\"error\":{\"message\":\"overloaded\"}}\n\n");
  EXPECT_TRUE(e.upstream_error);
  EXPECT_TRUE(e.terminal);
}

TEST(SseScanner, AnUpstreamErrorKeepsItsWords) {
  auto e = inspect_sse_event("data: {\"error\":{\"message\":\"overloaded\",\"code\":\"server_error\"}}\n\n");
  EXPECT_EQ(e.error_message, "overloaded");
  EXPECT_EQ(e.error_code, "server_error");
  auto failed = inspect_sse_event(
      "event: response.failed\ndata: "
      "{\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"boom\",\"code\":\"x\"}}}\n\n");
  EXPECT_TRUE(failed.upstream_error);
  EXPECT_EQ(failed.error_message, "boom");
  EXPECT_EQ(failed.error_code, "x");
  // An error given as a plain string has words but no code; data split over two lines is one JSON.
  auto plain = inspect_sse_event("event: error\ndata: {\"error\":\ndata: \"gone\"}\n\n");
  EXPECT_EQ(plain.error_message, "gone");
  EXPECT_EQ(plain.error_code, "");
  EXPECT_TRUE(inspect_sse_event("event: response.incomplete\ndata: {\"type\":\"response.incomplete\"}\n\n")
                  .upstream_error);
  EXPECT_FALSE(inspect_sse_event("data: {\"type\":\"response.completed\"}\n\n").upstream_error);
}

// What the SDKs accept as a whole answer: [DONE]; or a finish_reason on every choice seen (a usage
// chunk may follow, no [DONE] needed); or response.completed.
TEST(StreamProgress, CompleteAsTheSdksJudgeIt) {
  auto chunk = [](const std::string& json) { return inspect_sse_event("data: " + json + "\n\n"); };
  StreamProgress p;
  p.see(chunk(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"));
  p.see(chunk(R"({"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"));
  EXPECT_FALSE(p.complete());
  p.see(chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"));
  EXPECT_TRUE(p.complete());
  p.see(chunk(R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})"));
  EXPECT_TRUE(p.complete());

  StreamProgress two;  // n: 2, choices finishing apart
  two.see(chunk(R"({"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]})"));
  two.see(chunk(R"({"choices":[{"index":1,"delta":{},"finish_reason":"stop"}]})"));
  EXPECT_FALSE(two.complete()) << "choice 0 has not finished";
  two.see(chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})"));
  EXPECT_TRUE(two.complete());

  StreamProgress done;
  EXPECT_FALSE(done.complete());
  done.see(inspect_sse_event("data: [DONE]\n\n"));
  EXPECT_TRUE(done.complete());

  StreamProgress responses;
  responses.see(chunk(R"({"type":"response.output_text.delta","delta":"x"})"));
  EXPECT_FALSE(responses.complete());
  responses.see(chunk(R"({"type":"response.completed","response":{}})"));
  EXPECT_TRUE(responses.complete());
}

TEST(SseScanner, ALineLongerThanTheLimitStopsTheStream) {
  SseScanner s(16);
  s.feed("data: {\"a\":1}\n\n");
  ASSERT_TRUE(s.next());
  s.feed(std::string(10, 'x'));
  EXPECT_FALSE(s.next());
  EXPECT_FALSE(s.oversized()) << "10 bytes of a line so far";
  s.feed(std::string(10, 'x'));
  EXPECT_FALSE(s.next());
  EXPECT_TRUE(s.oversized()) << "20 bytes and no end of line";
  SseScanner whole(16);
  whole.feed("data: " + std::string(32, 'x') + "\n\n");
  EXPECT_FALSE(whole.next());
  EXPECT_TRUE(whole.oversized()) << "a complete line over the limit too";
  SseScanner fits(16);
  fits.feed("data: 0123456789\n\n");  // 16 bytes
  EXPECT_TRUE(fits.next());
}

TEST(SseScanner, InvalidJsonIsMalformed) {
  EXPECT_TRUE(inspect_sse_event("data: {\"choices\":[{\"delta\":\n\n").malformed);
  // A data field with no value at all, its line without a colon.
  EXPECT_TRUE(inspect_sse_event("data\n\n").malformed);
}

TEST(SseScanner, UsageChunkIsRead) {
  auto e = inspect_sse_event(
      "data: "
      "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\n");
  ASSERT_TRUE(e.usage);
  EXPECT_EQ(e.usage->prompt_tokens, 9);
  EXPECT_EQ(e.usage->total_tokens, 14);
}

TEST(SseScanner, HandsOutOnlyCompleteEventsAcrossArbitrarySplits) {
  const std::string stream =
      ": keep-alive\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\r\n\r\n"
      "data: [DONE]\n\n";
  for (size_t step = 1; step <= stream.size(); ++step) {
    SseScanner s;
    std::vector<std::string> raws;
    scan_in_steps(s, stream, step, &raws);
    ASSERT_EQ(raws.size(), 4u) << "step " << step;
    std::string rejoined;
    for (auto& r : raws) rejoined += r;
    EXPECT_EQ(rejoined, stream) << "step " << step;
    EXPECT_EQ(s.pending_bytes(), 0u);
  }
}

TEST(SseScanner, LinesEndInLfCrLfOrCrAndDataLinesJoinWithLf) {
  // A lone \r ends a line too; an event's data lines are one JSON text, joined with \n.
  const std::string stream =
      "data: {\"choices\":\r\n"
      "data: [{\"delta\":{\"content\":\"x\"}}]}\r\r"
      "data:\ndata: {\"choices\":[{\"index\":1,\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\r\r";
  for (size_t step = 1; step <= stream.size(); ++step) {
    SseScanner s;
    std::vector<SseEvent> events = scan_in_steps(s, stream, step);
    // The last \r may be half of a \r\n until the stream is known to have ended.
    ASSERT_EQ(events.size(), 2u) << "step " << step;
    EXPECT_EQ(s.pending_bytes(), std::string_view("data: [DONE]\r\r").size());
    s.end();
    auto last = s.next();
    ASSERT_TRUE(last) << "step " << step;
    events.push_back(*last);
    EXPECT_EQ(s.pending_bytes(), 0u);
    EXPECT_TRUE(events[0].has_content);
    EXPECT_FALSE(events[0].malformed);
    EXPECT_FALSE(events[1].malformed);  // "\n{...}": an empty first data line
    EXPECT_EQ(events[1].finished, 2u);
    EXPECT_TRUE(events[2].done);
  }
}

TEST(SseScanner, TheFirstOfARepeatedKeyCounts) {
  auto e = inspect_sse_event(
      "data: {\"choices\":[{\"index\":0,\"index\":3,\"finish_reason\":null,\"finish_reason\":\"stop\","
      "\"delta\":{\"content\":\"\",\"content\":\"x\"}}]}\n\n");
  EXPECT_EQ(e.choices, 1u);
  EXPECT_EQ(e.finished, 0u);
  EXPECT_FALSE(e.has_content);
  auto error = inspect_sse_event("data: {\"error\":null,\"choices\":[],\"error\":{\"message\":\"m\"}}\n\n");
  EXPECT_FALSE(error.upstream_error);
}

TEST(SseScanner, KeepsAPartialEventPending) {
  SseScanner s;
  auto got = scan_all(s, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choi");
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(s.pending_bytes(), 12u);
}

}  // namespace
}  // namespace ballast
