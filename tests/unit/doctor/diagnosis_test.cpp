#include "doctor/diagnosis.hpp"
#include "policy/url.hpp"

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

FixContext context(const Target& t);

TEST(DoctorConfig, PlaceholderKeysAreOnlyWhatIsWrittenAsOne) {
  for (const char* k : {"sk-xxxx",
                        "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
                        "SK-XXXXXXXX",
                        "sk-proj-xxxxxxxxxxxx",
                        "sk-...",
                        "sk-…",
                        "sk-",
                        "sk-...a1B2",
                        "xxxxxxxx",
                        "your-api-key",
                        "your_api_key",
                        "YOUR_API_KEY",
                        "YOUR_OPENAI_API_KEY_HERE",
                        "insert your key here",
                        "<OPENAI_API_KEY>",
                        "<your key>",
                        "changeme",
                        "CHANGE_ME",
                        "change-me",
                        "${OPENAI_API_KEY}",
                        "$OPENAI_API_KEY",
                        "",
                        "   "}) {
    EXPECT_TRUE(is_placeholder_key(k)) << "'" << k << "'";
  }
  // What local servers' docs tell users to set, vLLM's own example keys, and real-looking keys.
  for (const char* k :
       {"ollama", "EMPTY", "X", "lm-studio", "dummy", "none", "not-needed", "sk-no-key-required",
        "token-abc123", "sk-proj-4f8Jd93kLq0Zp", "sk-abcdefghijklmnop", "sk-proj-abc", "a1b2c3d4e5f6a7b8c9d0",
        "yourkey", "my-key", "sk-xxxxxxxxxxxxxxxxxxxxxxxxxx4f8J"}) {
    EXPECT_FALSE(is_placeholder_key(k)) << "'" << k << "'";
  }
}

TEST(DoctorConfig, HostKinds) {
  for (const char* h : {"localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]",
                        "0.0.0.0", "[::]", "[::ffff:127.0.0.1]"})
    EXPECT_EQ(host_kind(h), HostKind::loopback) << h;
  for (const char* h : {"10.0.0.5", "172.16.0.1", "172.31.255.255", "192.168.1.20", "169.254.1.1",
                        "100.64.0.1", "100.127.255.254", "[fd00::1]", "fc12::1", "[fe80::1%25eth0]",
                        "fe80::1%eth0", "[::ffff:10.1.2.3]", "host.docker.internal", "gpu-box.local",
                        "vllm.default.svc", "ollama.home.arpa", "nas.lan", "ollama.internal."})
    EXPECT_EQ(host_kind(h), HostKind::private_network) << h;
  for (const char* h : {"ollama", "vllm", "llm-server", "VLLM"})
    EXPECT_EQ(host_kind(h), HostKind::single_label) << h;
  // Near misses: outside every private range, or a public name that merely starts like one.
  for (const char* h : {"api.openai.com", "8.8.8.8", "172.15.0.1", "172.32.0.1", "192.169.0.1", "100.63.0.1",
                        "100.128.0.1", "169.255.0.1", "10.example.com", "2001:db8::1", "[2606:4700::1111]",
                        "res.openai.azure.com", "example.local.evil.com", ""})
    EXPECT_EQ(host_kind(h), HostKind::public_network) << h;
}

