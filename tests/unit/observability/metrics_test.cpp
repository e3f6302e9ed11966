#include "observability/metrics.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(Metrics, LabelsAreEscaped) {
  EXPECT_EQ(label("model", R"(a"b\c)"), R"(model="a\"b\\c")");
  EXPECT_EQ(label("model", "two\nlines"), R"(model="two\nlines")");
}

TEST(Metrics, CountersAndHistogramsInPrometheusText) {
  Metrics m;
  const std::string gpt_ep = Metrics::model_endpoint_labels("gpt", "ep", "gpt-4o");
  const std::string ep = Metrics::endpoint_labels("ep");
  m.request(gpt_ep, ErrorCode::ok, 0.3);
  m.request(gpt_ep, ErrorCode::ok, 2);
  m.retry("gpt", ErrorCode::connect_refused);
  PhaseTimings t;
  t.first_byte_ms = 40;
  t.total_ms = 900;
  m.attempt(ep, ErrorCode::ok, t);
  std::string text = m.render();
  EXPECT_NE(
      text.find(
          "ballast_requests_total{model=\"gpt\",endpoint=\"ep\",upstream_model=\"gpt-4o\",code=\"ok\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("ballast_retries_total{model=\"gpt\",reason=\"connect_refused\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ballast_request_duration_seconds_bucket{model=\"gpt\",endpoint=\"ep\",upstream_model="
                      "\"gpt-4o\",le=\"0.5\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ballast_request_duration_seconds_bucket{model=\"gpt\",endpoint=\"ep\",upstream_model="
                      "\"gpt-4o\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("ballast_phase_seconds_bucket{endpoint=\"ep\",phase=\"first_byte\",le=\"0.05\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ballast_phase_seconds_count{endpoint=\"ep\",phase=\"total\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("phase=\"connect\""), std::string::npos) << "a phase not reached is not observed";
}

}  // namespace
}  // namespace ballast
