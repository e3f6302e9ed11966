#include "config/config.hpp"

namespace ballast::config {

std::string_view provider_name(Provider p) {
  switch (p) {
    case Provider::openai:
      return "openai";
    case Provider::azure:
      return "azure";
    case Provider::sim:
      return "sim";
  }
  return "openai";
}

const Model* Config::find_model(std::string_view name) const {
  const Model* wildcard = nullptr;
  for (const auto& m : models) {
    if (m.name == name) return &m;
    if (m.name == "*" && !wildcard) wildcard = &m;
  }
  return wildcard;
}

PhaseBounds effective_bounds(const Config& config, const Model& model, const Endpoint& endpoint) {
  PhaseBounds b = config.timeouts;
  auto apply = [&b](const TimeoutOverrides& o) {
    if (o.connect) b.connect = *o.connect;
    if (o.first_byte) b.first_byte = *o.first_byte;
    if (o.first_token) b.first_token = *o.first_token;
    if (o.stream_idle) b.stream_idle = *o.stream_idle;
    if (o.total) b.total = *o.total;
  };
  apply(model.timeouts);
  apply(endpoint.timeouts);
  return b;
}

Millis effective_queue_timeout(const Config& config, const Model& model, const Endpoint& endpoint) {
  if (endpoint.timeouts.queue) return *endpoint.timeouts.queue;
  if (model.timeouts.queue) return *model.timeouts.queue;
  return config.queue_timeout;
}

}  // namespace ballast::config
