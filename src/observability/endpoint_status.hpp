// How the endpoints' live state is shown: Prometheus gauges for /metrics and the JSON of
// /ballast/status, both made from a snapshot taken under each model's lock.
#pragma once

#include <string>
#include <vector>

#include "policy/endpoint_pool.hpp"
#include "policy/patience.hpp"

namespace ballast {

// Gauges: in flight, queue depth, limits, health, rate-limit levels, by model and endpoint.
void render_endpoint_gauges(std::string& out, const std::vector<ModelView>& models);

// {"models":[{"name", retry budget, "endpoints":[{name, priority, weight, health, …, ejected_because,
//   last_failure, last_failure_ago_ms}]}],
//  "client_patience":[{client, model, patience_ms (null until learned), agreeing, give_ups, …}]}
std::string endpoint_status_json(const std::vector<ModelView>& models,
                                 const std::vector<PatienceBook::View>& patience = {});

}  // namespace ballast
