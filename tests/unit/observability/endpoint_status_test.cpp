// /ballast/status names why an endpoint is ejected, and its latest failure, in ballast's words.
#include "observability/endpoint_status.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(EndpointStatus, AnEjectedEndpointSaysWhyInBallastsWords) {
  ModelView m;
  m.name = "m";
  EndpointView dead;
  dead.name = "dead";
  dead.health = OutlierState::State::ejected;
  dead.ejected_for = std::chrono::seconds(30);
  dead.ejected_because = "connect_refused: connect to dead refused (nothing listening) after total 0.3ms";
  dead.last_failure = dead.ejected_because;
  dead.last_failure_ago = std::chrono::milliseconds(250);
  EndpointView fine;
  fine.name = "fine";
  m.endpoints = {dead, fine};
  std::string json = endpoint_status_json({m});
  EXPECT_NE(
      json.find(
          R"("ejected_because":"connect_refused: connect to dead refused (nothing listening) after total 0.3ms")"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("last_failure_ago_ms":250)"), std::string::npos) << json;
  // An endpoint that never failed carries neither field.
  std::string fine_part = json.substr(json.find(R"("name":"fine")"));
  EXPECT_EQ(fine_part.find("last_failure"), std::string::npos) << fine_part;
  EXPECT_EQ(fine_part.find("ejected_because"), std::string::npos) << fine_part;
}

}  // namespace
}  // namespace ballast
