#include "gateway/gateway.hpp"

#include <sys/stat.h>

#include <fstream>
#include <random>

#include "policy/upstream_target.hpp"

namespace ballast {

Generation::Generation(config::Config c, Metrics& metrics, const GetEnv& getenv, Generation* previous,
                       SharedLimits* shared)
    : config(std::move(c)),
      upstreams(config, metrics, previous ? &previous->upstreams : nullptr, shared),
      number(previous ? previous->number + 1 : 1) {
  for (const auto& model : config.models) {
    for (const auto& ep : model.endpoints) {
      EndpointFacts f;
      if (auto url = parse_url(upstream_target(ep, "", "").url)) {
        f.scheme = url->scheme;
        f.host = url->host;
      }
      f.proxy = choose_proxy(f.scheme.empty() ? "http" : f.scheme, f.host, ep.proxy, getenv);
      f.endpoint_labels = Metrics::endpoint_labels(ep.name);
      f.model_endpoint_labels =
          Metrics::model_endpoint_labels(model.name, ep.name, ep.model.empty() ? model.name : ep.model);
      facts_.emplace(&ep, std::move(f));
    }
  }
}

Gateway::Gateway(boost::asio::io_context& io, std::shared_ptr<Generation> generation, AccessLog& access_log,
                 Metrics& metrics)
    : generation_(std::move(generation)), multi_(io), access_log_(access_log), metrics_(metrics) {
  in_container_ = running_in_container();
  std::random_device rd;
  id_prefix_ = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0xffffffffull;
}

std::string Gateway::next_request_id() {
  // A per-process random prefix and a counter: unique across restarts and cheap to make.
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = (id_prefix_ << 32) | (++id_counter_ & 0xffffffffull);
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 0xf];
  return id;
}

bool running_in_container() {
  // The guess below can be wrong (a CI runner in a container, a VM with a docker cgroup): the
  // variable settles it.
  if (const char* forced = std::getenv("BALLAST_CONTAINER"); forced && *forced)
    return std::string_view(forced) != "0";
  struct stat st {};
  if (::stat("/.dockerenv", &st) == 0 || ::stat("/run/.containerenv", &st) == 0) return true;
  if (std::getenv("KUBERNETES_SERVICE_HOST")) return true;
  std::ifstream cgroup("/proc/1/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    if (line.find("docker") != std::string::npos || line.find("kubepods") != std::string::npos ||
        line.find("containerd") != std::string::npos || line.find("libpod") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace ballast
