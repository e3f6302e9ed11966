#include "policy/json_members.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

TEST(JsonMembers, TopLevelOnlyWithValueRanges) {
  std::string body = R"( {"model" : "gpt", "messages":[{"role":"user","model":"x"}], "n": 2 } )";
  auto m = top_level_members(body);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].key, "model");
  EXPECT_EQ(body.substr((*m)[0].value_begin, (*m)[0].value_end - (*m)[0].value_begin), "\"gpt\"");
  EXPECT_EQ((*m)[1].key, "messages");
  EXPECT_EQ(body.substr((*m)[2].value_begin, (*m)[2].value_end - (*m)[2].value_begin), "2");
}

TEST(JsonMembers, NotAnObject) {
  EXPECT_FALSE(top_level_members("[1]"));
  EXPECT_FALSE(top_level_members(R"({"a":1} x)"));
  EXPECT_FALSE(top_level_members(R"({"a":)"));
  ASSERT_TRUE(top_level_members("{}"));
  EXPECT_TRUE(top_level_members("{}")->empty());
}

TEST(WithModel, RewritesTheModelAndNothingElse) {
  std::string body =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"model\\\": \\u00e9 {\"}],\n"
      "  \"model\":\"gpt-4o\",\"stream\":true,\"extra\":{\"model\":\"inner\"}}";
  std::string out = with_model(body, "meta-llama/Llama-3.1-8B-Instruct");
  std::string expected =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"model\\\": \\u00e9 {\"}],\n"
      "  \"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"stream\":true,\"extra\":{\"model\":\"inner\"}}";
  EXPECT_EQ(out, expected);
}

TEST(WithModel, AnEscapedKeyIsStillTheModel) {
  // A JSON parser reads "mod\u0065l" as "model": so must the rewrite, or the upstream would see
  // the client's name.
  EXPECT_EQ(with_model(R"({"mod\u0065l":"a","x":1})", "b"), R"({"mod\u0065l":"b","x":1})");
}

TEST(WithModel, NamesAreEscaped) {
  EXPECT_EQ(with_model(R"({"model":"a"})", "we\"ird"), R"({"model":"we\"ird"})");
}

TEST(WithModel, AMissingModelIsAddedFirst) {
  // An Azure client names the deployment in the path and may send no model at all.
  EXPECT_EQ(with_model(R"( {"messages":[{"model":"x"}]})", "sim"),
            R"( {"model":"sim","messages":[{"model":"x"}]})");
  EXPECT_EQ(with_model("{}", "sim"), R"({"model":"sim"})");
  EXPECT_EQ(with_model("[1]", "sim"), "[1]");
}

TEST(WithModel, EveryTopLevelModelIsRewritten) {
  EXPECT_EQ(with_model(R"({"model":"a","model":"b"})", "c"), R"({"model":"c","model":"c"})");
}

}  // namespace
}  // namespace ballast
