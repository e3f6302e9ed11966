#include "policy/proxy_env.hpp"

#include <gtest/gtest.h>

#include <map>

namespace ballast {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(ProxyEnv, ReadsBothCases) {
  auto upper = choose_proxy("https", "api.openai.com", "", env_of({{"HTTPS_PROXY", "http://proxy:3128"}}));
  EXPECT_EQ(upper.url, "http://proxy:3128");
  EXPECT_EQ(upper.source, "HTTPS_PROXY");
  // HTTP_PROXY in upper case too: curl alone would ignore it, Python clients do not.
  auto http = choose_proxy("http", "10.1.2.3", "", env_of({{"HTTP_PROXY", "http://p:1"}}));
  EXPECT_EQ(http.url, "http://p:1");
  auto lower =
      choose_proxy("https", "x", "", env_of({{"https_proxy", "http://a:1"}, {"HTTPS_PROXY", "http://b:1"}}));
  EXPECT_EQ(lower.url, "http://a:1");
}

TEST(ProxyEnv, SchemeChoosesTheVariable) {
  auto e = env_of({{"HTTPS_PROXY", "http://secure:1"}});
  EXPECT_EQ(choose_proxy("http", "host", "", e).url, "");
  EXPECT_EQ(choose_proxy("https", "host", "", e).url, "http://secure:1");
  EXPECT_EQ(choose_proxy("http", "host", "", env_of({{"ALL_PROXY", "http://all:1"}})).url, "http://all:1");
}

TEST(ProxyEnv, NoProxyBypassesAndSaysWhich) {
  auto e = env_of({{"HTTPS_PROXY", "http://p:1"}, {"NO_PROXY", "localhost, .internal,10.0.0.0/8"}});
  auto c = choose_proxy("https", "model.internal", "", e);
  EXPECT_EQ(c.url, "");
  EXPECT_EQ(c.bypassed_by, ".internal");
  EXPECT_EQ(choose_proxy("https", "10.4.5.6", "", e).bypassed_by, "10.0.0.0/8");
  EXPECT_EQ(choose_proxy("https", "api.openai.com", "", e).url, "http://p:1");
}

TEST(ProxyEnv, EndpointProxyWins) {
  auto c = choose_proxy("https", "h", "http://mine:8080", env_of({{"HTTPS_PROXY", "http://env:1"}}));
  EXPECT_EQ(c.url, "http://mine:8080");
}

TEST(NoProxy, MatchingRules) {
  EXPECT_EQ(no_proxy_match("*", "anything"), "*");
  EXPECT_EQ(no_proxy_match("example.com", "example.com"), "example.com");
  EXPECT_EQ(no_proxy_match("example.com", "api.example.com"), "example.com");
  EXPECT_EQ(no_proxy_match("example.com", "badexample.com"), "");
  EXPECT_EQ(no_proxy_match("localhost:8000", "localhost"), "localhost:8000");
  EXPECT_EQ(no_proxy_match("127.0.0.0/8", "127.0.0.1"), "127.0.0.0/8");
  EXPECT_EQ(no_proxy_match("192.168.0.0/16", "10.0.0.1"), "");
  EXPECT_EQ(no_proxy_match("::1", "[::1]"), "::1");
  EXPECT_EQ(no_proxy_match("", "x"), "");
}

TEST(NoProxy, EntriesThatNameNoHostMatchNothing) {
  EXPECT_EQ(no_proxy_match(":8080", "example.com."), "");
  EXPECT_EQ(no_proxy_match(".", "example.com."), "");
  EXPECT_EQ(no_proxy_match("10.0.0.0/99999999999", "10.0.0.1"), "");
  EXPECT_EQ(no_proxy_match("10.0.0.0/33", "10.0.0.1"), "");
}

}  // namespace
}  // namespace ballast
