// The chat-template engine's contract beyond the byte-for-byte comparisons of
// chat_template_test.cpp: one-line errors with positions, refusal of what it does not
// implement, the templates' own raise_exception messages, template selection from
// tokenizer_config.json, thread safety, and speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "testing/testing.h"
#include "tokenizer/chat_template.h"

namespace qs {
namespace {

using ojson = nlohmann::ordered_json;

std::string render(const std::string& source, const ojson& variables = ojson::object()) {
  return ChatTemplate(source, "t").render_variables(variables);
}

// The message of the ChatTemplateError that parsing or rendering throws ("" if none).
std::string error_of(const std::string& source, const ojson& variables = ojson::object()) {
  try {
    render(source, variables);
  } catch (const ChatTemplateError& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    return m;
  }
  return "";
}

void expect_error(const std::string& source, const std::string& expected_start, const std::string& contains,
                  const ojson& variables = ojson::object()) {
  std::string m = error_of(source, variables);
  EXPECT_EQ(m.rfind(expected_start, 0), 0u) << source << " -> " << m;
  EXPECT_NE(m.find(contains), std::string::npos) << source << " -> " << m;
}

TEST(ChatTemplateEngine, SyntaxErrorsNameTheLineAndColumn) {
  expect_error("{% if x %}never closed", "t:1:4: ", "'if' block is never closed");
  expect_error("a\n{% for m in messages %}\n{{ m }}", "t:2:4: ", "'for' block is never closed");
  expect_error("ok\n  {{ 1 + }}", "t:2:10: ", "unexpected '}}'");
  expect_error("{{ 'unterminated }}", "t:1:4: ", "unterminated string");
  expect_error("{% endif %}", "t:1:4: ", "unknown tag 'endif'");
  expect_error("{{ x | }}", "t:1:8: ", "expected a name");
  expect_error("{% macro m(a=1, b) %}{% endmacro %}", "t:1:17: ", "non-default argument follows default");
  expect_error("{{ (1, 2 }}", "t:1:10: ", "unexpected '}'");
  expect_error("{# never closed", "t:1:1: ", "missing end of comment");
  expect_error("é\n\t{{ 1 @ 2 }}", "t:2:7: ", "unexpected character '@'");
  expect_error("{% break %}", "t:1:4: ", "'break' outside of a loop");
}

TEST(ChatTemplateEngine, UnsupportedStatementsAreRefusedWhenParsed) {
  expect_error("{% include 'other.jinja' %}", "t:1:4: ", "'{% include %}' tag is not supported");
  expect_error("{% extends 'base' %}", "t:1:4: ", "'{% extends %}' tag is not supported");
  expect_error("{% block b %}{% endblock %}", "t:1:4: ", "not supported");
  expect_error("{% for x in y recursive %}{% endfor %}", "t:1:15: ", "recursive for-loops are not supported");
  expect_error("{{ f(*args) }}", "t:1:6: ", "*args and **kwargs in calls are not supported");
  expect_error("{{ x[1:2, 3] }}", "t:1:6: ", "multi-dimensional slices are not supported");
}

TEST(ChatTemplateEngine, UnsupportedFeaturesAreRefusedWhenReached) {
  // Jinja2 defers unknown filters inside {% if %} to run time; so does the engine, and a branch
  // not taken renders.
  EXPECT_EQ(render("{% if false %}{{ x|wordwrap }}{% endif %}ok"), "ok");
  expect_error("{% if true %}{{ 'a b'|wordwrap(1) }}{% endif %}", "t:1:17: ", "the filter 'wordwrap' is not supported");
  expect_error("{{ x is filter }}", "t:1:4: ", "the test 'filter' is not supported");
  expect_error("{{ '{}'.format(1) }}", "t:1:4: ", "the string method format() is not supported");
  expect_error("{{ '%s' % 1 }}", "t:1:4: ", "printf-style string formatting");
  expect_error("{{ [1, 2]|map('string') }}", "t:1:", "printing a generator is not supported");
  expect_error("{{ 'a' is sameas 'a' }}", "t:1:", "'sameas' on str values is not supported");
  expect_error("{{ cycler(1, 2) }}", "t:1:", "the global function cycler() is not supported");
  expect_error("{{ [1].append(2) }}", "t:1:", "unsafe");
  expect_error("{{ 2 ** 70 }}", "t:1:", "integer overflow");
}

TEST(ChatTemplateEngine, RaiseExceptionCarriesTheTemplateMessage) {
  const std::string tpl = "{% for m in messages %}\n{% if m.role == 'user' and loop.index0 % 2 == 1 %}"
                          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
                          "{% endif %}{% endfor %}";
  ojson vars{{"messages", ojson::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}})}};
  try {
    render(tpl, vars);
    FAIL() << "no error";
  } catch (const ChatTemplateError& e) {
    EXPECT_TRUE(e.raised_by_template());
    EXPECT_EQ(e.template_message(), "Conversation roles must alternate user/assistant/user/assistant/...");
    EXPECT_EQ(std::string(e.what()),
              "t:2:54: raise_exception: Conversation roles must alternate user/assistant/user/assistant/...");
  }
  // A message with a newline stays one line in what(), verbatim in template_message().
  try {
    render("{{ raise_exception('line one\\nline two') }}");
    FAIL() << "no error";
  } catch (const ChatTemplateError& e) {
    EXPECT_EQ(e.template_message(), "line one\nline two");
    EXPECT_EQ(std::string(e.what()), "t:1:4: raise_exception: line one\\nline two");
  }
}

