// A configuration file as an operator may write it (config/load), with a fake environment for
// ${NAME} and ${NAME:-default}. Loading never throws, reports every problem against the file's name,
// and a configuration it accepts holds what `serve` relies on without checking again.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "config/load.hpp"
#include "policy/url.hpp"

namespace {

const std::map<std::string, std::string>& environment() {
  static const std::map<std::string, std::string> env = {
      {"OPENAI_API_KEY", "sk-test-0123456789"},
      {"AZURE_OPENAI_API_KEY", "azure-test-key"},
      {"BASE_URL", "http://127.0.0.1:9000/v1"},
      {"PROXY", "http://user:secret@proxy.internal:3128"},
      {"EMPTY", ""},
      {"BROKEN", "line\r\nX-Injected: 1"},
  };
  return env;
}

const char* fake_getenv(const char* name) {
  auto it = environment().find(name);
  return it == environment().end() ? nullptr : it->second.c_str();
}

void check_accepted(const ballast::config::Config& c) {
  using ballast::config::Provider;
  FUZZ_CHECK(!c.models.empty());
  FUZZ_CHECK(c.workers >= 0 && c.workers <= 256);
  FUZZ_CHECK(c.max_request_bytes > 0 && c.max_sse_line > 0);
  FUZZ_CHECK(c.listen.rfind(':') != std::string::npos);
  std::set<std::string> names;
  for (const auto& m : c.models) {
    FUZZ_CHECK(!m.name.empty() && names.insert(m.name).second);
    FUZZ_CHECK(!m.endpoints.empty());
    FUZZ_CHECK(m.retries.max_attempts >= 1 && m.retries.max_attempts <= 10);
    FUZZ_CHECK(m.retries.base.count() > 0 && m.retries.cap.count() > 0);
    for (const auto& ep : m.endpoints) {
      FUZZ_CHECK(ep.priority >= 0 && ep.priority <= 100);
      FUZZ_CHECK(ep.weight >= 0 && ep.weight <= 1e6);
      if (ep.provider == Provider::openai) FUZZ_CHECK(ballast::parse_url(ep.base_url).has_value());
      if (ep.provider == Provider::azure) FUZZ_CHECK(!ep.api_key.empty());
      if (!ep.proxy.empty()) FUZZ_CHECK(ballast::parse_url(ep.proxy).has_value());
      // Values that end up in headers cannot carry a header of their own.
      for (const std::string* v : {&ep.api_key, &ep.name, &ep.model, &ep.deployment}) {
        FUZZ_CHECK(v->find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
      }
    }
  }
  for (const auto& k : c.keys) FUZZ_CHECK(!k.key.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ballast::GetEnv getenv = fake_getenv;

  auto result = ballast::config::load_yaml(text, "fuzz.yaml", getenv);
  for (const auto& e : result.errors) FUZZ_CHECK(e.starts_with("fuzz.yaml"));
  if (result.ok()) check_accepted(result.config);

  std::vector<std::string> missing;
  ballast::config::expand_env(text, getenv, missing);
  for (const auto& name : missing) FUZZ_CHECK(!fake_getenv(name.c_str()) || !*fake_getenv(name.c_str()));
  return 0;
}
