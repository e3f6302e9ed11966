#include "policy/header_filter.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(HeaderFilter, HopByHopHeadersStayOnTheirConnection) {
  for (auto h : {"Connection", "keep-alive", "Transfer-Encoding", "TE", "Upgrade", "Host", "Content-Length",
                 "Proxy-Authorization"}) {
    EXPECT_FALSE(forward_request_header(h)) << h;
    EXPECT_FALSE(forward_response_header(h)) << h;
  }
}

TEST(HeaderFilter, ClientCredentialsAreReplacedNotForwarded) {
  for (auto h : {"Authorization", "api-key", "X-Api-Key", "Cookie"})
    EXPECT_FALSE(forward_request_header(h)) << h;
}

TEST(HeaderFilter, BallastControlsAreNotForwarded) {
  EXPECT_FALSE(forward_request_header("x-ballast-timeout"));
  EXPECT_FALSE(forward_response_header("X-Ballast-Anything"));
}

TEST(HeaderFilter, EverythingElseCrosses) {
  for (auto h : {"Content-Type", "OpenAI-Organization", "x-stainless-timeout", "User-Agent", "OpenAI-Beta"}) {
    EXPECT_TRUE(forward_request_header(h)) << h;
  }
  for (auto h : {"x-ratelimit-remaining-requests", "retry-after", "openai-processing-ms", "content-type"}) {
    EXPECT_TRUE(forward_response_header(h)) << h;
  }
}

TEST(HeaderFilter, EncodingIsBallastsToNegotiate) {
  EXPECT_FALSE(forward_request_header("Accept-Encoding"));
  EXPECT_FALSE(forward_response_header("Content-Encoding"));
}

}  // namespace
}  // namespace ballast
