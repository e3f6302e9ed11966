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

namespace ballast {
namespace {

TEST(JsonWriterUtf8, InvalidBytesBecomeReplacementCharacters) {
  std::string out;
  append_json_string(out, std::string("ok \xc3\xa9 \xff bad \xc3 cut \xed\xa0\x80 surrogate"));
  EXPECT_EQ(out, "\"ok \xc3\xa9 \\ufffd bad \\ufffd cut \\ufffd\\ufffd\\ufffd surrogate\"");
}

TEST(BoundedEcho, CutsOnACharacterBoundaryWithAnEllipsis) {
  EXPECT_EQ(bounded_echo("short"), "short");
  std::string big(1 << 20, 'm');
  std::string cut = bounded_echo(big);
  EXPECT_EQ(cut.size(), 256 + std::string("…").size());
  EXPECT_TRUE(cut.ends_with("…"));
  // "é" is two bytes: a cut at byte 3 of "aéé" backs up to the start of the second "é".
  EXPECT_EQ(bounded_echo("a\xc3\xa9\xc3\xa9", 4), "a\xc3\xa9…");
  EXPECT_EQ(bounded_echo("a\xc3\xa9\xc3\xa9", 3), "a\xc3\xa9…");
}

}  // namespace
}  // namespace ballast
