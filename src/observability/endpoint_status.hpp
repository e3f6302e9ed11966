// How the endpoints' live state is shown: Prometheus gauges for /metrics and the JSON of
// /ballast/status, both made from a snapshot taken under each model's lock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/endpoint_pool.hpp"
#include "policy/patience.hpp"

namespace ballast {

// Where the limits shared through Redis stand (redis: configured; gateway/shared_limits).
struct SharedLimitsView {
  std::string url;  // without a password
  bool shared = false;
  std::string why;  // while not shared: what is wrong
  Duration for_how_long{0};
  int replicas = 1;
  uint64_t fallbacks = 0;  // times the limits went local since the start
};

// Gauges: in flight, queue depth, limits, health, rate-limit levels, by model and endpoint.
void render_endpoint_gauges(std::string& out, const std::vector<ModelView>& models);
// ballast_redis_shared (1 while Redis holds the shared limits) and ballast_redis_fallbacks_total.
void render_shared_limits_gauges(std::string& out, const SharedLimitsView& redis);

// {"models":[{"name", retry budget, "endpoints":[{name, priority, weight, health, …, ejected_because,
//   last_failure, last_failure_ago_ms}]}],
//  "client_patience":[{client, model, patience_ms (null until learned), agreeing, give_ups, …}],
//  "redis": {url, limits: "shared" | "local", why, for_ms, replicas, fallbacks} (when configured)}
std::string endpoint_status_json(const std::vector<ModelView>& models,
                                 const std::vector<PatienceBook::View>& patience = {},
                                 const std::optional<SharedLimitsView>& redis = std::nullopt);

}  // namespace ballast
