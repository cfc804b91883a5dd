// The evaluator end to end on stories260K: every output type runs on real data, the metrics are
// what the per-document results imply, a model compared with itself shows no difference, and the
// KL divergence tool agrees with the engine's perplexity and with itself.
#include "eval/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/files.h"
#include "eval/kld_run.h"
#include "eval/model_identity.h"
#include "model/loader.h"
#include "testing/testing.h"

namespace qs::eval {
namespace {

struct Fixture {
  std::unique_ptr<Model> model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  TaskRegistry tasks = TaskRegistry::load(testing::source_dir() + "/tasks");
};
Fixture& fx() {
  static Fixture f;
  return f;
}

PreparedTask prepare(const std::string& task, int64_t limit, int fewshot = -1) {
  PrepareOptions o;
  o.data_dir = testing::shared_dir() + "/data";
  o.limit = limit;
  o.num_fewshot = fewshot;
  o.max_length = fx().model->config().max_position_embeddings;
  return prepare_task(fx().tasks.task(task), *fx().tok, o);
}

TEST(Evaluator, MultipleChoiceMetricsAreTheMeansOfPerDocumentScores) {
  const PreparedTask p = prepare("hellaswag", 40);
  const TaskRun run = run_task(p, *fx().model, *fx().tok, {}, "hellaswag");
  ASSERT_EQ(run.docs.size(), 40u);
  double acc = 0, acc_norm = 0;
  for (size_t d = 0; d < run.docs.size(); ++d) {
    const DocResult& r = run.docs[d];
    ASSERT_EQ(r.lls.size(), 4u);
    acc += r.pred == p.docs[d].gold;
    acc_norm += r.pred_norm == p.docs[d].gold;
    for (double ll : r.lls) EXPECT_LT(ll, 0);
  }
  EXPECT_DOUBLE_EQ(run.metrics.at("acc").value, acc / 40);
  EXPECT_DOUBLE_EQ(run.metrics.at("acc_norm").value, acc_norm / 40);
  EXPECT_EQ(run.metrics.at("acc").n, 40u);
  const double m = acc / 40;
  EXPECT_NEAR(*run.metrics.at("acc").stderr_, std::sqrt(m * (1 - m) / 39), 1e-12);  // lm-eval mean_stderr of 0/1
  EXPECT_LT(run.model_tokens, run.request_tokens);  // contexts computed once per question
  EXPECT_EQ(run.metric_names, (std::vector<std::string>{"acc", "acc_norm"}));
}

TEST(Evaluator, SelfComparisonShowsNoDifference) {
  const PreparedTask p = prepare("arc_easy", 30);
  const TaskRun a = run_task(p, *fx().model, *fx().tok, {}, "a"), b = run_task(p, *fx().model, *fx().tok, {}, "b");
  BootstrapOptions bo;
  bo.resamples = 500;
  const TaskComparison c = compare_runs(a, b, bo);
  const MetricComparison* acc = c.find("acc");
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->paired.flips_to_wrong + acc->paired.flips_to_right, 0);
  EXPECT_EQ(acc->paired.difference, 0.0);
  EXPECT_DOUBLE_EQ(acc->paired.recovery_pct, 100.0);
  ASSERT_TRUE(acc->paired.mcnemar.has_value());
  EXPECT_EQ(acc->paired.mcnemar->p_value, 1.0);
  EXPECT_EQ(acc->paired.verdict(), Verdict::WithinNoise);
}

TEST(Evaluator, LambadaAccIsGreedyMatchAndPerplexityOfTheWord) {
  const PreparedTask p = prepare("lambada_openai", 30);
  const TaskRun run = run_task(p, *fx().model, *fx().tok, {}, "lambada");
  double sum = 0, greedy = 0;
  for (const auto& d : run.docs) {
    sum += d.lls[0];
    greedy += d.greedy[0];
  }
  EXPECT_DOUBLE_EQ(run.metrics.at("acc").value, greedy / 30);
  EXPECT_NEAR(run.metrics.at("perplexity").value, std::exp(-sum / 30), 1e-9);
  EXPECT_GT(*run.metrics.at("perplexity").stderr_, 0);
}

TEST(Evaluator, WikitextRollingWindowsCoverEveryTokenOnce) {
  const PreparedTask p = prepare("wikitext", 2);
  int64_t predicted = 0;
  for (const auto& r : p.requests)
    if (r.doc == 0) predicted += static_cast<int64_t>(r.continuation.size());
  EXPECT_EQ(predicted, static_cast<int64_t>(fx().tok->encode(p.docs[0].target, false).size()));
  const TaskRun run = run_task(p, *fx().model, *fx().tok, {}, "wikitext");
  const double ll = run.docs[0].scores.at("ll") + run.docs[1].scores.at("ll");
  const double bytes = static_cast<double>(p.docs[0].bytes + p.docs[1].bytes);
  EXPECT_NEAR(run.metrics.at("bits_per_byte").value, -ll / bytes / std::log(2.0), 1e-12);
  EXPECT_NEAR(run.metrics.at("byte_perplexity").value, std::pow(2.0, run.metrics.at("bits_per_byte").value), 1e-9);
  EXPECT_FALSE(run.metrics.at("word_perplexity").stderr_.has_value());  // lm-eval reports none
  ASSERT_TRUE(run.engine_ppl.has_value());
  // Over the two evaluated articles only (the whole file when every article is scored).
  EXPECT_EQ(run.engine_ppl->tokens_scored, (static_cast<int64_t>(fx().tok->encode(p.engine_text, true).size()) / 512) * 255);
  // Corpus-level comparison with itself: zero difference.
  BootstrapOptions bo;
  bo.resamples = 200;
  const TaskComparison c = compare_runs(run, run, bo);
  const MetricComparison* bpb = c.find("bits_per_byte");
  ASSERT_NE(bpb, nullptr);
  EXPECT_TRUE(bpb->corpus_level);
  EXPECT_EQ(bpb->difference, 0.0);
}

TEST(Evaluator, Gsm8kGeneratesGreedilyAndStopsAtStopSequences) {
  const PreparedTask p = prepare("gsm8k", 4, 2);
  EvalOptions o;
  o.generation_batch = 3;
  const TaskRun run = run_task(p, *fx().model, *fx().tok, o, "gsm8k");
  ASSERT_EQ(run.docs.size(), 4u);
  EXPECT_EQ(run.metric_names, (std::vector<std::string>{"exact_match,strict-match", "exact_match,flexible-extract"}));
  for (const auto& d : run.docs) {
    EXPECT_EQ(d.generation.find("Question:"), std::string::npos);
    EXPECT_EQ(d.filtered.size(), 2u);
  }
  EXPECT_GT(run.generated_tokens, 0);
  // Greedy: the same generations again.
  const TaskRun again = run_task(p, *fx().model, *fx().tok, o, "gsm8k");
  for (size_t d = 0; d < 4; ++d) EXPECT_EQ(again.docs[d].generation, run.docs[d].generation);
}

TEST(Kld, ModelAgainstItselfIsZeroAndMatchesEnginePerplexity) {
  const std::string text = read_text_file(testing::shared_dir() + "/data/tinystories/tinystories_val.txt");
  const std::vector<int32_t> tokens = fx().tok->encode(text, true);
  KldRunOptions o;
  o.ctx = 128;
  o.max_chunks = 6;
  o.bos = fx().tok->bos_id();
  o.save_top_k = 8;
  const KldRunResult r = compute_kld(fx().model.get(), nullptr, *fx().model, tokens, o);
  EXPECT_EQ(r.stats.tokens, 6u * 63u);
  EXPECT_NEAR(r.stats.kld_mean, 0.0, 1e-12);
  EXPECT_NEAR(r.stats.kld_max, 0.0, 1e-12);
  EXPECT_EQ(r.stats.same_top_pct, 100.0);
  EXPECT_NEAR(r.stats.ln_ppl_ratio, 0.0, 1e-12);
  // The same positions and convention as the engine's perplexity.
  PerplexityOptions po;
  po.ctx = 128;
  po.max_chunks = 6;
  po.bos = fx().tok->bos_id();
  const PerplexityResult ppl = compute_perplexity(*fx().model, tokens, po);
  EXPECT_NEAR(r.stats.ppl_model, ppl.ppl, 1e-6 * ppl.ppl);  // the engine sums in float
  // The saved top-8 baseline gives the same perplexity and a KLD lower bound of ~0.
  ASSERT_TRUE(r.compact.has_value());
  const KldRunResult c = compute_kld(nullptr, &*r.compact, *fx().model, tokens, [&] {
    KldRunOptions oc = o;
    oc.save_top_k = 0;
    return oc;
  }());
  EXPECT_TRUE(c.stats.kld_is_lower_bound);
  EXPECT_NEAR(c.stats.kld_mean, 0.0, 1e-9);
  EXPECT_NEAR(c.stats.ppl_base, r.stats.ppl_base, 1e-9 * r.stats.ppl_base);
  // A compact baseline from other settings is refused.
  KldRunOptions other = o;
  other.save_top_k = 0;
  other.max_chunks = 5;
  EXPECT_THROW(compute_kld(nullptr, &*r.compact, *fx().model, tokens, other), Error);
}

TEST(ModelIdentity, TokenizerDifferencesAndFingerprints) {
  EXPECT_EQ(tokenizer_difference(*fx().tok, *fx().tok), "");
  auto llama2 = Tokenizer::load(testing::shared_dir() + "/tokenizers/llama2/tokenizer.json");
  EXPECT_NE(tokenizer_difference(*fx().tok, *llama2).find("vocabulary sizes differ"), std::string::npos);
  const std::string f = fingerprint_path(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  EXPECT_EQ(f.rfind("qsh64:", 0), 0u);
  EXPECT_EQ(f, fingerprint_path(testing::shared_dir() + "/models/stories260K/stories260K.bin"));
  EXPECT_NE(f, fingerprint_path(testing::shared_dir() + "/models/stories260K/tok512.bin"));
  EXPECT_EQ(scheme_name(*fx().model), "f32");
}

}  // namespace
}  // namespace qs::eval
