// Metrics on hand-made cases: acc/acc_norm (ties, lengths in characters), lm-eval's GSM8K answer
// extraction and exact_match, stop sequences, corpus-level comparisons.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/evaluator.h"

namespace qs::eval {
namespace {

TEST(Metrics, AccAndAccNormFollowLmEval) {
  // acc: the largest log-likelihood; acc_norm: the largest ll / characters of the choice.
  const std::vector<std::string> choices = {"a cat", "elephants"};  // 5 and 9 characters
  auto s = score_choices({-10.0, -12.0}, choices, 1);
  EXPECT_EQ(s.pred, 0);
  EXPECT_EQ(s.pred_norm, 1);  // -2.0 vs -1.33
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 1.0);
  // Ties go to the first choice (numpy.argmax), for both metrics.
  s = score_choices({-4.0, -4.0, -9.0}, {"ab", "cd", "ef"}, 1);
  EXPECT_EQ(s.pred, 0);
  EXPECT_EQ(s.pred_norm, 0);
  EXPECT_EQ(s.acc, 0.0);
  s = score_choices({-6.0, -3.0}, {"abcdef", "abc"}, 0);  // -1.0 per character both: tie -> 0
  EXPECT_EQ(s.pred, 1);
  EXPECT_EQ(s.pred_norm, 0);
  EXPECT_EQ(s.acc_norm, 1.0);
  // Characters are code points, not bytes ("é" is one character, two bytes).
  s = score_choices({-4.0, -4.4}, {"éé", "abc"}, 1);  // -2.0 vs -1.467 per character
  EXPECT_EQ(s.pred_norm, 1);
  EXPECT_THROW(score_choices({-1.0}, {"a", "b"}, 0), Error);
}

FilterSpec filter(const std::string& name, const std::string& pattern, int group_select = 0) {
  FilterSpec f;
  f.name = name;
  f.pattern = pattern;
  f.regex = PyRegex::compile(pattern, "test");
  f.group_select = group_select;
  return f;
}

ExactMatchSpec gsm8k_match() {
  ExactMatchSpec e;
  e.ignore_case = true;
  for (const char* r : {",", "\\$", "(?s).*#### ", "\\.$"}) e.regexes_to_ignore.push_back(PyRegex::compile(r, "test"));
  return e;
}

TEST(Metrics, Gsm8kStrictAndFlexibleExtraction) {
  const FilterSpec strict = filter("strict-match", "#### (\\-?[0-9\\.\\,]+)");
  const FilterSpec flexible = filter("flexible-extract", "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1);
  const std::string reference = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 1,072";
  const std::string good = " She sold 48 + 24 = 72 clips.\n#### 1,072";
  EXPECT_EQ(apply_filter(strict, good), "1,072");
  EXPECT_EQ(apply_filter(flexible, good), "1,072");
  EXPECT_TRUE(exact_match(gsm8k_match(), apply_filter(strict, good), reference));
  // No "####": strict falls back to "[invalid]", flexible takes the last number.
  const std::string loose = " So the answer is $1,072.";
  EXPECT_EQ(apply_filter(strict, loose), "[invalid]");
  EXPECT_EQ(apply_filter(flexible, loose), "$1,072.");
  EXPECT_FALSE(exact_match(gsm8k_match(), apply_filter(strict, loose), reference));
  EXPECT_TRUE(exact_match(gsm8k_match(), apply_filter(flexible, loose), reference));  // "$", ",", "." ignored
  // A single digit is found by the second group.
  EXPECT_EQ(apply_filter(flexible, "there are 7 apples"), "7");
  EXPECT_EQ(apply_filter(flexible, "no numbers here"), "[invalid]");
  EXPECT_FALSE(exact_match(gsm8k_match(), "72", "#### 720"));
}

TEST(Metrics, ExactMatchOptions) {
  ExactMatchSpec e;
  EXPECT_FALSE(exact_match(e, "Paris", "paris"));
  e.ignore_case = true;
  EXPECT_TRUE(exact_match(e, "Paris", "paris"));
  e.ignore_punctuation = true;
  EXPECT_TRUE(exact_match(e, "Paris!", "paris"));
}

TEST(Metrics, StopSequencesCutAtTheFirstOccurrence) {
  EXPECT_EQ(cut_at_stop_sequences("42 is it.\n\nQuestion: next", {"Question:", "</s>"}), "42 is it.\n\n");
  EXPECT_EQ(cut_at_stop_sequences("a</s>b Question:", {"Question:", "</s>"}), "a");
  EXPECT_EQ(cut_at_stop_sequences("plain", {"Question:"}), "plain");
}

}  // namespace
}  // namespace qs::eval
