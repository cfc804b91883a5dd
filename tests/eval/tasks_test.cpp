// The built-in task definitions (tasks/*.json) over the data in ../shared: every task loads,
// has the documents lm-eval scores, and builds the prompts lm-eval builds (strings written out
// from the task YAMLs' templates and the first records of each file).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "eval/requests.h"
#include "eval/task.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace qs::eval {
namespace {

TaskRegistry& registry() {
  static TaskRegistry r = TaskRegistry::load(testing::source_dir() + "/tasks");
  return r;
}
const Tokenizer& stories_tokenizer() {
  static auto t = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  return *t;
}
PreparedTask prepare(const std::string& name, int64_t limit = 2, int fewshot = -1) {
  PrepareOptions o;
  o.data_dir = testing::shared_dir() + "/data";
  o.limit = limit;
  o.num_fewshot = fewshot;
  o.max_length = 512;
  return prepare_task(registry().task(name), stories_tokenizer(), o);
}

TEST(Tasks, EveryBuiltInTaskHasTheDocumentsLmEvalScores) {
  const std::map<std::string, int64_t> expected = {
      {"arc_easy", 2376}, {"arc_challenge", 299},  // validation split: no ARC-Challenge test file in ../shared
      {"hellaswag", 10042}, {"piqa", 1838}, {"winogrande", 1267}, {"boolq", 3270}, {"openbookqa", 500},
      {"copa", 100},       {"siqa", 1954},  {"lambada_openai", 5153}, {"gsm8k", 1319}, {"wikitext", 62}};
  for (const auto& [name, n] : expected) {
    SCOPED_TRACE(name);
    const PreparedTask p = prepare(name, 2);
    EXPECT_EQ(p.documents_available, n);
    EXPECT_TRUE(p.skipped.empty()) << p.skipped.front().text();
    EXPECT_EQ(p.docs.size(), 2u);
  }
  int64_t mmlu = 0;
  for (const TaskSpec* t : registry().resolve({"mmlu"})) {
    PrepareOptions o;
    o.data_dir = testing::shared_dir() + "/data";
    o.limit = 1;
    o.max_length = 512;
    mmlu += prepare_task(*t, stories_tokenizer(), o).documents_available;
  }
  EXPECT_EQ(mmlu, 14042);
  EXPECT_EQ(registry().resolve({"mmlu"}).size(), 57u);
  EXPECT_EQ(registry().groups().at("mmlu_stem").tasks.size(), 19u);
  EXPECT_EQ(registry().groups().at("mmlu_humanities").tasks.size(), 13u);
  EXPECT_EQ(registry().groups().at("mmlu_social_sciences").tasks.size(), 12u);
  EXPECT_EQ(registry().groups().at("mmlu_other").tasks.size(), 13u);
}

TEST(Tasks, PromptsFollowLmEvalTemplates) {
  {
    const PreparedTask p = prepare("arc_easy");
    const PreparedDoc& d = p.docs[0];
    EXPECT_EQ(d.prompt, "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
    ASSERT_EQ(d.continuations.size(), 4u);
    EXPECT_EQ(d.continuations[0], " Sunlight is the source of energy for nearly all ecosystems.");
    EXPECT_EQ(d.choices[0], "Sunlight is the source of energy for nearly all ecosystems.");
    EXPECT_EQ(d.gold, 0);
    EXPECT_EQ(d.origin.substr(d.origin.size() - 9), ":record 1");
  }
  {
    const PreparedTask p = prepare("hellaswag");
    EXPECT_EQ(p.docs[0].prompt, "Roof shingle removal: A man is sitting on a roof. He");
    EXPECT_EQ(p.docs[0].continuations[3], " starts pulling up roofing on a roof.");
    EXPECT_EQ(p.docs[0].gold, 3);
  }
  {
    const PreparedTask p = prepare("winogrande");
    const PreparedDoc& d = p.docs[0];
    EXPECT_EQ(d.prompt, "");
    EXPECT_EQ(d.choices[0], "Sarah was a much better surgeon than Maria so Sarah");
    EXPECT_EQ(d.continuations[1], " always got the easier cases.");
    EXPECT_EQ(d.gold, 1);
  }
  {
    const PreparedTask p = prepare("boolq");
    EXPECT_EQ(p.docs[0].prompt.rfind("All biomass goes through at least some of these steps", 0), 0u);
    EXPECT_EQ(p.docs[0].prompt.substr(p.docs[0].prompt.size() - 9), "?\nAnswer:");
    EXPECT_EQ(p.docs[0].continuations, (std::vector<std::string>{" no", " yes"}));
  }
  {
    const PreparedTask p = prepare("piqa");
    EXPECT_EQ(p.docs[0].prompt, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
    EXPECT_EQ(p.docs[1].choices[1], "finish, woodgrain with  bobby pin ");  // the official file's text, unstripped
    EXPECT_EQ(p.docs[1].gold, 1);
  }
  {
    const PreparedTask p = prepare("copa");
    EXPECT_EQ(p.docs[0].prompt, "The man turned on the faucet, therefore");
    EXPECT_EQ(p.docs[0].continuations[1], " water flowed from the spout.");
  }
  {
    const PreparedTask p = prepare("siqa");
    EXPECT_EQ(p.docs[0].prompt, "Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?\nA:");
    EXPECT_EQ(p.docs[0].choices, (std::vector<std::string>{"make a new plan", "Find somewhere to go"}));
  }
  {
    const PreparedTask p = prepare("lambada_openai");
    EXPECT_EQ(p.docs[0].continuations, (std::vector<std::string>{" signs"}));
    const std::string end = "I don't care about";
    EXPECT_EQ(p.docs[0].prompt.substr(p.docs[0].prompt.size() - end.size()), end);
  }
  {
    const PreparedTask p = prepare("mmlu_abstract_algebra", 1);
    const std::string& s = p.docs[0].prompt;
    const std::string head =
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n";
    EXPECT_EQ(s.substr(0, head.size()), head);
    // 5 dev examples, then the question.
    size_t answers = 0;
    for (size_t at = s.find("\nAnswer:"); at != std::string::npos; at = s.find("\nAnswer:", at + 1)) ++answers;
    EXPECT_EQ(answers, 6u);
    EXPECT_EQ(s.substr(s.size() - 8), "\nAnswer:");
    EXPECT_EQ(p.docs[0].continuations, (std::vector<std::string>{" A", " B", " C", " D"}));
  }
  {
    const PreparedTask p = prepare("gsm8k", 1);
    const std::string& s = p.docs[0].prompt;
    size_t questions = 0;
    for (size_t at = s.find("Question: "); at != std::string::npos; at = s.find("Question: ", at + 1)) ++questions;
    EXPECT_EQ(questions, 9u);  // 8 exemplars + the question
    EXPECT_NE(s.find("#### "), std::string::npos);  // exemplars carry their worked answers
    EXPECT_EQ(s.substr(s.size() - 8), "\nAnswer:");
    EXPECT_EQ(p.docs[0].target.substr(p.docs[0].target.size() - 7), "#### 18");
  }
  {
    const PreparedTask p = prepare("wikitext", 1);
    EXPECT_EQ(p.docs[0].target.rfind(" = Robert Boulter =\n\nRobert Boulter is an English film,", 0), 0u);
    EXPECT_GT(p.docs[0].words, 1000);
  }
}

TEST(Tasks, FewShotDrawsAreFixedPerDocumentAndNeverTheDocumentItself) {
  const PreparedTask a = prepare("arc_easy", 3, 2), b = prepare("arc_easy", 5, 2);
  for (size_t d = 0; d < 3; ++d) EXPECT_EQ(a.docs[d].prompt, b.docs[d].prompt);  // --limit keeps prompts
  EXPECT_NE(a.docs[0].prompt.find("\n\nQuestion: "), std::string::npos);
  // Few-shot from the evaluation split itself (HellaSwag has no train file here): never the doc.
  const PreparedTask h = prepare("hellaswag", 20, 3);
  for (const auto& d : h.docs) {
    const size_t own_at = d.prompt.rfind("\n\n") + 2;
    const std::string own = d.prompt.substr(own_at), examples = d.prompt.substr(0, own_at);
    size_t shots = 0;
    for (size_t at = examples.find("\n\n"); at != std::string::npos; at = examples.find("\n\n", at + 1)) ++shots;
    EXPECT_EQ(shots, 3u);
    EXPECT_EQ(examples.find(own + " " + d.choices[d.gold] + "\n\n"), std::string::npos) << d.origin;
  }
}

TEST(Tasks, RollingWindowsPredictEveryTokenOnce) {
  std::vector<int32_t> tokens(23);
  for (int i = 0; i < 23; ++i) tokens[i] = 100 + i;
  const auto w = rolling_windows(tokens, 1, 8);
  std::vector<int32_t> predicted;
  for (const auto& [ctx, cont] : w) {
    EXPECT_LE(ctx.size() + cont.size() - 1, 8u);
    predicted.insert(predicted.end(), cont.begin(), cont.end());
  }
  EXPECT_EQ(predicted, tokens);
  EXPECT_EQ(w[0].first, std::vector<int32_t>{1});
  // lm-eval: window 2 predicts tokens 8..15 from tokens 7..14; its context is token 7.
  EXPECT_EQ(w[1].first, std::vector<int32_t>({107}));
  EXPECT_EQ(w[2].first, std::vector<int32_t>({114, 115}));
  EXPECT_EQ(w[1].second.front(), 108);
}

TEST(Tasks, UnknownTaskListsTheKnownOnes) {
  try {
    registry().resolve({"arc_easy", "hellaswagg"});
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unknown task 'hellaswagg'"), std::string::npos) << m;
    EXPECT_NE(m.find("winogrande"), std::string::npos) << m;
    EXPECT_NE(m.find("mmlu"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace qs::eval
