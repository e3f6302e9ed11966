#include "doctor/diagnosis.hpp"

#include <gtest/gtest.h>

#include "doctor/report.hpp"

namespace ballast::doctor {
namespace {

Target openai(std::string url, std::string key = "sk-proj-abcdefghijklmnop") {
  Target t;
  t.name = "t";
  t.ep.base_url = std::move(url);
  t.ep.api_key = std::move(key);
  t.key_source = "OPENAI_API_KEY";
  return t;
}

TEST(DoctorConfig, PlaceholderKeys) {
  for (const char* k :
       {"sk-xxxx", "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "your-api-key", "<OPENAI_API_KEY>", "changeme", "sk-...",
        "${OPENAI_API_KEY}", "sk-", "sk-proj-abc", "REPLACE_ME_with_key", "dummy"}) {
    EXPECT_TRUE(is_placeholder_key(k)) << k;
  }
  for (const char* k : {"sk-proj-4f8Jd93kLq0Zp", "sk-abcdefghijklmnop", "a1b2c3d4e5f6a7b8c9d0"}) {
    EXPECT_FALSE(is_placeholder_key(k)) << k;
  }
}

TEST(DoctorConfig, ApiVersions) {
  EXPECT_TRUE(valid_api_version("2024-10-21"));
  EXPECT_TRUE(valid_api_version("2025-01-01-preview"));
  for (const char* v : {"latest", "2024-10", "2024/10/21", "2024-10-21-", "2024-10-21-Preview", "v1"}) {
    EXPECT_FALSE(valid_api_version(v)) << v;
  }
}

TEST(DoctorConfig, LocalServersNeedNoKeyButRemoteOnesDo) {
  EXPECT_EQ(check_config(openai("http://127.0.0.1:8000/v1", "")).cause, Cause::ok);
  EXPECT_EQ(check_config(openai("http://vllm:8000/v1", "")).cause, Cause::ok);  // a compose service
  EXPECT_EQ(check_config(openai("http://192.168.1.20:11434/v1", "")).cause, Cause::ok);
  ConfigCheck remote = check_config(openai("https://api.openai.com/v1", ""));
  EXPECT_EQ(remote.cause, Cause::missing_api_key);
  EXPECT_EQ(remote.detail, "no API key in OPENAI_API_KEY");
  EXPECT_EQ(check_config(openai("https://api.openai.com/v1", "${OPENAI_API_KEY}")).cause,
            Cause::missing_api_key);
  EXPECT_EQ(check_config(openai("https://api.openai.com/v1", "sk-xxxx")).cause, Cause::placeholder_api_key);
}

TEST(DoctorConfig, UrlsAndAzureFields) {
  ConfigCheck bad = check_config(openai("localhost:8000/v1"));
  EXPECT_EQ(bad.cause, Cause::bad_base_url);
  EXPECT_NE(bad.detail.find("'localhost:8000/v1'"), std::string::npos);
  EXPECT_EQ(check_config(openai("")).cause, Cause::bad_base_url);
  Target az;
  az.ep.provider = config::Provider::azure;
  az.ep.endpoint = "https://res.openai.azure.com/";
  az.ep.api_key = "a1b2c3d4e5f6a7b8c9d0";
  az.ep.api_version = "2024-10-21";
  EXPECT_EQ(check_config(az).cause, Cause::azure_deployment_not_found);
  az.ep.deployment = "prod";
  ConfigCheck ok = check_config(az);
  EXPECT_EQ(ok.cause, Cause::ok);
  EXPECT_EQ(ok.address.url, "https://res.openai.azure.com/openai/deployments/prod");
  EXPECT_EQ(ok.address.port, 443);
  az.ep.api_version = "latest";
  EXPECT_EQ(check_config(az).cause, Cause::azure_api_version);
}

FixContext context(const Target& t) {
  FixContext c;
  c.target = &t;
  c.address = check_config(t).address;
  return c;
}

TEST(DoctorFix, NamesTheHostPortAndWhatToChange) {
  Target t = openai("http://127.0.0.1:8000/v1", "");
  FixContext c = context(t);
  EXPECT_EQ(fix_for(Cause::connect_refused, c).rfind("nothing is listening on 127.0.0.1:8000", 0), 0u);
  c.in_container = true;
  EXPECT_NE(fix_for(Cause::connect_refused, c).find("host.docker.internal:8000"), std::string::npos);
  c.in_container = false;
  c.proxy_url = "http://proxy.corp:3128";
  c.proxy_source = "HTTP_PROXY";
  c.detail = "refuses connections";
  std::string proxy = fix_for(Cause::proxy_failure, c);
  EXPECT_NE(proxy.find("HTTP_PROXY sends traffic for 127.0.0.1 to the proxy http://proxy.corp:3128"),
            std::string::npos);
  EXPECT_NE(proxy.find("NO_PROXY=127.0.0.1,localhost"), std::string::npos);
}

TEST(DoctorFix, PathsModelsAndTimeouts) {
  Target t = openai("http://127.0.0.1:8000");
  FixContext c = context(t);
  EXPECT_NE(fix_for(Cause::wrong_path, c).find("lacks /v1; use http://127.0.0.1:8000/v1"), std::string::npos);
  c.model = "gpt-4o";
  c.listed_models = {"llama-3.1-8b", "qwen2.5"};
  EXPECT_NE(fix_for(Cause::unknown_model, c).find("(it lists llama-3.1-8b, qwen2.5)"), std::string::npos);
  t.first_token_timeout = Millis(10'000);
  t.timeout_source = "timeouts.first_token";
  c.first_token_ms = 12'340;
  EXPECT_EQ(
      fix_for(Cause::first_token_timeout, c),
      "the first token took 12.3s, more than timeouts.first_token (10s): raise timeouts.first_token and the "
      "client's own timeout to at least 25s");
}

TEST(DoctorReport, JsonShapeAndOverallCause) {
  Report a{"a", "http://a/v1", Cause::ok, "nothing to fix", {{"config", true, 0, 0.04, "ok"}}};
  Report b{"b", "http://b/v1", Cause::dns_failure, "b does not resolve", {{"dns", false, 0.1, 2.26, "no"}}};
  EXPECT_EQ(
      render_json({a, b}),
      R"({"cause":"dns_failure","fix":"b does not resolve","endpoints":[)"
      R"({"name":"a","url":"http://a/v1","cause":"ok","fix":"nothing to fix","hops":[{"hop":"config","ok":true,"ms":0,"detail":"ok"}]},)"
      R"({"name":"b","url":"http://b/v1","cause":"dns_failure","fix":"b does not resolve","hops":[{"hop":"dns","ok":false,"ms":2.3,"detail":"no"}]}]})");
  EXPECT_EQ(render_json({a}).substr(0, 40), R"({"cause":"ok","fix":"nothing to fix","en)");
  std::string text = render_text(b);
  EXPECT_NE(text.find("✗ dns"), std::string::npos);
  EXPECT_NE(text.find("cause: dns_failure"), std::string::npos);
}

}  // namespace
}  // namespace ballast::doctor