TEST(ChatTemplateEngine, RuntimeErrorsArePositioned) {
  expect_error("{{ messages[0].content }}\n{{ missing.attr }}", "t:2:4: ", "'missing' is undefined",
               {{"messages", ojson::array({{{"role", "user"}, {"content", "x"}}})}});
  expect_error("{{ 1 / 0 }}", "t:1:4: ", "division by zero");
  expect_error("{% set ns = 3 %}{% set ns.a = 1 %}", "t:1:24: ", "cannot assign attribute on non-namespace object");
  expect_error("{{ [1]|tojson(indent=1.5) }}", "t:1:", "indent must be an int or a string");
}

TEST(ChatTemplateEngine, RejectsBadInput) {
  try {
    ChatTemplate bad("{{ x }}\xff", "cfg");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const ChatTemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg: the template is not valid UTF-8 (byte 7)"), std::string::npos) << e.what();
  }
  ChatTemplate t("{{ messages|length }}");
  ChatOptions opt;
  opt.extra = ojson::array({1});
  EXPECT_THROW(t.render(std::vector<ChatMessage>{}, opt, "", ""), Error);
  EXPECT_THROW(t.render(ojson::object(), ChatOptions{}, "", ""), Error);
  EXPECT_THROW(t.render(std::vector<ChatMessage>{{"user", "\xc3"}}, ChatOptions{}, "", ""), Error);
}

TEST(ChatTemplateEngine, VariablesFollowTransformers) {
  // tools and documents are None unless given; empty bos/eos are left undefined (transformers
  // leaves a null special token out); enable_thinking only when set.
  ChatTemplate t(
      "{{ tools is none }} {{ documents is none }} {{ bos_token is defined }} {{ eos_token }} "
      "{{ enable_thinking is defined }} {{ add_generation_prompt }} {{ messages[0].role }} {{ extra_var }}");
  ChatOptions opt;
  opt.add_generation_prompt = false;
  EXPECT_EQ(t.render(std::vector<ChatMessage>{{"user", "x"}}, opt, "", "</s>"), "True True False </s> False False user ");
  opt.enable_thinking = false;
  opt.extra = {{"extra_var", 7}, {"tools", ojson::array()}};
  EXPECT_EQ(t.render(std::vector<ChatMessage>{{"user", "x"}}, opt, "<s>", ""), "False True True  True False user 7");
}