// Placeholder patterns × host kinds: the check applies to public hosts only, and even there only
// notes the key for the server to decide (a 401 names it; a 2xx clears it).
TEST(DoctorConfig, PlaceholderKeysMatterOnlyOnPublicHosts) {
  const char* local_urls[] = {
      "http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
      "http://10.0.0.7:8000/v1",   "http://[fd00::7]:8000/v1", "http://100.101.1.2:8000/v1",
      "http://ollama:11434/v1",    "http://vllm:8000/v1",      "http://host.docker.internal:1234/v1"};
  const char* placeholders[] = {"sk-xxxx", "your-api-key", "<key>", "changeme", "ollama", "EMPTY", "X"};
  for (const char* url : local_urls) {
    for (const char* key : placeholders) {
      ConfigCheck c = check_config(openai(url, key));
      EXPECT_EQ(c.cause, Cause::ok) << url << " " << key;
      EXPECT_FALSE(c.placeholder_key) << url << " " << key;
    }
  }
  for (const char* key : {"sk-xxxx", "your-api-key", "<key>", "changeme"}) {
    ConfigCheck c = check_config(openai("https://api.openai.com/v1", key));
    EXPECT_EQ(c.cause, Cause::ok) << key;  // nothing is concluded before the server is asked
    EXPECT_TRUE(c.placeholder_key) << key;
    EXPECT_NE(c.detail.find("looks like a placeholder"), std::string::npos) << c.detail;
  }
  for (const char* key : {"ollama", "EMPTY", "X", "sk-proj-4f8Jd93kLq0Zp"})
    EXPECT_FALSE(check_config(openai("https://llm.example.com/v1", key)).placeholder_key) << key;
}

// A variable's value is the literal key serve sends: "${FOO}" there is no reference to expand.
TEST(DoctorConfig, AReferenceInAVariablesValueIsALiteralKey) {
  ConfigCheck local = check_config(openai("http://127.0.0.1:8000/v1", "${FOO}"));
  EXPECT_EQ(local.cause, Cause::ok);
  EXPECT_FALSE(local.placeholder_key);
  ConfigCheck remote = check_config(openai("https://api.openai.com/v1", "${FOO}"));
  EXPECT_EQ(remote.cause, Cause::ok);  // the server decides, as for any placeholder
  EXPECT_TRUE(remote.placeholder_key);
  EXPECT_NE(remote.detail.find("'${FOO}' looks like an unexpanded placeholder: it is sent as written"),
            std::string::npos)
      << remote.detail;
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
  Target unset = openai("https://api.openai.com/v1", "${TEAM_KEY}");  // a config file's, TEAM_KEY unset
  unset.unset_key_variable = "TEAM_KEY";
  ConfigCheck missing = check_config(unset);
  EXPECT_EQ(missing.cause, Cause::missing_api_key);
  EXPECT_EQ(missing.detail, "TEAM_KEY is not set");
  EXPECT_EQ(check_config(openai("http://[fd00::7]:8000/v1", "")).cause, Cause::ok);
  EXPECT_EQ(check_config(openai("http://100.101.1.2:8000/v1", "")).cause, Cause::ok);  // a tailnet
  EXPECT_EQ(check_config(openai("https://10.example.com/v1", "")).cause, Cause::missing_api_key);
}

