// Runs prepared tasks on a model and computes lm-evaluation-harness's metrics per task:
//  - multiple_choice: acc = [argmax_i ll_i == gold], acc_norm = [argmax_i ll_i / len_i == gold]
//    with len_i the length in characters (code points) of choice i as doc_to_choice gives it
//    (lm-eval `completion_len`); argmax takes the first maximum (numpy), so ties go to the lower
//    index; stderr = lm-eval mean_stderr;
//  - loglikelihood (LAMBADA): acc = greedy continuation equals the target, perplexity =
//    exp(-mean ll) with a bootstrap stderr (lm-eval bootstraps it);
//  - loglikelihood_rolling (WikiText): word_perplexity = exp(-sum ll / sum words), byte_perplexity
//    = exp(-sum ll / sum bytes), bits_per_byte = -sum ll / sum bytes / ln 2 (lm-eval
//    weighted_perplexity / bits_per_byte; no stderr, as lm-eval); optionally the engine's token
//    perplexity of the same file in llama.cpp's convention;
//  - generate_until (GSM8K): greedy generation cut at the first stop sequence, each filter of
//    filter_list (regex + take_first), exact_match per filter ("exact_match,strict-match").
// And the paired comparison of a baseline run with a model run on the same documents.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/perplexity.h"
#include "eval/requests.h"
#include "eval/scorer.h"
#include "eval/stats.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs::eval {

struct EvalOptions {
  ScoreOptions score;
  int generation_batch = 32;  // sequences decoded together
  uint64_t seed = 1234;       // bootstrap stderr of perplexity
  int64_t engine_ppl_ctx = 512;
};

struct MetricValue {
  double value = 0;
  std::optional<double> stderr_;  // none where lm-eval reports none
  size_t n = 0;
};

// Everything one document produced (the JSONL sample record).
struct DocResult {
  std::vector<double> lls;         // per request (choice / window) log-likelihood
  std::vector<bool> greedy;
  int pred = -1, pred_norm = -1;   // multiple choice
  std::string generation;          // generate_until, after the stop sequences
  std::map<std::string, std::string> filtered;  // filter name -> extracted answer
  std::map<std::string, double> scores;         // per-document metric values
};

struct TaskRun {
  std::string task;
  const PreparedTask* prepared = nullptr;
  std::vector<DocResult> docs;
  std::vector<std::string> metric_names;            // in report order
  std::map<std::string, MetricValue> metrics;
  std::map<std::string, std::vector<double>> per_doc;  // mean-aggregated metrics, per document
  std::optional<PerplexityResult> engine_ppl;         // token perplexity, llama.cpp convention
  // Speed
  double seconds = 0;
  int64_t model_tokens = 0, request_tokens = 0, generated_tokens = 0;
  int64_t forward_calls = 0;
  double examples_per_second() const { return seconds > 0 ? docs.size() / seconds : 0; }
  double tokens_per_second() const { return seconds > 0 ? (model_tokens + generated_tokens) / seconds : 0; }
};

// Runs one task. `label` names the progress bar ("arc_easy [model]").
TaskRun run_task(const PreparedTask& task, const Model& model, const Tokenizer& tokenizer, const EvalOptions& options,
                 const std::string& label);

// Metric values of one document of a multiple-choice task (exposed for tests).
struct ChoiceScores {
  int pred = -1, pred_norm = -1;
  double acc = 0, acc_norm = 0;
};
ChoiceScores score_choices(const std::vector<double>& lls, const std::vector<std::string>& choices, int gold);

// lm-eval's RegexFilter + take_first on one response.
std::string apply_filter(const FilterSpec& filter, const std::string& response);
// lm-eval exact_match (HF evaluate) of one prediction against one reference.
bool exact_match(const ExactMatchSpec& spec, std::string prediction, std::string reference);
// Cuts `text` at the first occurrence of each stop sequence, in order (lm-eval generate_until).
std::string cut_at_stop_sequences(std::string text, const std::vector<std::string>& until);

// Baseline vs model on one task, per metric.
struct MetricComparison {
  std::string metric;
  PairedComparison paired;      // mean-aggregated metrics (acc, acc_norm, exact_match, ...)
  // Corpus-level metrics (perplexities, bits per byte): values, their difference and a paired
  // bootstrap CI over documents.
  bool corpus_level = false;
  double baseline_value = 0, model_value = 0, difference = 0;
  ConfidenceInterval difference_ci;
  size_t n = 0;
};
struct TaskComparison {
  std::string task, primary_metric;
  std::vector<MetricComparison> metrics;
  const MetricComparison* find(const std::string& metric) const;
};
TaskComparison compare_runs(const TaskRun& baseline, const TaskRun& model, const BootstrapOptions& options = {});

}  // namespace qs::eval
