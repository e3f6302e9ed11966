#include "observability/endpoint_status.hpp"

#include <iterator>

#include <fmt/format.h>

#include "common/json_writer.hpp"
#include "observability/metrics.hpp"

namespace ballast {

namespace {

std::string_view health_name(OutlierState::State s) {
  switch (s) {
    case OutlierState::State::healthy:
      return "healthy";
    case OutlierState::State::ejected:
      return "ejected";
    case OutlierState::State::half_open:
      return "half_open";
  }
  return "healthy";
}

}  // namespace

void render_endpoint_gauges(std::string& out, const std::vector<ModelView>& models) {
  struct Row {
    std::string labels;
    const EndpointView* ep;
  };
  std::vector<Row> rows;
  for (const auto& m : models) {
    for (const auto& ep : m.endpoints)
      rows.push_back({label("model", m.name) + "," + label("endpoint", ep.name), &ep});
  }
  auto gauge = [&](std::string_view name, std::string_view help, auto value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const auto& r : rows) {
      if (auto v = value(*r.ep)) fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, r.labels, *v);
    }
  };
  using V = std::optional<double>;
  gauge("ballast_in_flight", "Requests in flight to each endpoint.",
        [](const EndpointView& e) { return V(e.in_flight); });
  gauge("ballast_queue_depth", "Requests waiting for one of the endpoint's max_in_flight slots.",
        [](const EndpointView& e) { return V(e.queued); });
  gauge("ballast_max_in_flight", "The endpoint's concurrency limit (adapted when max_in_flight: auto).",
        [](const EndpointView& e) { return e.max_in_flight ? V(*e.max_in_flight) : V(); });
  gauge("ballast_endpoint_healthy", "1 unless outlier detection has ejected the endpoint.",
        [](const EndpointView& e) { return V(e.health == OutlierState::State::ejected ? 0 : 1); });
  gauge("ballast_rpm_available", "Requests the endpoint's rpm limiter would let through now.",
        [](const EndpointView& e) { return e.rpm_available; });
  gauge("ballast_tpm_available", "Tokens the endpoint's tpm limiter would let through now.",
        [](const EndpointView& e) { return e.tpm_available; });
}

void render_shared_limits_gauges(std::string& out, const SharedLimitsView& redis) {
  fmt::format_to(
      std::back_inserter(out),
      "# HELP ballast_redis_shared 1 while Redis holds the limits shared by every replica; 0 while "
      "this replica keeps its share of them locally.\n"
      "# TYPE ballast_redis_shared gauge\n"
      "ballast_redis_shared {}\n"
      "# HELP ballast_redis_fallbacks_total Times the shared limits fell back to local shares "
      "(Redis unreachable or slow).\n"
      "# TYPE ballast_redis_fallbacks_total counter\n"
      "ballast_redis_fallbacks_total {}\n",
      redis.shared ? 1 : 0, redis.fallbacks);
}

std::string endpoint_status_json(const std::vector<ModelView>& models,
                                 const std::vector<PatienceBook::View>& patience,
                                 const std::optional<SharedLimitsView>& redis) {
  JsonWriter w;
  w.begin_object().key("models").begin_array();
  for (const auto& m : models) {
    w.begin_object().field("name", m.name);
    w.field("retry_budget_used", m.retry_budget_used).field("retry_budget_allowed", m.retry_budget_allowed);
    w.key("endpoints").begin_array();
    for (const auto& ep : m.endpoints) {
      w.begin_object().field("name", ep.name).field("priority", ep.priority).field("weight", ep.weight);
      w.field("health", health_name(ep.health));
      if (ep.health == OutlierState::State::ejected)
        w.field("ejected_for_ms", std::chrono::duration<double, std::milli>(ep.ejected_for).count());
      w.field("in_flight", ep.in_flight).field("queued", ep.queued);
      if (ep.max_in_flight) w.field("max_in_flight", *ep.max_in_flight);
      w.field("window_requests", ep.window_requests).field("window_failures", ep.window_failures);
      // In ballast's words, its code first: what ejected it, and the latest failure counted against it.
      if (!ep.ejected_because.empty()) w.field("ejected_because", ep.ejected_because);
      if (!ep.last_failure.empty()) {
        w.field("last_failure", ep.last_failure);
        if (ep.last_failure_ago)
          w.field("last_failure_ago_ms",
                  std::chrono::duration<double, std::milli>(*ep.last_failure_ago).count());
      }
      w.end_object();
    }
    w.end_array().end_object();
  }
  w.end_array();
  // What the give-ups of clients that send no deadline taught (policy/patience).
  w.key("client_patience").begin_array();
  for (const auto& p : patience) {
    w.begin_object().field("client", p.client).field("model", p.model);
    if (p.patience)
      w.field("patience_ms", std::chrono::duration<double, std::milli>(*p.patience).count());
    else
      w.key("patience_ms").null();
    w.field("agreeing", p.agreeing).field("give_ups", p.give_ups);
    w.field("last_give_up_ago_s", std::chrono::duration<double>(p.since_last).count());
    w.end_object();
  }
  w.end_array();
  if (redis) {
    w.key("redis").begin_object().field("url", redis->url);
    w.field("limits", redis->shared ? "shared" : "local");
    if (!redis->shared) w.field("why", redis->why);
    w.field("for_ms", std::chrono::duration<double, std::milli>(redis->for_how_long).count());
    w.field("replicas", redis->replicas).field("fallbacks", redis->fallbacks);
    w.end_object();
  }
  w.end_object();
  return w.take();
}

}  // namespace ballast
