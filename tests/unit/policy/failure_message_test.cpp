#include "policy/failure_message.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

// A configured name says which endpoint; its host:port says where, so that "is the port right?"
// can be answered from the message alone.
TEST(FailureMessage, ANamedEndpointIsShownWithItsHostAndPort) {
  Outcome o;
  o.timings.total_ms = 0.3;
  FailureContext ctx{"dead", "127.0.0.1", "", "", nullptr, nullptr, false};
  ctx.url = "http://127.0.0.1:18998/v1";
  std::string m = describe_failure(ErrorCode::connect_refused, o, ctx);
  EXPECT_EQ(m.rfind("connect to dead (127.0.0.1:18998) refused (nothing listening)", 0), 0u) << m;
  EXPECT_NE(describe_failure(ErrorCode::first_byte_timeout, o, ctx).find("upstream dead (127.0.0.1:18998) "),
            std::string::npos);
  // The default name is the host:port already: not repeated.
  ctx.endpoint = "127.0.0.1:18998";
  EXPECT_EQ(
      describe_failure(ErrorCode::connect_refused, o, ctx).rfind("connect to 127.0.0.1:18998 refused", 0),
      0u);
  // An Azure endpoint's default port.
  ctx.endpoint = "eu";
  ctx.url = "https://res.openai.azure.com";
  EXPECT_NE(
      describe_failure(ErrorCode::connect_timeout, o, ctx).find("connect to eu (res.openai.azure.com:443)"),
      std::string::npos);
  // Without a URL, the name alone, as before.
  ctx.url = "";
  EXPECT_EQ(describe_failure(ErrorCode::connect_refused, o, ctx).rfind("connect to eu refused", 0), 0u);
}

TEST(FailureMessage, A2xxThatIsNotJsonIsNotTheApisAnswer) {
  Outcome o;
  o.status = 200;
  o.malformed = true;
  FailureContext ctx{"127.0.0.1:8000", "127.0.0.1", "", "", nullptr, nullptr, false};
  std::string m = describe_failure(ErrorCode::upstream_reset, o, ctx);
  EXPECT_NE(m.find("answered 2xx with a body that is not the API's (not JSON)"), std::string::npos) << m;
}

}  // namespace
}  // namespace ballast
