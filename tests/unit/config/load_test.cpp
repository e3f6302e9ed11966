#include "config/load.hpp"

#include <gtest/gtest.h>

#include <map>

namespace ballast::config {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

const GetEnv no_env = env_of({});

TEST(ConfigLoad, TheBriefsShapeLoads) {
  auto r =
      load_yaml(R"(listen: 127.0.0.1:4100
models:
  - name: gpt-4o-mini
    timeouts: {first_token: 20s}
    endpoints:
      - provider: openai
        base_url: https://api.openai.com/v1
        api_key: ${OPENAI_API_KEY}
        timeouts: {connect: 2s}
      - provider: azure
        endpoint: https://my-resource.openai.azure.com
        deployment: gpt-4o-mini-prod
        api_version: 2024-10-21
        api_key: ${AZURE_OPENAI_API_KEY}
timeouts: {connect: 5s, first_byte: 60s, first_token: 60s, stream_idle: 30s, total: 600s}
keys:
  - key: ${TEAM_A_KEY}
    models: [gpt-4o-mini]
)",
                "ballast.yaml",
                env_of({{"OPENAI_API_KEY", "sk-1"}, {"AZURE_OPENAI_API_KEY", "az"}, {"TEAM_A_KEY", "team"}}));
  ASSERT_TRUE(r.ok()) << r.errors.front();
  const Config& c = r.config;
  EXPECT_EQ(c.listen, "127.0.0.1:4100");
  ASSERT_EQ(c.models.size(), 1u);
  const Model& m = c.models[0];
  ASSERT_EQ(m.endpoints.size(), 2u);
  EXPECT_EQ(m.endpoints[0].api_key, "sk-1");
  EXPECT_EQ(m.endpoints[0].name, "api.openai.com:443");
  EXPECT_EQ(m.endpoints[1].provider, Provider::azure);
  EXPECT_EQ(c.keys[0].key, "team");
  // Timeouts layer: endpoint over model over global.
  PhaseBounds b = effective_bounds(c, m, m.endpoints[0]);
  EXPECT_EQ(b.connect, Millis(2'000));
  EXPECT_EQ(b.first_token, Millis(20'000));
  EXPECT_EQ(b.stream_idle, Millis(30'000));
  EXPECT_EQ(effective_bounds(c, m, m.endpoints[1]).connect, Millis(5'000));
}

TEST(ConfigLoad, ReportsEveryProblemWithFileLineAndKey) {
  auto r = load_yaml(R"(listen: nowhere
models:
  - name: a
    endpoints:
      - provider: openai
        base_url: localhost:8000/v1
        max_inflight: 3
      - provider: azure
        endpoint: https://x.openai.azure.com
  - name: a
    endpoints:
      - provider: sim
timeouts: {connect: 5}
colour: blue
)",
                     "bad.yaml", no_env);
  ASSERT_FALSE(r.ok());
  auto has = [&](std::string_view needle) {
    for (const auto& e : r.errors) {
      if (e.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("bad.yaml:1: listen: 'nowhere' is not HOST:PORT"));
  EXPECT_TRUE(
      has("bad.yaml:6: models[0].endpoints[0].base_url: 'localhost:8000/v1' must start with http:// or "
          "https://"));
  EXPECT_TRUE(has("bad.yaml:7: models[0].endpoints[0].max_inflight: unknown key"));
  EXPECT_TRUE(has("models[0].endpoints[1].deployment: is required for provider azure"));
  EXPECT_TRUE(has("models[0].endpoints[1].api_key: is required for provider azure"));
  EXPECT_TRUE(has("bad.yaml:8: models[0].endpoints[1].api_version: is required for provider azure"));
  EXPECT_TRUE(has("bad.yaml:10: models[1].name: model 'a' is declared twice"));
  EXPECT_TRUE(has("bad.yaml:13: timeouts.connect: '5' is not a positive duration"));
  EXPECT_TRUE(has("bad.yaml:14: colour: unknown key"));
  EXPECT_EQ(r.errors.size(), 9u);
  EXPECT_TRUE(r.errors.front().starts_with("bad.yaml:1: listen")) << "sorted by line";
  EXPECT_TRUE(r.errors.back().starts_with("bad.yaml:14: colour")) << "sorted by line";
}

TEST(ConfigLoad, ResilienceKeys) {
  auto r = load_yaml(R"(models:
  - name: m
    retries: {max_attempts: 2}
    endpoints:
      - base_url: http://127.0.0.1:8000/v1
        max_in_flight: 8
        queue: 50
        weight: 3
        priority: 1
        rpm: 600
        tpm: 100000
        health_check: {interval: 2s}
      - base_url: http://127.0.0.1:8001/v1
        max_in_flight: auto
        health_check: false
timeouts: {queue: 5s}
retries: {base: 100ms, cap: 2s, budget_ratio: 0.5, budget_min_per_s: 3}
outlier: {consecutive_failures: 3, base_ejection: 10s, max_ejection: 1m}
keys:
  - key: k
    rpm: 60
    tpm: 1000
)",
                     "ok.yaml", no_env);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  const Config& c = r.config;
  const Model& m = c.models[0];
  EXPECT_EQ(m.retries.max_attempts, 2);
  EXPECT_EQ(m.retries.base, Millis(100)) << "the model inherits the global policy key by key";
  EXPECT_EQ(c.retries.max_attempts, 3);
  EXPECT_DOUBLE_EQ(c.retries.budget_ratio, 0.5);
  EXPECT_EQ(c.outlier.consecutive_failures, 3);
  EXPECT_EQ(c.outlier.max_ejection, Millis(60'000));
  const Endpoint& a = m.endpoints[0];
  EXPECT_EQ(a.admission.max_in_flight, 8);
  EXPECT_EQ(a.admission.queue_size, 50);
  EXPECT_DOUBLE_EQ(a.weight, 3);
  EXPECT_EQ(a.priority, 1);
  EXPECT_DOUBLE_EQ(a.rpm, 600);
  EXPECT_DOUBLE_EQ(a.tpm, 100000);
  EXPECT_EQ(a.health_check.enabled, true);
  EXPECT_EQ(a.health_check.interval, Millis(2'000));
  EXPECT_TRUE(m.endpoints[1].admission.adaptive);
  EXPECT_EQ(m.endpoints[1].health_check.enabled, false);
  EXPECT_EQ(effective_queue_timeout(c, m, a), Millis(5'000));
  EXPECT_DOUBLE_EQ(c.keys[0].rpm, 60);
}

TEST(ConfigLoad, ResilienceKeysAreChecked) {
  auto r = load_yaml(R"(models:
  - name: m
    endpoints:
      - base_url: http://127.0.0.1:8000/v1
        max_in_flight: lots
        weight: -1
      - base_url: http://127.0.0.1:8001/v1
        queue: 10
        health_check: {path: models}
retries: {max_attempts: 0}
)",
                     "bad.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 5u);
  EXPECT_EQ(r.errors[0],
            "bad.yaml:5: models[0].endpoints[0].max_in_flight: 'lots' is not a whole number from 1 to "
            "100000, or auto");
  EXPECT_EQ(r.errors[1], "bad.yaml:6: models[0].endpoints[0].weight: '-1' is not a number from 0 to 1000000");
  EXPECT_EQ(r.errors[2],
            "bad.yaml:8: models[0].endpoints[1].queue: only applies with max_in_flight: requests queue for "
            "its slots");
  EXPECT_EQ(r.errors[3], "bad.yaml:9: models[0].endpoints[1].health_check.path: 'models' must start with /");
  EXPECT_EQ(r.errors[4], "bad.yaml:10: retries.max_attempts: '0' is not a whole number from 1 to 10");
}

TEST(ConfigLoad, ClientPatienceIsLearnedUnlessTurnedOff) {
  const std::string models = "models:\n  - name: m\n    endpoints: [{base_url: http://127.0.0.1:8000/v1}]\n";
  EXPECT_TRUE(load_yaml(models, "a.yaml", no_env).config.learn_patience);
  EXPECT_FALSE(
      load_yaml("timeouts: {client_patience: off}\n" + models, "a.yaml", no_env).config.learn_patience);
  auto r =
      load_yaml("timeouts:\n  client_patience: maybe\n" + models + "    timeouts: {client_patience: learn}\n",
                "bad.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0], "bad.yaml:2: timeouts.client_patience: 'maybe' is not learn or off");
  // Top-level only: it is about clients, not about one model's upstream.
  EXPECT_EQ(r.errors[1].rfind("bad.yaml:6: models[0].timeouts.client_patience: unknown key", 0), 0u)
      << r.errors[1];
}

TEST(ConfigLoad, LimitsAreCheckedAndNeverOverflow) {
  auto r = load_yaml(R"(models:
  - name: m
    endpoints:
      - base_url: http://127.0.0.1:8000/v1
admin_listen: nowhere
limits:
  max_request_body: 17179869184GiB
  max_connections: 0
  max_buffered_bytes: 64MiB
)",
                     "limits.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0], "limits.yaml:5: admin_listen: 'nowhere' is not HOST:PORT");
  EXPECT_EQ(r.errors[1], "limits.yaml:7: limits.max_request_body: '17179869184GiB' is too large");
  EXPECT_EQ(r.errors[2].substr(0, 41), "limits.yaml:8: limits.max_connections: '0");
  auto ok = load_yaml(
      "models: [{name: m, endpoints: [{base_url: 'http://h:1/v1'}]}]\n"
      "admin_listen: 127.0.0.1:9100\nlimits: {max_connections: 50, max_buffered_bytes: 1MiB}\n",
      "ok.yaml", no_env);
  ASSERT_TRUE(ok.ok()) << ok.errors[0];
  EXPECT_EQ(ok.config.admin_listen, "127.0.0.1:9100");
  EXPECT_EQ(ok.config.max_connections, 50);
  EXPECT_EQ(ok.config.max_buffered_bytes, size_t{1} << 20);
}

TEST(ConfigLoad, FallbackKeys) {
  auto r = load_yaml(R"(models:
  - name: gpt-4o
    fallback_on: [context_length_exceeded, content_filter]
    retries: {max_same_wait: 1s}
    endpoints:
      - provider: azure
        endpoint: https://res.openai.azure.com
        deployment: gpt-4o-prod
        api_version: 2024-10-21
        api_key: k
      - base_url: http://127.0.0.1:8000/v1
        model: meta-llama/Llama-3.1-8B-Instruct
        priority: 1
outlier: {min_requests: 20, window: 30s, failure_rate: 25%}
)",
                     "f.yaml", no_env);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const Model& m = r.config.models[0];
  EXPECT_EQ(m.fallback_on, (std::vector<std::string>{"context_length_exceeded", "content_filter"}));
  EXPECT_EQ(m.retries.max_same_wait, Millis(1'000));
  EXPECT_EQ(m.endpoints[0].model, "");
  EXPECT_EQ(m.endpoints[1].model, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(r.config.outlier.min_requests, 20);
  EXPECT_EQ(r.config.outlier.window, Millis(30'000));
  EXPECT_DOUBLE_EQ(r.config.outlier.failure_rate, 0.25);
}

TEST(ConfigLoad, FallbackKeysAreChecked) {
  auto r = load_yaml(R"(models:
  - name: m
    fallback_on: [context_length_exceeded]
    endpoints:
      - base_url: http://127.0.0.1:8000/v1
        model: ""
outlier: {failure_rate: 150%}
)",
                     "f.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(
      r.errors[0],
      "f.yaml:3: models[0].fallback_on: sends a request to the next tier, but every endpoint of this model "
      "has the same priority: give the fallback endpoint a higher priority (e.g. priority: 1)");
  EXPECT_EQ(r.errors[1], "f.yaml:6: models[0].endpoints[0].model: must not be empty");
  EXPECT_EQ(r.errors[2],
            "f.yaml:7: outlier.failure_rate: '150%' is not a share above 0 and at most 1 (e.g. 0.5 or 50%)");
}

TEST(ConfigLoad, HeaderValuesCannotCarryLineBreaksAndSecretsAreNotShown) {
  auto r = load_yaml(R"(models:
  - name: m
    endpoints:
      - base_url: http://127.0.0.1:8000/v1
        api_key: ${KEY}
        proxy: "http://user:hunter2@proxy:3128 x"
)",
                     "s.yaml", env_of({{"KEY", "sk-abc\r\nx-injected: 1"}}));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(
      r.errors[0],
      "s.yaml:5: models[0].endpoints[0].api_key: must not contain a line break or a NUL character (the value "
      "is not shown)");
  EXPECT_EQ(r.errors[1].find("hunter2"), std::string::npos) << r.errors[1];
  EXPECT_NE(r.errors[1].find("***@proxy"), std::string::npos) << r.errors[1];
}

TEST(ConfigLoad, UnsetVariablesAreErrorsUnlessDefaulted) {
  auto r = load_yaml(R"(models:
  - name: m
    endpoints:
      - base_url: ${BASE:-http://127.0.0.1:8000/v1}
        api_key: ${MISSING_KEY}
)",
                     "c.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0],
            "c.yaml:5: models[0].endpoints[0].api_key: environment variable MISSING_KEY is not set "
            "(use ${MISSING_KEY:-default} for a default)");
}

TEST(ConfigLoad, YamlSyntaxErrorsNameTheLine) {
  auto r = load_yaml("models:\n  - name: [unclosed\n", "s.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(r.errors[0].starts_with("s.yaml:")) << r.errors[0];
  EXPECT_NE(r.errors[0].find("YAML syntax"), std::string::npos);
}

TEST(ConfigLoad, KeysMayOnlyNameConfiguredModels) {
  auto r = load_yaml(R"(models:
  - name: m
    endpoints: [{provider: sim}]
keys:
  - key: k
    models: [m, other]
)",
                     "k.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "k.yaml:6: keys[0].models[1]: no model 'other' is configured");
}

TEST(ConfigLoad, WorkersIsAWholeNumberInRange) {
  auto ok = load_yaml("workers: 4\nmodels: [{name: m, endpoints: [{provider: sim}]}]\n", "w.yaml", no_env);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.config.workers, 4);
  auto bad =
      load_yaml("workers: many\nmodels: [{name: m, endpoints: [{provider: sim}]}]\n", "w.yaml", no_env);
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0], "w.yaml:1: workers: 'many' is not a whole number from 0 to 256");
}

TEST(ConfigRedis, ReadsTheSectionAndKeepsThePasswordOutOfTheUrl) {
  auto r = load_yaml(R"(redis:
  url: redis://:s3cret@10.0.0.5:6380/2
  prefix: "team-a:"
  timeout: 20ms
  lease_ttl: 10s
  replicas: 3
models:
  - name: m
    endpoints:
      - {base_url: http://127.0.0.1:8000/v1, max_in_flight: 8, rpm: 600}
      - {base_url: http://127.0.0.1:8001/v1, max_in_flight: 8, shared: false}
)",
                     "r.yaml", no_env);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  ASSERT_TRUE(r.config.redis);
  const Redis& redis = *r.config.redis;
  EXPECT_EQ(redis.host, "10.0.0.5");
  EXPECT_EQ(redis.port, 6380);
  EXPECT_EQ(redis.db, 2);
  EXPECT_EQ(redis.password, "s3cret");
  EXPECT_EQ(redis.url, "redis://10.0.0.5:6380/2");
  EXPECT_EQ(redis.prefix, "team-a:");
  EXPECT_EQ(redis.timeout, Millis(20));
  EXPECT_EQ(redis.lease_ttl, Millis(10'000));
  EXPECT_EQ(redis.replicas, 3);
  EXPECT_TRUE(r.config.models[0].endpoints[0].shared);
  EXPECT_FALSE(r.config.models[0].endpoints[1].shared);
}

TEST(ConfigRedis, DefaultsAndAPasswordFromTheEnvironment) {
  auto r = load_yaml(
      "redis: {url: redis://cache, password: \"${REDIS_PASSWORD}\"}\nmodels: [{name: m, endpoints: "
      "[{provider: sim}]}]\n",
      "r.yaml", env_of({{"REDIS_PASSWORD", "pw"}}));
  ASSERT_TRUE(r.ok()) << r.errors.front();
  const Redis& redis = *r.config.redis;
  EXPECT_EQ(redis.host, "cache");
  EXPECT_EQ(redis.port, 6379);
  EXPECT_EQ(redis.db, 0);
  EXPECT_EQ(redis.password, "pw");
  EXPECT_EQ(redis.prefix, "ballast:");
  EXPECT_EQ(redis.timeout, Millis(50));
  EXPECT_EQ(redis.lease_ttl, Millis(30'000));
  EXPECT_EQ(redis.replicas, 1);
  EXPECT_FALSE(
      load_yaml("models: [{name: m, endpoints: [{provider: sim}]}]\n", "r.yaml", no_env).config.redis);
}

TEST(ConfigRedis, MistakesNameLineAndKeyAndNeverThePassword) {
  auto r = load_yaml(R"(redis:
  url: rediss://:hunter2@cache:6379
  timeout: 2s
  lease_ttl: 100ms
  replicas: 0
  colour: red
models: [{name: m, endpoints: [{provider: sim, shared: maybe}]}]
)",
                     "r.yaml", no_env);
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e + "\n";
  EXPECT_NE(all.find("r.yaml:2: redis.url: rediss:// (TLS) is not supported"), std::string::npos) << all;
  EXPECT_NE(all.find("r.yaml:3: redis.timeout: must be at most 1s"), std::string::npos) << all;
  EXPECT_NE(all.find("r.yaml:4: redis.lease_ttl: must be at least 1s"), std::string::npos) << all;
  EXPECT_NE(all.find("r.yaml:5: redis.replicas: '0' is not a whole number from 1 to 10000"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("r.yaml:6: redis.colour: unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find("shared: 'maybe' is not true or false"), std::string::npos) << all;
  EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;

  for (const char* url : {"http://cache:6379", "redis://", "redis://cache:99999", "redis://cache/x",
                          "redis://user:pw@cache", "redis://hunter2@cache", "redis://[::1",
                          "redis://:pw@127.0.0.1:6379:5", "redis://:p%4@cache", "redis://:p%-1@cache"}) {
    Redis out;
    EXPECT_FALSE(parse_redis_url(url, out).empty()) << url;
  }
  Redis escaped;
  EXPECT_EQ(parse_redis_url("redis://:p%40ss%25@cache", escaped), "");
  EXPECT_EQ(escaped.password, "p@ss%");
  EXPECT_EQ(escaped.url, "redis://cache:6379/0");
  Redis v6;
  EXPECT_EQ(parse_redis_url("redis://[::1]:7000/1", v6), "");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 7000);
  EXPECT_EQ(v6.url, "redis://[::1]:7000/1");
}

TEST(ConfigLoad, MissingFileSaysSo) {
  auto r = load_file("/nonexistent/ballast.yaml", no_env);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "/nonexistent/ballast.yaml: cannot read the config file");
}

TEST(ConfigEnvironment, NothingSetMeansNotFound) {
  EXPECT_FALSE(from_environment(no_env).found);
}

TEST(ConfigEnvironment, OpenAiVariablesFrontAnyModel) {
  auto e =
      from_environment(env_of({{"OPENAI_API_KEY", "sk-x"}, {"OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"}}));
  ASSERT_TRUE(e.found);
  ASSERT_TRUE(e.result.ok());
  const Config& c = e.result.config;
  ASSERT_NE(c.find_model("anything"), nullptr);
  EXPECT_EQ(c.find_model("anything")->endpoints[0].base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(c.find_model("anything")->endpoints[0].api_key, "sk-x");
}

TEST(ConfigEnvironment, AzureNeedsAllFourVariables) {
  auto e = from_environment(
      env_of({{"AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"}, {"AZURE_OPENAI_API_KEY", "k"}}));
  ASSERT_TRUE(e.found);
  ASSERT_EQ(e.result.errors.size(), 2u);
  EXPECT_EQ(e.result.errors[0], "environment: OPENAI_API_VERSION is not set (AZURE_OPENAI_ENDPOINT is)");
  EXPECT_EQ(e.result.errors[1], "environment: AZURE_OPENAI_DEPLOYMENT is not set (AZURE_OPENAI_ENDPOINT is)");
}

TEST(ConfigBuiltin, ServesTheSimulatedModel) {
  Config c = builtin_sim();
  ASSERT_NE(c.find_model("sim"), nullptr);
  EXPECT_EQ(c.find_model("gpt-4o"), nullptr);
  EXPECT_EQ(c.listen, "127.0.0.1:4000");
}

}  // namespace
}  // namespace ballast::config
