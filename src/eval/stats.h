// Benchmark statistics: per-example scores -> means with standard errors, paired comparisons of
// a baseline and a quantized model on the same examples, and aggregation across tasks.
//
// Definitions (and where they come from):
//  - mean_stderr(x) = sample_stddev(x) / sqrt(n), sample_stddev with n-1 in the denominator:
//    lm-evaluation-harness `lm_eval/api/metrics.py` (`sample_stddev`, `mean_stderr`), i.e. the
//    `acc_stderr` it prints for every mean-aggregated metric. n = 1 gives 0 here (lm-eval divides
//    by zero); n = 0 gives NaN.
//  - Task aggregation: `weighted_mean` = sum(n_i m_i) / sum(n_i) (lm-eval
//    `aggregate_subtask_metrics(weight_by_size=True)`), `pooled_stderr` = lm-eval's
//    `pooled_sample_stderr` (sqrt(sum((n_i-1) n_i se_i^2) / (N - T) / N)), which lm-eval prints
//    for groups whatever the weighting. `macro_mean` = plain mean of task means
//    (`weight_by_size=False`); `macro_stderr` = sqrt(sum se_i^2) / T (independent tasks), which is
//    NOT what lm-eval prints for a macro-averaged group (it prints the pooled value).
//  - Paired comparison (same examples, baseline vs model): difference = mean(model) -
//    mean(baseline); recovery % = mean(model) / mean(baseline) x 100 (NaN when the baseline mean
//    is 0); difference_stderr = mean_stderr of the per-example differences; 95% CI of the
//    difference by the paired percentile bootstrap: B resamples of the example indices with
//    replacement (the same indices for both models), the difference of means on each, CI =
//    the (1-c)/2 and (1+c)/2 quantiles of the B values with linear interpolation between order
//    statistics (numpy.percentile's default). Deterministic: replicate b draws from
//    qs::Rng(mix(seed, b)), so results do not depend on the thread count.
//  - McNemar's exact test (0/1 scores only): b = baseline right & model wrong, c = baseline wrong
//    & model right; p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2)
//    (statsmodels `mcnemar(exact=True)`); p = 1 when b + c = 0. Computed in log space so that
//    counts in the millions neither overflow nor lose precision; `log_p` keeps the value when p
//    underflows to 0.
//  - Verdict: "difference within noise" when the bootstrap CI contains 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qs::eval {

double mean(std::span<const double> x);            // NaN when empty
double sample_stddev(std::span<const double> x);   // n-1 denominator; 0 when n < 2
double mean_stderr(std::span<const double> x);     // sample_stddev / sqrt(n)

struct ConfidenceInterval {
  double low = 0, high = 0;
  bool contains(double v) const { return low <= v && v <= high; }
};

struct BootstrapOptions {
  int resamples = 10000;      // B
  uint64_t seed = 20240607;   // any fixed value; results are a pure function of it
  double confidence = 0.95;   // two-sided
};

// Quantile of already sorted values with linear interpolation at q*(n-1) (numpy's default).
double quantile_sorted(std::span<const double> sorted, double q);

struct MeanWithCI {
  double mean = 0;
  double stderr_ = 0;   // lm-eval mean_stderr
  ConfidenceInterval ci;  // percentile bootstrap of the mean
  size_t n = 0;
};
// Mean of per-example values with its lm-eval stderr and a percentile-bootstrap CI.
MeanWithCI mean_with_ci(std::span<const double> x, const BootstrapOptions& opts = {});

// Percentile-bootstrap CI of any statistic of n examples: `statistic` receives the n resampled
// example indices of one replicate (called concurrently from several threads).
ConfidenceInterval bootstrap_ci(size_t n, const std::function<double(std::span<const uint32_t>)>& statistic,
                                const BootstrapOptions& opts = {});

struct McNemarResult {
  int64_t flips_to_wrong = 0;  // b: baseline right, model wrong
  int64_t flips_to_right = 0;  // c: baseline wrong, model right
  double p_value = 1;
  double log_p = 0;            // natural log of p_value (finite even when p_value underflows)
};
McNemarResult mcnemar_exact(int64_t flips_to_wrong, int64_t flips_to_right);

enum class Verdict { WithinNoise, ModelWorse, ModelBetter };
const char* verdict_text(Verdict v);  // "difference within noise", ...

struct PairedComparison {
  size_t n = 0;
  double baseline_mean = 0, model_mean = 0;
  double baseline_stderr = 0, model_stderr = 0;
  double difference = 0;          // model - baseline
  double difference_stderr = 0;   // mean_stderr of per-example differences
  double recovery_pct = 0;        // model / baseline x 100
  ConfidenceInterval difference_ci;
  // Present only when every score of both models is exactly 0 or 1.
  bool binary = false;
  int64_t both_right = 0, both_wrong = 0;
  int64_t flips_to_wrong = 0, flips_to_right = 0;
  double flips_to_wrong_pct = 0, flips_to_right_pct = 0;  // % of n
  std::optional<McNemarResult> mcnemar;

  Verdict verdict() const;
};

// Throws qs::Error when the vectors differ in length, are empty, or hold non-finite values.
PairedComparison compare_paired(std::span<const double> baseline, std::span<const double> model,
                                const BootstrapOptions& opts = {});

// --- Aggregation across tasks ---------------------------------------------------------------
struct TaskScore {
  std::string task;
  double mean = 0;
  double stderr_ = 0;
  size_t n = 0;
};
struct AggregateScore {
  double weighted_mean = 0, pooled_stderr = 0;  // lm-eval group values
  double macro_mean = 0, macro_stderr = 0;
  size_t n_examples = 0, n_tasks = 0;
};
AggregateScore aggregate_tasks(std::span<const TaskScore> tasks);

// Paired comparison over several tasks: difference of the example-weighted means and of the
// task-macro means, each with a stratified paired bootstrap CI (indices resampled within each
// task, the same for both models).
struct PairedTask {
  std::span<const double> baseline, model;
};
struct PairedAggregate {
  double baseline_weighted = 0, model_weighted = 0, weighted_difference = 0;
  double baseline_macro = 0, model_macro = 0, macro_difference = 0;
  double weighted_recovery_pct = 0, macro_recovery_pct = 0;
  ConfidenceInterval weighted_ci, macro_ci;
  size_t n_examples = 0, n_tasks = 0;
};
PairedAggregate compare_paired_tasks(std::span<const PairedTask> tasks, const BootstrapOptions& opts = {});

}  // namespace qs::eval
