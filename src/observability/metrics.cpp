#include "observability/metrics.hpp"

#include <fmt/format.h>

namespace ballast {

std::string label(std::string_view name, std::string_view value) {
  std::string out;
  out.reserve(name.size() + value.size() + 3);
  out.append(name).append("=\"");
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void Metrics::Histogram::observe(double seconds) {
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++counts[i];
  }
  ++count;
  sum += seconds;
}

std::string Metrics::model_endpoint_labels(std::string_view model, std::string_view endpoint,
                                           std::string_view upstream_model) {
  return label("model", model) + "," + label("endpoint", endpoint) + "," +
         label("upstream_model", upstream_model);
}

std::string Metrics::endpoint_labels(std::string_view endpoint) {
  return label("endpoint", endpoint);
}

void Metrics::request(const std::string& model_endpoint, ErrorCode code, double seconds) {
  std::lock_guard lock(mu_);
  ++at(requests_, model_endpoint)[static_cast<size_t>(code)];
  at(request_seconds_, model_endpoint).observe(seconds);
}

void Metrics::attempt(const std::string& endpoint, ErrorCode code, const PhaseTimings& t) {
  std::lock_guard lock(mu_);
  ++at(attempts_, endpoint)[static_cast<size_t>(code)];
  auto& phases = at(phase_seconds_, endpoint);
  if (t.connect_ms) phases[connect].observe(*t.connect_ms / 1000);
  if (t.first_byte_ms) phases[first_byte].observe(*t.first_byte_ms / 1000);
  if (t.first_token_ms) phases[first_token].observe(*t.first_token_ms / 1000);
  phases[total].observe(t.total_ms / 1000);
}

void Metrics::queue_wait(const std::string& endpoint, double seconds) {
  std::lock_guard lock(mu_);
  at(queue_wait_seconds_, endpoint).observe(seconds);
}

void Metrics::retry(std::string_view model, ErrorCode reason) {
  std::string key = label("model", model) + "," + label("reason", code_name(reason));
  std::lock_guard lock(mu_);
  ++retries_[key];
}

void Metrics::retry_denied(std::string_view model, std::string_view why) {
  std::string key = label("model", model) + "," + label("why", why);
  std::lock_guard lock(mu_);
  ++retries_denied_[key];
}

void Metrics::ejection(std::string_view endpoint) {
  std::string key = label("endpoint", endpoint);
  std::lock_guard lock(mu_);
  ++ejections_[key];
}

void Metrics::malformed_events(std::string_view endpoint, int count) {
  std::string key = label("endpoint", endpoint);
  std::lock_guard lock(mu_);
  malformed_events_[key] += static_cast<uint64_t>(count);
}

namespace {

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void counters(std::string& out, std::string_view name, std::string_view help,
              const std::map<std::string, uint64_t>& values) {
  header(out, name, help, "counter");
  for (const auto& [labels, v] : values)
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, v);
}

template <typename ByCode>
void counters_by_code(std::string& out, std::string_view name, std::string_view help,
                      const std::map<std::string, ByCode, std::less<>>& values) {
  header(out, name, help, "counter");
  for (const auto& [labels, counts] : values) {
    for (size_t c = 0; c < counts.size(); ++c) {
      if (counts[c] == 0) continue;
      fmt::format_to(std::back_inserter(out), "{}{{{},{}}} {}\n", name, labels,
                     label("code", code_name(static_cast<ErrorCode>(c))), counts[c]);
    }
  }
}

template <typename H>
void histogram(std::string& out, std::string_view name, const std::string& labels, const H& h) {
  for (size_t i = 0; i < Metrics::kBuckets.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels,
                   Metrics::kBuckets[i], h.counts[i]);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, h.count);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum, name,
                 labels, h.count);
}

template <typename H>
void histograms(std::string& out, std::string_view name, std::string_view help,
                const std::map<std::string, H, std::less<>>& values) {
  header(out, name, help, "histogram");
  for (const auto& [labels, h] : values) histogram(out, name, labels, h);
}

}  // namespace

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  counters_by_code(out, "ballast_requests_total",
                   "Requests answered, by model, the endpoint that answered, and code.", requests_);
  histograms(out, "ballast_request_duration_seconds", "Time from request to the end of the answer.",
             request_seconds_);
  counters_by_code(out, "ballast_attempts_total", "Upstream attempts, by endpoint and outcome code.",
                   attempts_);
  counters(out, "ballast_retries_total", "Retries made, by what the attempt before failed with.", retries_);
  counters(out, "ballast_retries_denied_total",
           "Retries wanted but not made: budget, deadline, max_attempts or no_endpoint.",
           retries_denied_);
  header(out, "ballast_phase_seconds", "Upstream attempt phases, from the attempt's start.", "histogram");
  static constexpr std::array<std::string_view, kPhases> kPhaseNames = {"connect", "first_byte",
                                                                        "first_token", "total"};
  for (const auto& [labels, phases] : phase_seconds_) {
    for (size_t p = 0; p < phases.size(); ++p) {
      if (phases[p].count)
        histogram(out, "ballast_phase_seconds", labels + "," + label("phase", kPhaseNames[p]), phases[p]);
    }
  }
  histograms(out, "ballast_queue_wait_seconds",
             "Time requests waited for one of an endpoint's max_in_flight slots.", queue_wait_seconds_);
  counters(out, "ballast_ejections_total", "Endpoints ejected by outlier detection.", ejections_);
  counters(out, "ballast_malformed_events_total",
           "Stream events whose data was not JSON, dropped instead of relayed, by endpoint.", malformed_events_);
  return out;
}

}  // namespace ballast
