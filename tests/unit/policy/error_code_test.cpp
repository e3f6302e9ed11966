#include "policy/error_code.hpp"

#include <gtest/gtest.h>

#include "policy/failure_message.hpp"

namespace ballast {
namespace {

TEST(ErrorCode, StatusesFollowTheTaxonomy) {
  EXPECT_EQ(http_status(ErrorCode::invalid_request), 400);
  EXPECT_EQ(http_status(ErrorCode::unauthorized), 401);
  EXPECT_EQ(http_status(ErrorCode::unknown_model), 404);
  EXPECT_EQ(http_status(ErrorCode::payload_too_large), 413);
  EXPECT_EQ(http_status(ErrorCode::rate_limited), 429);
  EXPECT_EQ(http_status(ErrorCode::queue_full), 503);
  EXPECT_EQ(http_status(ErrorCode::deadline_exceeded), 504);
  EXPECT_EQ(http_status(ErrorCode::connect_refused), 502);
  EXPECT_EQ(http_status(ErrorCode::connect_timeout), 504);
  EXPECT_EQ(http_status(ErrorCode::first_token_timeout), 504);
  EXPECT_EQ(http_status(ErrorCode::all_endpoints_down), 503);
}

TEST(ErrorCode, BodyHasTheOpenAiShape) {
  EXPECT_EQ(
      error_body(ErrorCode::connect_refused, "say \"why\""),
      R"({"error":{"message":"connect_refused: say \"why\"","type":"upstream_error","code":"connect_refused","param":null}})");
}

TEST(ErrorCode, StreamErrorIsAnSseErrorEvent) {
  std::string e = sse_error_event(ErrorCode::stream_idle_timeout, "stalled");
  EXPECT_TRUE(e.starts_with("event: error\ndata: {\"error\":"));
  EXPECT_TRUE(e.ends_with("\n\n"));
}

TEST(FailureMessage, NamesHopEndpointAndFix) {
  Outcome o;
  o.timings.total_ms = 0.4;
  FailureContext ctx{"127.0.0.1:8000", "127.0.0.1", "", "", nullptr, nullptr, false};
  std::string m = describe_failure(ErrorCode::connect_refused, o, ctx);
  EXPECT_NE(m.find("connect to 127.0.0.1:8000 refused (nothing listening)"), std::string::npos);
  EXPECT_NE(m.find("is the model server running, and is the port right?"), std::string::npos);
  EXPECT_EQ(m.find("container"), std::string::npos);
  ctx.in_container = true;
  EXPECT_NE(describe_failure(ErrorCode::connect_refused, o, ctx).find("host.docker.internal"),
            std::string::npos);
}

TEST(FailureMessage, TimeoutsNameTheirConfigKey) {
  Outcome o;
  PhaseBounds b;
  b.first_byte = Millis(500);
  FailureContext ctx{"h:1", "h", "", "", &b, nullptr, false};
  EXPECT_NE(describe_failure(ErrorCode::first_byte_timeout, o, ctx).find("500ms (timeouts.first_byte)"),
            std::string::npos);
  RequestDeadline d = plan_deadline(TimePoint{}, Millis(600'000), std::chrono::seconds(2));
  ctx.deadline = &d;
  EXPECT_NE(describe_failure(ErrorCode::deadline_exceeded, o, ctx).find("the client's own deadline of 2s"),
            std::string::npos);
}

TEST(FailureMessage, ACutByTheClientsReadTimeoutNamesItNotBallastsBound) {
  PhaseBounds b;
  RequestDeadline d = plan_deadline(TimePoint{}, Millis(600'000), std::nullopt);
  bound_silence(d, std::chrono::seconds(3));
  FailureContext ctx{"h:1", "h", "", "", &b, &d, false};
  Outcome o;
  o.client_read = true;
  o.timer = ErrorCode::first_token_timeout;
  std::string token = describe_failure(ErrorCode::first_token_timeout, o, ctx);
  EXPECT_NE(token.find("the client's read timeout of 3s (x-stainless-read-timeout; answered 150ms early"),
            std::string::npos)
      << token;
  EXPECT_EQ(token.find("timeouts.first_token"), std::string::npos) << token;
  // curl's connect bound, when the read timeout set it: curl's verdict, no timer of ballast's.
  Outcome connect;
  connect.client_read = true;
  connect.transport = TransportError::connect_timeout;
  std::string m = describe_failure(ErrorCode::connect_timeout, connect, ctx);
  EXPECT_NE(m.find("before the client's read timeout of 3s"), std::string::npos) << m;
  EXPECT_EQ(m.find("timeouts.connect"), std::string::npos) << m;
}

TEST(FailureMessage, ProxyFailuresNameTheProxyAndNoProxy) {
  Outcome o;
  FailureContext ctx{
      "api.openai.com:443", "api.openai.com", "http://127.0.0.1:9", "HTTPS_PROXY", nullptr, nullptr, false};
  std::string m = describe_failure(ErrorCode::proxy_failure, o, ctx);
  EXPECT_NE(m.find("proxy http://127.0.0.1:9 (from HTTPS_PROXY)"), std::string::npos);
  EXPECT_NE(m.find("NO_PROXY"), std::string::npos);
}

}  // namespace
}  // namespace ballast
