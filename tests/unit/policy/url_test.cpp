#include "policy/url.hpp"

#include <gtest/gtest.h>

#include "policy/upstream_target.hpp"

namespace ballast {
namespace {

TEST(Url, ParsesPartsAndDefaults) {
  auto u = parse_url("https://api.openai.com/v1/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "api.openai.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/v1");
  auto local = parse_url("http://[::1]:8000/v1?x=1");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->host, "[::1]");
  EXPECT_EQ(local->port, 8000);
  EXPECT_EQ(local->query, "x=1");
  EXPECT_EQ(parse_url("http://user:pw@proxy:3128")->host, "proxy");
}

TEST(Url, SaysWhatIsWrong) {
  std::string why;
  EXPECT_FALSE(parse_url("localhost:8000/v1", &why));
  EXPECT_EQ(why, "must start with http:// or https://");
  EXPECT_FALSE(parse_url("http://host:99999", &why));
  EXPECT_EQ(why, "has a port outside 1-65535");
  EXPECT_FALSE(parse_url("http:///v1", &why));
  EXPECT_EQ(why, "has no host");
}

TEST(UpstreamTarget, OpenAiAppendsThePathAndBearerKey) {
  config::Endpoint ep;
  ep.base_url = "http://127.0.0.1:8000/v1/";
  ep.api_key = "sk-test";
  auto t = upstream_target(ep, "/chat/completions", "");
  EXPECT_EQ(t.url, "http://127.0.0.1:8000/v1/chat/completions");
  EXPECT_EQ(t.credential, "Authorization: Bearer sk-test");
}

TEST(UpstreamTarget, AzureDeploymentFormWithApiKeyHeader) {
  config::Endpoint ep;
  ep.provider = config::Provider::azure;
  ep.endpoint = "https://res.openai.azure.com/";
  ep.deployment = "gpt-4o-mini-prod";
  ep.api_version = "2024-10-21";
  ep.api_key = "k";
  auto t = upstream_target(ep, "/chat/completions", "ignored=1");
  EXPECT_EQ(t.url,
            "https://res.openai.azure.com/openai/deployments/gpt-4o-mini-prod/chat/"
            "completions?api-version=2024-10-21");
  EXPECT_EQ(t.credential, "api-key: k");
}

TEST(UpstreamTarget, AzureV1Form) {
  config::Endpoint ep;
  ep.provider = config::Provider::azure;
  ep.base_url = "https://res.openai.azure.com/openai/v1";
  ep.api_key = "k";
  EXPECT_EQ(upstream_target(ep, "/responses", "").url, "https://res.openai.azure.com/openai/v1/responses");
}

TEST(UpstreamTarget, NoKeyNoCredential) {
  config::Endpoint ep;
  ep.base_url = "http://localhost:11434/v1";
  EXPECT_EQ(upstream_target(ep, "/embeddings", "").credential, "");
}

}  // namespace
}  // namespace ballast

namespace ballast {
namespace {

TEST(Url, CredentialsAreNeverShown) {
  EXPECT_EQ(redact_credentials("http://user:s3cret@proxy.corp:3128"), "http://***@proxy.corp:3128");
  // An unencoded password may hold '/', '?' or '#': everything up to the last '@' is hidden, even
  // when that over-hides a path with an '@' in it.
  EXPECT_EQ(redact_credentials("http://user:pa/ss@proxy.corp:3128"), "http://***@proxy.corp:3128");
  EXPECT_EQ(redact_credentials("http://user:p?a#s@proxy.corp:3128"), "http://***@proxy.corp:3128");
  EXPECT_EQ(redact_credentials("http://proxy.corp:3128/p@th"), "http://***@th");
  EXPECT_EQ(redact_credentials("user:pw@host:1"), "***@host:1");
  EXPECT_EQ(redact_credentials("https://api.openai.com/v1"), "https://api.openai.com/v1");
}

TEST(Url, LocalAndLoopbackHosts) {
  for (const char* h : {"localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "app.localhost"})
    EXPECT_TRUE(is_loopback_host(h)) << h;
  for (const char* h :
       {"10.0.0.8", "172.16.0.1", "172.31.255.1", "192.168.1.20", "host.docker.internal", "vllm"})
    EXPECT_TRUE(is_local_host(h)) << h;
  for (const char* h :
       {"api.openai.com", "172.32.0.1", "8.8.8.8", "res.openai.azure.com", "172.99999999999"}) {
    EXPECT_FALSE(is_local_host(h)) << h;
    EXPECT_FALSE(is_loopback_host(h)) << h;
  }
}

TEST(Url, PercentDecodedPathSegments) {
  EXPECT_EQ(percent_decoded("meta-llama%2FLlama-3.1-8B"), "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(percent_decoded("my%20model"), "my model");
  EXPECT_EQ(percent_decoded("%C3%A9t%c3%a9"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(percent_decoded("100%"), "100%");
  EXPECT_EQ(percent_decoded("a%2"), "a%2");
  EXPECT_EQ(percent_decoded("a%zz"), "a%zz");
}

}  // namespace
}  // namespace ballast
