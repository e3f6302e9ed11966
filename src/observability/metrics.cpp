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

void Metrics::request(std::string_view model, std::string_view endpoint, ErrorCode code, double seconds) {
  std::string model_endpoint = label("model", model) + "," + label("endpoint", endpoint);
  std::string key = model_endpoint + "," + label("code", code_name(code));
  std::lock_guard lock(mu_);
  ++requests_[key];
  request_seconds_[model_endpoint].observe(seconds);
}

void Metrics::attempt(std::string_view endpoint, ErrorCode code, const PhaseTimings& t) {
  std::string ep = label("endpoint", endpoint);
  std::string key = ep + "," + label("code", code_name(code));
  std::lock_guard lock(mu_);
  ++attempts_[key];
  auto phase = [&](std::string_view name, const std::optional<double>& ms) {
    if (ms) phase_seconds_[ep + "," + label("phase", name)].observe(*ms / 1000);
  };
  phase("connect", t.connect_ms);
  phase("first_byte", t.first_byte_ms);
  phase("first_token", t.first_token_ms);
  phase("total", t.total_ms);
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

void Metrics::queue_wait(std::string_view endpoint, double seconds) {
  std::string key = label("endpoint", endpoint);
  std::lock_guard lock(mu_);
  queue_wait_seconds_[key].observe(seconds);
}

void Metrics::ejection(std::string_view endpoint) {
  std::string key = label("endpoint", endpoint);
  std::lock_guard lock(mu_);
  ++ejections_[key];
}

namespace {

void counters(std::string& out, std::string_view name, std::string_view help,
              const std::map<std::string, uint64_t>& values) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} counter\n", name, help, name);
  for (const auto& [labels, v] : values)
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, v);
}

template <typename H>
void histograms(std::string& out, std::string_view name, std::string_view help,
                const std::map<std::string, H>& values) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (const auto& [labels, h] : values) {
    for (size_t i = 0; i < Metrics::kBuckets.size(); ++i) {
      fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels,
                     Metrics::kBuckets[i], h.counts[i]);
    }
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, h.count);
    fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum, name,
                   labels, h.count);
  }
}

}  // namespace

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  counters(out, "ballast_requests_total",
           "Requests answered, by model, the endpoint that answered, and code.", requests_);
  histograms(out, "ballast_request_duration_seconds", "Time from request to the end of the answer.",
             request_seconds_);
  counters(out, "ballast_attempts_total", "Upstream attempts, by endpoint and outcome code.", attempts_);
  counters(out, "ballast_retries_total", "Retries made, by what the attempt before failed with.", retries_);
  counters(out, "ballast_retries_denied_total",
           "Retries wanted but not made: budget, deadline, retry_after_cap or max_attempts.",
           retries_denied_);
  histograms(out, "ballast_phase_seconds", "Upstream attempt phases, from the attempt's start.",
             phase_seconds_);
  histograms(out, "ballast_queue_wait_seconds",
             "Time requests waited for one of an endpoint's max_in_flight slots.", queue_wait_seconds_);
  counters(out, "ballast_ejections_total", "Endpoints ejected by outlier detection.", ejections_);
  return out;
}

}  // namespace ballast
