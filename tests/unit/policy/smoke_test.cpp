#include <gtest/gtest.h>
#include "policy/error_code.hpp"
TEST(Smoke, Builds) { EXPECT_EQ(ballast::http_status(ballast::ErrorCode::connect_refused), 502); }
