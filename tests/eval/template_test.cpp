// The task template language and Python string semantics, on the expressions lm-eval's task
// YAMLs use, with the values Python/Jinja2 give (worked out by hand from the language rules).
#include "eval/template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/text_ops.h"

namespace qs::eval {
namespace {

using json = nlohmann::json;

json eval(const std::string& t, const json& doc) { return Template::compile(t, "test").evaluate(doc); }
std::string render(const std::string& t, const json& doc) { return Template::compile(t, "test").render(doc); }

TEST(Template, LmEvalTaskExpressions) {
  const json arc = {{"question", "Which gas?"},
                    {"choices", {{"text", {"oxygen", "helium", "neon"}}, {"label", {"A", "B", "C"}}}},
                    {"answerKey", "B"}};
  EXPECT_EQ(render("Question: {{question}}\nAnswer:", arc), "Question: Which gas?\nAnswer:");
  EXPECT_EQ(eval("{{choices.text}}", arc), json({"oxygen", "helium", "neon"}));
  EXPECT_EQ(eval("{{choices.label.index(answerKey)}}", arc), 1);
  // A template without braces that names a field is that field (lm-eval: doc_to_text: question_stem).
  EXPECT_EQ(eval("question", arc), "Which gas?");
  EXPECT_EQ(eval("{{ ['no', 'yes'] }}", arc), json({"no", "yes"}));

  const json lambada = {{"text", "He said hello to Maria"}};
  EXPECT_EQ(render("{{text.split(' ')[:-1]|join(' ')}}", lambada), "He said hello to");
  EXPECT_EQ(render("{{' '+text.split(' ')[-1]}}", lambada), " Maria");

  const json siqa = {{"label", "3"}};
  EXPECT_EQ(eval("{{ (label|int) - 1 }}", siqa), 2);

  const json wino = {{"sentence", "Sarah was a better surgeon than Maria so _ always got the easier cases."},
                     {"option1", "Sarah"},
                     {"option2", "Maria"},
                     {"answer", "2"}};
  EXPECT_EQ(eval("{{ [sentence[:sentence.index('_')] ~ option1, sentence[:sentence.index('_')] ~ option2] }}", wino),
            json({"Sarah was a better surgeon than Maria so Sarah", "Sarah was a better surgeon than Maria so Maria"}));
  EXPECT_EQ(eval("{{ sentence[sentence.index('_') + 1:]|trim }}", wino), "always got the easier cases.");
  EXPECT_EQ(eval("{{ {'1': 0, '2': 1}[answer] }}", wino), 1);

  const json copa = {{"premise", "The man turned on the faucet. "}, {"question", "effect"}, {"choice1", "The toilet filled."}};
  EXPECT_EQ(eval("{{ premise.strip()[:-1] ~ ' ' ~ {'cause': 'because', 'effect': 'therefore'}[question] }}", copa),
            "The man turned on the faucet therefore");
  EXPECT_EQ(eval("{{ choice1[0]|lower ~ choice1[1:] }}", copa), "the toilet filled.");
}

TEST(Template, MapSlicesAndTests) {
  const json doc = {{"q", {{"choices", {{{"text", "a"}, {"label", "1"}}, {{"text", "b"}, {"label", "2"}}}}}},
                    {"lines", {"ctx", "2", "e0", "e1", "e2", "e3"}},
                    {"n", 7}};
  EXPECT_EQ(eval("{{ q.choices|map(attribute='text')|list }}", doc), json({"a", "b"}));
  EXPECT_EQ(eval("{{ lines[2:6] }}", doc), json({"e0", "e1", "e2", "e3"}));
  EXPECT_EQ(eval("{{ lines[::-2] }}", doc), json({"e3", "e1", "2"}));
  EXPECT_EQ(eval("{{ lines[1]|int + n }}", doc), 9);
  EXPECT_EQ(eval("{{ n // 2 }}", doc), 3);
  EXPECT_EQ(eval("{{ -7 // 2 }}", doc), -4);  // Python floors
  EXPECT_EQ(eval("{{ -7 % 2 }}", doc), 1);
  EXPECT_EQ(eval("{{ missing is defined }}", doc), false);
  EXPECT_EQ(eval("{{ 'x' if n > 3 else 'y' }}", doc), "x");
  EXPECT_EQ(eval("{{ 'e1' in lines }}", doc), true);
  EXPECT_EQ(render("{{ n }} {{ 1.0 }} {{ true }} {{ none }} {{ lines[:2] }}", doc), "7 1.0 True None ['ctx', '2']");
  // Strings index and slice by code point, as Python.
  const json u = {{"s", "héllo wörld"}};
  EXPECT_EQ(eval("{{ s[1] }}", u), "é");
  EXPECT_EQ(eval("{{ s[-5:] }}", u), "wörld");
  EXPECT_EQ(eval("{{ s|length }}", u), 11);
  EXPECT_EQ(eval("{{ s.find('w') }}", u), 6);
  EXPECT_EQ(eval("{{ s|capitalize }}", u), "Héllo wörld");
  EXPECT_EQ(eval("{{ s.title() }}", u), "Héllo Wörld");
}

TEST(Template, RegexFilters) {
  const json doc = {{"query", "Passage: P one.\nQuestion: Q two.\nQuestion: is it?"}};
  EXPECT_EQ(eval("{{ query|regex_group('(?s)^Passage: (.*)\\nQuestion: (.*)\\?$', 1) }}", doc),
            "P one.\nQuestion: Q two.");
  EXPECT_EQ(eval("{{ query|regex_group('(?s)^Passage: (.*)\\nQuestion: (.*)\\?$', 2) }}", doc), "is it");
  EXPECT_EQ(eval("{{ 'a1b22c'|regex_replace('[0-9]+', '#') }}", doc), "a#b#c");
  EXPECT_THROW(eval("{{ query|regex_group('^Nope (.*)', 1) }}", doc), Error);
}

TEST(Template, ErrorsAreOneLineAndNameTheProblem) {
  auto message = [](const std::string& t, const json& doc) {
    try {
      Template::compile(t, "tasks/x.json: doc_to_text").evaluate(doc);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{{question}}", json::object()).find("'question' is undefined"), std::string::npos);
  EXPECT_NE(message("{{ choices.index('z') }}", json{{"choices", {"a"}}}).find("is not in list"), std::string::npos);
  EXPECT_NE(message("{{ a[5] }}", json{{"a", {1, 2}}}).find("out of range"), std::string::npos);
  EXPECT_NE(message("{{ x|int }}", json{{"x", "seven"}}).find("cannot convert"), std::string::npos);
  EXPECT_NE(message("{{ x|nosuch }}", json{{"x", 1}}).find("unknown filter"), std::string::npos);
  try {
    Template::compile("Question: {{question", "tasks/x.json: doc_to_text");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tasks/x.json: doc_to_text"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  EXPECT_THROW(Template::compile("{{ (a + }}", "t"), Error);
  EXPECT_THROW(Template::compile("{{ 'unterminated }}", "t"), Error);
}

TEST(TextOps, PythonStringSemantics) {
  EXPECT_EQ(py_strip("\u00a0 x y \t\n"), "x y");  // NBSP is white space for Python
  EXPECT_EQ(py_strip("xxhixx", std::string_view("x")), "hi");
  EXPECT_EQ(py_split("  a  b\tc "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(py_split("a,,b", std::string_view(",")), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(py_split("a b c", std::nullopt, 1), (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(py_capitalize("hELLO World"), "Hello world");
  EXPECT_EQ(py_replace("aaa", "aa", "b"), "ba");
  EXPECT_EQ(code_point_count("naïve"), 5u);
  EXPECT_EQ(python_word_split_count(" a b  c\n"), 5u);  // ['', 'a', 'b', 'c', '']
  EXPECT_EQ(python_word_split_count("a"), 1u);
}

TEST(TextOps, PythonRegexSubAndFindall) {
  auto re = PyRegex::compile("x*", "t");
  EXPECT_EQ(re->sub("abxd", "-"), "-a-b--d-");  // Python 3.7+ empty-match rules
  auto groups = PyRegex::compile("(-?[$0-9.,]{2,})|(-?[0-9]+)", "t");
  auto m = groups->findall("I have 3 apples and $1,200.50 total, answer 42.");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], (std::vector<std::string>{"", "3"}));
  EXPECT_EQ(m[1], (std::vector<std::string>{"$1,200.50", ""}));
  EXPECT_EQ(m[2], (std::vector<std::string>{"42.", ""}));
  auto back = PyRegex::compile("\\(\\s*([^\\)]*?)\\s*\\)", "t");
  EXPECT_EQ(back->sub("f ( a b ) g", "(\\1)"), "f (a b) g");
  EXPECT_THROW(PyRegex::compile("(", "tasks/x.json"), Error);
}

TEST(TextOps, LmEvalPreprocessors) {
  // lm-eval hellaswag preprocess.
  EXPECT_EQ(hellaswag_preprocess(" Wash [title] Rinse it [step] well.  Done "), "Wash. Rinse it well. Done");
  // lm-eval wikitext_detokenizer.
  EXPECT_EQ(wikitext_detokenize(" = Robert = \n He was 1 @,@ 000 @-@ strong ( very ) . \" Yes \" , he said 's \n"),
            " = Robert =\nHe was 1,000-strong (very). \"Yes\", he said's\n");
  EXPECT_EQ(capitalize_last_sentence("Roof removal: A man is on a roof. he"), "Roof removal: A man is on a roof. He");
  EXPECT_EQ(capitalize_last_sentence("Skiing: A man skis. The man"), "Skiing: A man skis. The man");
  // WikiText articles: a level-1 heading starts a page; level-2 headings do not.
  const auto pages = wikitext_documents(" \n = A = \n text \n = = B = = \n more \n = C = \n last \n");
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0], " = A = \n text \n = = B = = \n more ");
  EXPECT_EQ(pages[1], " = C = \n last \n");
}

}  // namespace
}  // namespace qs::eval