TEST(DoctorConfig, AnUnreadableCaBundleFromTheEnvironmentFailsAnHttpsTargetOnly) {
  Target t = openai("https://llm.example.com/v1");
  t.ep.ca_bundle = "missing.pem";
  t.ep.ca_bundle_source = "SSL_CERT_FILE";
  t.ca_problem = "SSL_CERT_FILE names 'missing.pem', which is not a readable file";
  ConfigCheck c = check_config(t);
  EXPECT_EQ(c.cause, Cause::tls_failure);
  EXPECT_EQ(c.detail, t.ca_problem);
  FixContext ctx = context(t);
  EXPECT_EQ(
      fix_for(Cause::tls_failure, ctx),
      "SSL_CERT_FILE names 'missing.pem', which is not a readable file: point it at the PEM file of the CA "
      "that signed llm.example.com's certificate (or a bundle holding it), or unset it to trust the "
      "system's CAs");
  t.ep.base_url = "http://127.0.0.1:8000/v1";
  EXPECT_EQ(check_config(t).cause, Cause::ok);
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

TEST(DoctorFix, TheSuggestedBaseUrl) {
  auto url = [](std::string_view base) {
    auto s = suggested_base_url(base);
    return s ? s->url : std::string("-");
  };
  EXPECT_EQ(url("http://127.0.0.1:8000"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/v2"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/api/v3/"), "http://127.0.0.1:8000/api/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/v1/chat/completions"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/v1/chat/completions/"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("https://api.example.com/openai/v1/models"), "https://api.example.com/openai/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/chat/completions"), "http://127.0.0.1:8000/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000/openai"), "http://127.0.0.1:8000/openai/v1");
  EXPECT_EQ(url("http://127.0.0.1:8000?x=1"), "http://127.0.0.1:8000/v1?x=1");
  EXPECT_EQ(url("http://127.0.0.1:8000/v1/chat/completions?x=1"), "http://127.0.0.1:8000/v1?x=1");
  EXPECT_EQ(url("http://[::1]:8000/v2"), "http://[::1]:8000/v1");
  // Already /v1: nothing likelier to suggest; nor for what does not parse.
  EXPECT_EQ(url("http://127.0.0.1:8000/v1"), "-");
  EXPECT_EQ(url("http://127.0.0.1:8000/v1?x=1"), "-");
  EXPECT_EQ(url("localhost:8000"), "-");
  EXPECT_EQ(suggested_base_url("http://h:1/v1/chat/completions")->why,
            "the base URL ends in /chat/completions, which the client adds itself");
  EXPECT_EQ(suggested_base_url("http://h:1/v2")->why, "the base URL ends in /v2, not /v1");
  EXPECT_EQ(suggested_base_url("http://h:1")->why, "the base URL lacks /v1");
}

TEST(DoctorFix, TheApiPathGoesBeforeTheQuery) {
  EXPECT_EQ(with_api_path("http://h:1/v1", "/models"), "http://h:1/v1/models");
  EXPECT_EQ(with_api_path("http://h:1/v1/", "/models"), "http://h:1/v1/models");
  EXPECT_EQ(with_api_path("http://h:1/v1?x=1", "/models"), "http://h:1/v1/models?x=1");
  EXPECT_EQ(with_api_path("http://h:1/v1/?x=1#frag", "/models"), "http://h:1/v1/models?x=1");
  Target t = openai("http://127.0.0.1:8000/v2?x=1");
  FixContext c = context(t);
  EXPECT_EQ(fix_for(Cause::wrong_path, c),
            "GET http://127.0.0.1:8000/v2/models?x=1 answered 404: the base URL ends in /v2, not /v1; use "
            "http://127.0.0.1:8000/v1?x=1");
}

// A 2xx is the API's answer only in the API's shape: what answered is named otherwise.
TEST(DoctorAnswer, WhatIsNotTheApisAnswer) {
  const std::string page =
      "<!DOCTYPE html>\n<html><head><TITLE>Welcome to nginx!</TITLE></head><body>…</body></html>";
  Answer models{Answer::Expect::models, "text/html", "nginx/1.27.0", page};
  EXPECT_EQ(not_the_api(models), "text/html (titled 'Welcome to nginx!', Server: nginx/1.27.0)");
  models.content_type = "application/json";
  models.server = "";
  models.body = R"({"status":"ok"})";
  EXPECT_EQ(not_the_api(models), "application/json without a data array");
  models.body = "{";
  EXPECT_EQ(not_the_api(models), "application/json that is not JSON");
  models.body = R"({"object":"list","data":[]})";
  EXPECT_EQ(not_the_api(models), "");  // an empty list is still a list
  models.content_type = "";
  models.body = "ok";
  EXPECT_EQ(not_the_api(models), "a body with no content type");

  Answer stream{Answer::Expect::stream, "application/json", "", R"({"error":{"message":"x"}})"};
  EXPECT_EQ(not_the_api(stream), "application/json, not an event stream");
  stream.content_type = "text/event-stream; charset=utf-8";
  EXPECT_EQ(not_the_api(stream), "");
  stream.content_type = "text/html; charset=UTF-8";
  stream.body = page;
  EXPECT_EQ(not_the_api(stream), "text/html (titled 'Welcome to nginx!'), not an event stream");

  Answer completion{Answer::Expect::completion, "application/json", "", R"({"choices":[]})"};
  EXPECT_EQ(not_the_api(completion), "");
  completion.body = R"({"data":[]})";
  EXPECT_EQ(not_the_api(completion), "application/json without a choices array");
}

TEST(DoctorFix, A2xxThatIsNotTheApisSaysWhatAnswered) {
  Target t = openai("http://127.0.0.1:8080/v1");
  FixContext c = context(t);
  c.status = 200;
  c.answered = "text/html (titled 'Welcome to nginx!', Server: nginx/1.27.0)";
  EXPECT_EQ(fix_for(Cause::upstream_reset, c),
            "127.0.0.1:8080 answered HTTP 200 with text/html (titled 'Welcome to nginx!', Server: "
            "nginx/1.27.0), likely nginx's own page: this is not an OpenAI-compatible API; check the base "
            "URL's host, port and path");
  c.answered = "application/json, not an event stream";
  c.upstream_message = "Simulated failure";
  std::string said = fix_for(Cause::upstream_reset, c);
  EXPECT_NE(said.find("answered HTTP 200 with application/json, not an event stream, holding an error: "
                      "'Simulated failure'"),
            std::string::npos)
      << said;
  EXPECT_EQ(said.find("proxy_read_timeout"), std::string::npos);
  // Closed before any of it came: not a stream that broke, and not "before answering" either.
  c.answered.clear();
  c.upstream_message.clear();
  c.detail = "the event stream closed before its first event";
  EXPECT_EQ(fix_for(Cause::upstream_reset, c).rfind("127.0.0.1:8080 answered HTTP 200, then closed", 0), 0u);
}

TEST(DoctorFix, AnErrorEventNamesTheServersOwnMessage) {
  Target t = openai("http://127.0.0.1:8080/v1");
  FixContext c = context(t);
  c.status = 200;
  c.upstream_message = "The model is overloaded";
  std::string fix = fix_for(Cause::upstream_status, c);
  EXPECT_NE(fix.find("'The model is overloaded'"), std::string::npos) << fix;
  EXPECT_EQ(fix.find("answered HTTP 200"), std::string::npos) << fix;
  c.status = 500;
  c.upstream_message = "boom";
  EXPECT_EQ(fix_for(Cause::upstream_status, c),
            "the server answered HTTP 500: boom: it is reachable but failing; check its logs");
}

TEST(DoctorFix, APlaceholderKeyIsNamedWithWhatTheServerSaid) {
  Target t = openai("https://api.openai.com/v1", "sk-xxxxxxxx");
  FixContext c = context(t);
  c.status = 401;
  EXPECT_EQ(
      fix_for(Cause::placeholder_api_key, c),
      "OPENAI_API_KEY holds a placeholder ('sk-xxxxxxxx'), which the server rejected (HTTP 401): put the "
      "real key from the provider's dashboard there");
}

TEST(DoctorFix, AnUntrustedCertificateNamesCaBundleAndTheVariables) {
  Target t = openai("https://127.0.0.1:8443/v1");
  FixContext c = context(t);
  c.detail = "SSL certificate problem: unable to get local issuer certificate";
  std::string fix = fix_for(Cause::tls_failure, c);
  for (const char* word : {"127.0.0.1:8443", "unable to get local issuer certificate", "the system's CAs",
                           "ca_bundle:", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"})
    EXPECT_NE(fix.find(word), std::string::npos) << word << " in " << fix;
  t.ep.ca_bundle = "corp-ca.pem";
  t.ep.ca_bundle_source = "CURL_CA_BUNDLE";
  EXPECT_NE(fix_for(Cause::tls_failure, c).find("checked against CURL_CA_BUNDLE (corp-ca.pem)"),
            std::string::npos);
  c.detail = "error:0A00010B:SSL routines::wrong version number";
  EXPECT_EQ(fix_for(Cause::tls_failure, c).rfind("the TLS handshake with 127.0.0.1:8443 failed", 0), 0u);
}

// Every hop's failure goes through the one classifier: a TLS failure is tls_failure at whichever
// hop met it (the handshake, the models list, the chat, a stream), never stream_broken.
TEST(DoctorClassify, TlsFailuresAreTlsFailuresAtEveryHop) {
  Outcome handshake;  // the tls hop, or curl failing verification before any response
  handshake.transport = TransportError::tls;
  handshake.detail = "SSL certificate problem: self-signed certificate";
  EXPECT_EQ(classify_probe(handshake), Cause::tls_failure);
  Outcome with_timings = handshake;  // the chat hop's stream request, with the timings it reached
  with_timings.timings.dns_ms = 0.1;
  with_timings.timings.connect_ms = 0.3;
  with_timings.timings.total_ms = 4;
  EXPECT_EQ(classify_probe(with_timings), Cause::tls_failure);
}

TEST(DoctorClassify, WhatEachProbeOutcomeMeans) {
  auto transport = [](TransportError e, int status = 0) {
    Outcome o;
    o.transport = e;
    o.status = status;
    return classify_probe(o);
  };
  EXPECT_EQ(transport(TransportError::none, 200), Cause::ok);
  EXPECT_EQ(transport(TransportError::dns), Cause::dns_failure);
  EXPECT_EQ(transport(TransportError::proxy), Cause::proxy_failure);
  EXPECT_EQ(transport(TransportError::connect_refused), Cause::connect_refused);
  EXPECT_EQ(transport(TransportError::connect_timeout), Cause::connect_timeout);
  EXPECT_EQ(transport(TransportError::reset), Cause::upstream_reset);  // before any answer
  EXPECT_EQ(transport(TransportError::other), Cause::upstream_reset);
  EXPECT_EQ(transport(TransportError::none, 401), Cause::upstream_status);  // each hop refines a status
  EXPECT_EQ(transport(TransportError::none, 500), Cause::upstream_status);
  // Broken, garbled or stalled only once a stream began (an SSE event came); before that, the
  // gateway's upstream_reset: a dropped connection, or a 2xx that is not the API's answer.
  Outcome reset_after_headers;
  reset_after_headers.transport = TransportError::reset;
  reset_after_headers.status = 200;
  reset_after_headers.truncated = true;
  EXPECT_EQ(classify_probe(reset_after_headers, true), Cause::stream_broken);
  EXPECT_EQ(classify_probe(reset_after_headers, false), Cause::upstream_reset);
  Outcome cut;
  cut.status = 200;
  cut.truncated = true;
  EXPECT_EQ(classify_probe(cut, true), Cause::stream_broken);
  EXPECT_EQ(classify_probe(cut, false), Cause::upstream_reset);
  Outcome garbled;
  garbled.status = 200;
  garbled.malformed = true;
  EXPECT_EQ(classify_probe(garbled, true), Cause::stream_broken);
  EXPECT_EQ(classify_probe(garbled, false), Cause::upstream_reset);  // a page, a JSON body
  Outcome stalled;
  stalled.timer = ErrorCode::stream_idle_timeout;
  EXPECT_EQ(classify_probe(stalled, true), Cause::stream_broken);
  Outcome error_event;
  error_event.status = 200;
  error_event.upstream_error = true;
  EXPECT_EQ(classify_probe(error_event), Cause::upstream_status);
  for (auto [timer, cause] : {std::pair{ErrorCode::first_byte_timeout, Cause::first_byte_timeout},
                              std::pair{ErrorCode::first_token_timeout, Cause::first_token_timeout}}) {
    Outcome o;
    o.timer = timer;
    EXPECT_EQ(classify_probe(o), cause) << code_name(timer);
  }
}

// Which of doctor's bounds ran out, by what had come: no headers is first_byte_timeout, whatever
// bound fired; headers without a token, first_token_timeout; tokens then silence, a stall.
TEST(DoctorClassify, WhichBoundRanOut) {
  EXPECT_EQ(expired_bound(false, true, false), ErrorCode::first_byte_timeout);   // blackhole, slow headers
  EXPECT_EQ(expired_bound(false, false, false), ErrorCode::first_byte_timeout);  // /models
  EXPECT_EQ(expired_bound(true, true, false), ErrorCode::first_token_timeout);
  EXPECT_EQ(expired_bound(true, true, true), ErrorCode::stream_idle_timeout);
  Outcome blackhole;
  blackhole.timer = expired_bound(false, true, false);
  EXPECT_EQ(classify_probe(blackhole), Cause::first_byte_timeout);
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
