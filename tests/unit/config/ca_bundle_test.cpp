// Which CA bundle an endpoint trusts: its own ca_bundle:, else REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
// SSL_CERT_FILE in that order, else the system's; and a variable naming a file that cannot be
// read is an error naming the variable, never a silent fallback.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "config/load.hpp"

namespace ballast::config {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  auto held = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [held](const char* name) -> const char* {
    auto it = held->find(name);
    return it == held->end() ? nullptr : it->second.c_str();
  };
}

TEST(CaBundle, ConfiguredWinsThenTheMostSpecificVariable) {
  const std::map<std::string, std::string> all = {
      {"SSL_CERT_FILE", "ssl.pem"}, {"CURL_CA_BUNDLE", "curl.pem"}, {"REQUESTS_CA_BUNDLE", "requests.pem"}};
  CaBundleChoice c = choose_ca_bundle("corp.pem", env_of(all));
  EXPECT_EQ(c.path, "corp.pem");
  EXPECT_EQ(c.source, "ca_bundle");
  c = choose_ca_bundle("", env_of(all));
  EXPECT_EQ(c.path, "requests.pem");
  EXPECT_EQ(c.source, "REQUESTS_CA_BUNDLE");
  c = choose_ca_bundle("", env_of({{"SSL_CERT_FILE", "ssl.pem"}, {"CURL_CA_BUNDLE", "curl.pem"}}));
  EXPECT_EQ(c.path, "curl.pem");
  EXPECT_EQ(c.source, "CURL_CA_BUNDLE");
  c = choose_ca_bundle("", env_of({{"SSL_CERT_FILE", "ssl.pem"}}));
  EXPECT_EQ(c.path, "ssl.pem");
  EXPECT_EQ(c.source, "SSL_CERT_FILE");
  // Set but empty counts as unset, as in the tools that read these variables.
  c = choose_ca_bundle(
      "", env_of({{"REQUESTS_CA_BUNDLE", ""}, {"CURL_CA_BUNDLE", ""}, {"SSL_CERT_FILE", "ssl.pem"}}));
  EXPECT_EQ(c.source, "SSL_CERT_FILE");
  c = choose_ca_bundle("", env_of({}));
  EXPECT_TRUE(c.path.empty());
  EXPECT_TRUE(c.source.empty());
}

class CaEnvironment : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ballast-ca-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    ca_ = (dir_ / "ca.pem").string();
    std::ofstream(ca_) << "-----BEGIN CERTIFICATE-----\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static Endpoint endpoint(std::string base_url) {
    Endpoint ep;
    ep.base_url = std::move(base_url);
    return ep;
  }

  std::filesystem::path dir_;
  std::string ca_;
};

TEST_F(CaEnvironment, AnHttpsEndpointWithoutCaBundleTakesTheVariable) {
  Endpoint ep = endpoint("https://llm.corp.example/v1");
  EXPECT_EQ(apply_ca_environment(ep, env_of({{"REQUESTS_CA_BUNDLE", ca_}})), "");
  EXPECT_EQ(ep.ca_bundle, ca_);
  EXPECT_EQ(ep.ca_bundle_source, "REQUESTS_CA_BUNDLE");
  // Azure's resource endpoint counts as the URL too.
  Endpoint az;
  az.provider = Provider::azure;
  az.endpoint = "https://res.openai.azure.com";
  EXPECT_EQ(apply_ca_environment(az, env_of({{"SSL_CERT_FILE", ca_}})), "");
  EXPECT_EQ(az.ca_bundle_source, "SSL_CERT_FILE");
}

TEST_F(CaEnvironment, AnExplicitCaBundleWinsEvenOverAVariableNamingNothing) {
  Endpoint ep = endpoint("https://llm.corp.example/v1");
  ep.ca_bundle = ca_;
  ep.ca_bundle_source = "ca_bundle";
  EXPECT_EQ(apply_ca_environment(ep, env_of({{"SSL_CERT_FILE", (dir_ / "nope.pem").string()}})), "");
  EXPECT_EQ(ep.ca_bundle, ca_);
  EXPECT_EQ(ep.ca_bundle_source, "ca_bundle");
}

TEST_F(CaEnvironment, PlainHttpAndTheSimulatorAreLeftAlone) {
  Endpoint http = endpoint("http://127.0.0.1:8000/v1");
  EXPECT_EQ(apply_ca_environment(http, env_of({{"SSL_CERT_FILE", (dir_ / "nope.pem").string()}})), "");
  EXPECT_TRUE(http.ca_bundle.empty());
  Endpoint sim;
  sim.provider = Provider::sim;
  EXPECT_EQ(apply_ca_environment(sim, env_of({{"SSL_CERT_FILE", ca_}})), "");
  EXPECT_TRUE(sim.ca_bundle.empty());
}

TEST_F(CaEnvironment, AVariableNamingAMissingFileOrADirectoryIsAnErrorNamingIt) {
  const std::string missing = (dir_ / "nope.pem").string();
  Endpoint ep = endpoint("https://llm.corp.example/v1");
  // The variable that wins decides: one after it that would work is no fallback for it.
  std::string problem =
      apply_ca_environment(ep, env_of({{"CURL_CA_BUNDLE", missing}, {"SSL_CERT_FILE", ca_}}));
  EXPECT_NE(problem.find("CURL_CA_BUNDLE names '" + missing + "', which is not a readable file"),
            std::string::npos)
      << problem;
  EXPECT_EQ(ep.ca_bundle, missing);
  Endpoint dir = endpoint("https://llm.corp.example/v1");
  EXPECT_NE(apply_ca_environment(dir, env_of({{"SSL_CERT_FILE", dir_.string()}})).find("SSL_CERT_FILE names"),
            std::string::npos);
}

TEST_F(CaEnvironment, ALoadedConfigurationReportsAVariableOnce) {
  LoadResult r = load_yaml(
      "models:\n"
      "  - name: a\n"
      "    endpoints:\n"
      "      - base_url: https://a.corp.example/v1\n"
      "      - base_url: https://b.corp.example/v1\n"
      "      - base_url: http://127.0.0.1:8000/v1\n",
      "ballast.yaml", env_of({}));
  ASSERT_TRUE(r.ok()) << r.errors.front();
  apply_ca_environment(r, env_of({{"SSL_CERT_FILE", (dir_ / "nope.pem").string()}}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].rfind("ballast.yaml: SSL_CERT_FILE names", 0), 0u) << r.errors[0];

  LoadResult good =
      load_yaml("models:\n  - name: a\n    endpoints:\n      - base_url: https://a.corp.example/v1\n",
                "ballast.yaml", env_of({}));
  apply_ca_environment(good, env_of({{"CURL_CA_BUNDLE", ca_}}));
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(good.config.models[0].endpoints[0].ca_bundle, ca_);
  EXPECT_EQ(good.config.models[0].endpoints[0].ca_bundle_source, "CURL_CA_BUNDLE");
}

TEST_F(CaEnvironment, AProviderFromTheEnvironmentTrustsTheVariableToo) {
  auto env = env_of(
      {{"OPENAI_BASE_URL", "https://llm.corp.example/v1"}, {"OPENAI_API_KEY", "k"}, {"SSL_CERT_FILE", ca_}});
  EnvironmentResult er = from_environment(env);
  ASSERT_TRUE(er.found);
  apply_ca_environment(er.result, env);
  EXPECT_TRUE(er.result.ok());
  EXPECT_EQ(er.result.config.models[0].endpoints[0].ca_bundle, ca_);
}

}  // namespace
}  // namespace ballast::config
