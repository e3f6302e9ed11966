// `ballast sim`: an OpenAI-compatible upstream with real capacity limits and injectable faults,
// the local stand-in for OpenAI, Azure OpenAI or vLLM. Also runs inside `serve` for `provider: sim`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "downstream/http_server.hpp"
#include "sim/faults.hpp"

namespace ballast::sim {

struct SimOptions {
  std::vector<std::string> models;              // empty: any model is served
  std::string api_key;                          // empty: no key checked
  std::vector<std::string> azure_deployments;   // empty: any deployment
  std::vector<std::string> azure_api_versions;  // empty: any api-version
  int capacity = 0;                             // generations at once; 0 = unlimited
  int queue = 0;                                // requests waiting for capacity; 0 = unlimited
  Millis ttft{0};
  Millis itl{0};
  int tokens = 16;  // output tokens per answer (fewer if the request's max_tokens is lower)
  int64_t rpm = 0;
  int64_t tpm = 0;
  uint64_t seed = 0;
  bool cancel_on_disconnect = false;
  std::vector<Fault> faults;
  std::string tls_cert_file;
  std::string tls_key_file;
};

// Counters for GET /sim/stats (in_flight, max_in_flight and queued come from the capacity itself).
struct SimStats {
  uint64_t requests = 0;
  uint64_t model_listings = 0;  // of `requests`, GET /models (health checks ask it)
  uint64_t completed = 0;
  uint64_t cancelled = 0;
  uint64_t wasted = 0;  // generations that finished after their client had gone
  std::map<int, uint64_t> by_status;
};

class SimServer {
 public:
  SimServer(boost::asio::io_context& io, SimOptions options);
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;
  ~SimServer();

  std::string listen(const std::string& host_port);  // "" or an error message
  void start();
  uint16_t port() const;
  std::string address() const;
  void shutdown(Duration grace, std::function<void()> done);
  std::string stats_json() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ballast::sim