TEST(ChatTemplateEngine, ToolSchemasKeepTheirKeyOrder) {
  ChatOptions opt;
  opt.extra = ojson::parse(R"({"tools": [{"name": "f", "description": "d", "parameters": {"z": 1, "a": 2}}]})");
  EXPECT_EQ(ChatTemplate("{{ tools[0]|tojson }}").render(std::vector<ChatMessage>{}, opt, "", ""),
            R"({"name": "f", "description": "d", "parameters": {"z": 1, "a": 2}})");
}

TEST(ChatTemplateEngine, SelectsTheTemplateLikeTransformers) {
  nlohmann::json list = nlohmann::json::parse(
      R"([{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}])");
  EXPECT_EQ(select_chat_template(list, "cfg"), "D");
  EXPECT_EQ(select_chat_template(list, "cfg", "", true), "T");
  EXPECT_EQ(select_chat_template(list, "cfg", "rag"), "R");
  EXPECT_EQ(select_chat_template(nlohmann::json("S"), "cfg"), "S");
  EXPECT_THROW(select_chat_template(list, "cfg", "nope"), Error);
  EXPECT_THROW(select_chat_template(nlohmann::json(3), "cfg"), Error);
  EXPECT_THROW(select_chat_template(nlohmann::json::parse(R"([{"name": "x"}])"), "cfg"), Error);
}

TEST(ChatTemplateEngine, HostileTemplatesStayFinite) {
  expect_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "t:1:", "maximum recursion depth");
  expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "t:1:",
               "loop iterations");
  expect_error("{{ range(100001) }}", "t:1:", "Range too big");
  expect_error("{{ 'x' * 100000000000 }}", "t:1:", "repetition result larger");
  std::string deep(300, '(');
  expect_error("{{ " + deep + "1" + std::string(300, ')') + " }}", "t:1:", "nested deeper than");
}

TEST(ChatTemplateEngine, RendersConcurrently) {
  std::string tpl = read_json_file(testing::shared_dir() + "/tokenizers/qwen3/tokenizer_config.json")
                        .at("chat_template")
                        .get<std::string>();
  ChatTemplate t(tpl, "qwen3");
  std::vector<ChatMessage> msgs = {{"system", "s"}, {"user", "u"}, {"assistant", "<think>r</think>a"}, {"user", "v"}};
  std::string expected = t.render(msgs, ChatOptions{}, "", "<|im_end|>");
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 200; ++i) same[k] += t.render(msgs, ChatOptions{}, "", "<|im_end|>") == expected;
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(same[k], 200);
}

// Benchmark prompts are rendered one by one; the engine must not be the bottleneck. Prints the
// rate; the bound is far below it so that a loaded machine does not fail the test.
TEST(ChatTemplateEngine, RendersThousandsOfPromptsPerSecond) {
  for (const char* name : {"qwen3", "llama3"}) {
    std::string tpl = read_json_file(testing::shared_dir() + "/tokenizers/" + name + "/tokenizer_config.json")
                          .at("chat_template")
                          .get<std::string>();
    ChatTemplate t(tpl, name);
    std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant."},
                                     {"user", "Natalia sold clips to 48 of her friends in April, and then she sold half as "
                                              "many clips in May. How many clips did Natalia sell altogether?"},
                                     {"assistant", "<think>\n48 + 24\n</think>\n\n72"},
                                     {"user", "Explain step by step."}};
    const int kRenders = 3000;
    size_t bytes = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRenders; ++i) bytes += t.render(msgs, ChatOptions{}, "<s>", "</s>").size();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = kRenders / seconds;
    std::printf("%s: %.0f renders/s (%.1f us each, %zu bytes per prompt)\n", name, rate, 1e6 / rate, bytes / kRenders);
    EXPECT_GT(rate, 1000.0) << name;
  }
}

}  // namespace
}  // namespace qs
