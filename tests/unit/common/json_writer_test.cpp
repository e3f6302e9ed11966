#include "common/json_writer.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(JsonWriter, NestsAndEscapes) {
  JsonWriter w;
  w.begin_object().field("a", "x\"y\n\x01").key("b").begin_array().value(1).value(2.5).null().end_array();
  w.field("c", true).end_object();
  EXPECT_EQ(w.str(), R"({"a":"x\"y\n\u0001","b":[1,2.5,null],"c":true})");
}

TEST(JsonWriter, OptionalFieldsWriteNull) {
  JsonWriter w;
  std::optional<double> none, some = 1.25;
  w.begin_object().field("n", none).field("s", some).end_object();
  EXPECT_EQ(w.str(), R"({"n":null,"s":1.25})");
}

}  // namespace
}  // namespace ballast
