#include "eval/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "testing/testing.h"

namespace qs::eval {
namespace {

using nlohmann::json;

json run_reference(const std::string& script, const json& input) {
  std::string dir = testing::make_temp_dir("stats-ref");
  std::string in = dir + "/input.json";
  testing::write_text(in, input.dump());
  auto r = testing::run_command(testing::python() + " " + testing::shell_quote(testing::source_dir() + script) + " " +
                                testing::shell_quote(in));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

void expect_rel(double got, double want, double rel, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), rel * std::max(std::fabs(want), 1e-300)) << what << ": got " << got << " want " << want;
}

TEST(Stats, MeanAndStderrHandValues) {
  std::vector<double> acc = {1, 0, 1, 1};
  EXPECT_DOUBLE_EQ(mean(acc), 0.75);
  EXPECT_DOUBLE_EQ(sample_stddev(acc), 0.5);  // sqrt((3*0.0625 + 0.5625) / 3)
  EXPECT_DOUBLE_EQ(mean_stderr(acc), 0.25);
  std::vector<double> one = {0.3};
  EXPECT_EQ(mean_stderr(one), 0.0);
  EXPECT_TRUE(std::isnan(mean_stderr(std::vector<double>{})));
}

TEST(Stats, QuantileInterpolatesLikeNumpy) {
  std::vector<double> v;
  for (int i = 1; i <= 101; ++i) v.push_back(i);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.1), 11.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.5), 51.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(v, 0.999), 100.9);
  std::vector<double> four = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(quantile_sorted(four, 0.5), 2.5);     // mean of the two middle values
  EXPECT_DOUBLE_EQ(quantile_sorted(four, 0.025), 1.075);  // numpy.percentile([1,2,3,4], 2.5)
  EXPECT_DOUBLE_EQ(quantile_sorted(four, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(four, 1.0), 4.0);
}

TEST(Stats, McNemarHandValues) {
  EXPECT_DOUBLE_EQ(mcnemar_exact(0, 5).p_value, 0.0625);         // 2 / 2^5
  EXPECT_DOUBLE_EQ(mcnemar_exact(5, 0).p_value, 0.0625);
  EXPECT_NEAR(mcnemar_exact(1, 9).p_value, 22.0 / 1024.0, 1e-15);  // 2 * (1 + 10) / 2^10
  EXPECT_EQ(mcnemar_exact(10, 10).p_value, 1.0);
  EXPECT_EQ(mcnemar_exact(0, 0).p_value, 1.0);
  EXPECT_EQ(mcnemar_exact(0, 1).p_value, 1.0);                    // 2 * 1/2
  EXPECT_THROW(mcnemar_exact(-1, 3), Error);
}

TEST(Stats, AgainstPythonReference) {
  std::vector<std::pair<int64_t, int64_t>> counts = {{0, 5},       {1, 9},       {10, 10},      {3, 17},
                                                     {40, 61},     {250, 310},   {4000, 4300},  {12000, 12500},
                                                     {0, 3000},    {100, 2000},  {60000, 61000}, {7, 8}};
  Rng rng(7);
  std::vector<std::vector<double>> vectors;
  for (int v = 0; v < 6; ++v) {
    std::vector<double> x(50 + 97 * v);
    for (auto& e : x) e = v % 2 ? (rng.uniform() < 0.63 ? 1.0 : 0.0) : rng.normal() * 3 + 1;
    vectors.push_back(x);
  }
  // lm-eval's own group test data: three 0/1 subtasks.
  auto ones_zeros = [](int ones, int zeros) {
    std::vector<double> x(ones, 1.0);
    x.resize(ones + zeros, 0.0);
    return x;
  };
  std::vector<std::vector<std::vector<double>>> groups = {
      {ones_zeros(40, 60), ones_zeros(30, 30), ones_zeros(20, 60)}, {ones_zeros(35, 65), ones_zeros(20, 20)}};

  json input = {{"mcnemar", json::array()}, {"vectors", vectors}, {"groups", groups}};
  for (auto [b, c] : counts) input["mcnemar"].push_back({b, c});
  json ref = run_reference("/tests/eval/ref/stats_ref.py", input);

  for (size_t i = 0; i < counts.size(); ++i) {
    auto r = mcnemar_exact(counts[i].first, counts[i].second);
    std::string what = cat("mcnemar(", counts[i].first, ",", counts[i].second, ")");
    expect_rel(r.log_p, ref["mcnemar"][i]["log_p"].get<double>(), 1e-9, what + " log_p");
    double want = ref["mcnemar"][i]["p"].get<double>();
    if (want > 1e-300) expect_rel(r.p_value, want, 1e-9, what + " p");
    else EXPECT_EQ(r.p_value, 0.0) << what;
  }
  for (size_t i = 0; i < vectors.size(); ++i) {
    expect_rel(mean(vectors[i]), ref["vectors"][i]["mean"].get<double>(), 1e-12, cat("mean ", i));
    expect_rel(mean_stderr(vectors[i]), ref["vectors"][i]["stderr"].get<double>(), 1e-12, cat("stderr ", i));
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<TaskScore> tasks;
    for (auto& t : groups[g]) tasks.push_back({"t", mean(t), mean_stderr(t), t.size()});
    auto a = aggregate_tasks(tasks);
    const json& want = ref["groups"][g];
    expect_rel(a.weighted_mean, want["weighted_mean"].get<double>(), 1e-12, "weighted_mean");
    expect_rel(a.macro_mean, want["macro_mean"].get<double>(), 1e-12, "macro_mean");
    expect_rel(a.pooled_stderr, want["pooled_stderr"].get<double>(), 1e-12, "pooled_stderr");
    expect_rel(a.macro_stderr, want["macro_stderr"].get<double>(), 1e-12, "macro_stderr");
    // lm-eval's claim for its pooled formula: close to the stderr of the concatenated samples.
    EXPECT_NEAR(a.pooled_stderr, want["concat_stderr"].get<double>(), 2e-3);
  }
}

TEST(Stats, AggregateMatchesLmEvalExample) {
  // lm-eval test_metrics: aggregate_subtask_metrics([0.3, 0.2, 0.4], [20, 40, 100]).
  std::vector<TaskScore> tasks = {{"a", 0.3, 0.1, 20}, {"b", 0.2, 0.05, 40}, {"c", 0.4, 0.04, 100}};
  auto a = aggregate_tasks(tasks);
  EXPECT_DOUBLE_EQ(a.weighted_mean, 0.3375);
  EXPECT_DOUBLE_EQ(a.macro_mean, 0.3);
  EXPECT_EQ(a.n_examples, 160u);
  EXPECT_EQ(a.n_tasks, 3u);
}

// Correlated 0/1 correctness of a baseline and a slightly worse quantized model.
void make_pair(Rng& rng, size_t n, double p_base, double flip_wrong, double flip_right, std::vector<double>& base,
               std::vector<double>& model) {
  base.resize(n);
  model.resize(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = rng.uniform() < p_base ? 1.0 : 0.0;
    double u = rng.uniform();
    model[i] = base[i] == 1.0 ? (u < flip_wrong ? 0.0 : 1.0) : (u < flip_right ? 1.0 : 0.0);
  }
}

TEST(Stats, PairedComparisonCountsAndVerdict) {
  std::vector<double> base = {1, 1, 1, 0, 0, 1, 0, 1, 1, 1};
  std::vector<double> model = {1, 0, 1, 0, 1, 0, 0, 1, 1, 1};
  auto r = compare_paired(base, model, {.resamples = 2000});
  EXPECT_TRUE(r.binary);
  EXPECT_EQ(r.both_right, 5);
  EXPECT_EQ(r.both_wrong, 2);
  EXPECT_EQ(r.flips_to_wrong, 2);
  EXPECT_EQ(r.flips_to_right, 1);
  EXPECT_DOUBLE_EQ(r.flips_to_wrong_pct, 20.0);
  EXPECT_DOUBLE_EQ(r.flips_to_right_pct, 10.0);
  EXPECT_DOUBLE_EQ(r.baseline_mean, 0.7);
  EXPECT_DOUBLE_EQ(r.model_mean, 0.6);
  EXPECT_NEAR(r.difference, -0.1, 1e-15);
  EXPECT_NEAR(r.recovery_pct, 0.6 / 0.7 * 100, 1e-12);
  ASSERT_TRUE(r.mcnemar.has_value());
  EXPECT_DOUBLE_EQ(r.mcnemar->p_value, 1.0);  // 2 * P[X <= 1], X ~ Bin(3, 1/2) = 2 * 4/8
  EXPECT_EQ(r.verdict(), Verdict::WithinNoise);
  EXPECT_STREQ(verdict_text(r.verdict()), "difference within noise");

  // Real-valued scores: no McNemar, no flips.
  std::vector<double> f1b = {0.5, 0.7, 0.9}, f1m = {0.4, 0.7, 0.95};
  auto real = compare_paired(f1b, f1m, {.resamples = 500});
  EXPECT_FALSE(real.binary);
  EXPECT_FALSE(real.mcnemar.has_value());

  // A clear, large degradation is flagged as significant.
  Rng rng(3);
  make_pair(rng, 3000, 0.7, 0.2, 0.02, base, model);
  auto worse = compare_paired(base, model, {.resamples = 2000});
  EXPECT_EQ(worse.verdict(), Verdict::ModelWorse);
  EXPECT_LT(worse.mcnemar->p_value, 1e-20);

  EXPECT_THROW(compare_paired(f1b, std::vector<double>{1, 2}), Error);
  std::vector<double> bad = {0.5, NAN, 1};
  EXPECT_THROW(compare_paired(f1b, bad), Error);
}

TEST(Stats, BootstrapIsDeterministicAndSeeded) {
  Rng rng(11);
  std::vector<double> base, model;
  make_pair(rng, 500, 0.6, 0.1, 0.08, base, model);
  auto a = compare_paired(base, model, {.resamples = 3000, .seed = 5});
  auto b = compare_paired(base, model, {.resamples = 3000, .seed = 5});
  auto c = compare_paired(base, model, {.resamples = 3000, .seed = 6});
  EXPECT_EQ(a.difference_ci.low, b.difference_ci.low);
  EXPECT_EQ(a.difference_ci.high, b.difference_ci.high);
  EXPECT_NE(a.difference_ci.low, c.difference_ci.low);
}

TEST(Stats, BootstrapWidthMatchesNormalApproximationForLargeN) {
  Rng rng(21);
  std::vector<double> base, model;
  make_pair(rng, 20000, 0.62, 0.06, 0.04, base, model);
  auto r = compare_paired(base, model, {.resamples = 4000});
  double normal_width = 2 * 1.959964 * r.difference_stderr;
  double width = r.difference_ci.high - r.difference_ci.low;
  EXPECT_NEAR(width / normal_width, 1.0, 0.05) << "bootstrap " << width << " normal " << normal_width;
  double center = 0.5 * (r.difference_ci.high + r.difference_ci.low);
  EXPECT_NEAR(center, r.difference, 0.1 * r.difference_stderr);
}

TEST(Stats, BootstrapCoverageIsAbout95Percent) {
  // 1000 simulated paired datasets with a known true mean difference (0.1): the 95% CI must
  // contain it about 95% of the time (binomial sd 0.7%).
  const int datasets = 1000, n = 100;
  Rng rng(99);
  int covered = 0;
  std::vector<double> base(n), model(n);
  for (int d = 0; d < datasets; ++d) {
    for (int i = 0; i < n; ++i) {
      base[i] = rng.normal();
      model[i] = base[i] + 0.1 + 0.5 * rng.normal();
    }
    auto r = compare_paired(base, model, {.resamples = 1000, .seed = static_cast<uint64_t>(d)});
    covered += r.difference_ci.contains(0.1);
  }
  double coverage = static_cast<double>(covered) / datasets;
  EXPECT_GT(coverage, 0.925);
  EXPECT_LT(coverage, 0.975);
}

TEST(Stats, MeanWithCi) {
  std::vector<double> x = {0.2, 0.4, 0.9, 0.1, 0.5, 0.3};
  auto r = mean_with_ci(x, {.resamples = 2000});
  EXPECT_DOUBLE_EQ(r.mean, mean(x));
  EXPECT_DOUBLE_EQ(r.stderr_, mean_stderr(x));
  EXPECT_LT(r.ci.low, r.mean);
  EXPECT_GT(r.ci.high, r.mean);
  EXPECT_GE(r.ci.low, 0.1);
  EXPECT_LE(r.ci.high, 0.9);
  std::vector<double> constant(20, 0.5);
  auto c = mean_with_ci(constant, {.resamples = 200});
  EXPECT_EQ(c.ci.low, 0.5);
  EXPECT_EQ(c.ci.high, 0.5);
}

TEST(Stats, PairedTasksWeightedAndMacro) {
  Rng rng(5);
  std::vector<double> b1, m1, b2, m2;
  make_pair(rng, 400, 0.8, 0.1, 0.05, b1, m1);
  make_pair(rng, 100, 0.4, 0.1, 0.05, b2, m2);
  std::vector<PairedTask> tasks = {{b1, m1}, {b2, m2}};
  auto r = compare_paired_tasks(tasks, {.resamples = 3000});
  EXPECT_EQ(r.n_examples, 500u);
  EXPECT_NEAR(r.baseline_weighted, (mean(b1) * 400 + mean(b2) * 100) / 500, 1e-12);
  EXPECT_NEAR(r.baseline_macro, (mean(b1) + mean(b2)) / 2, 1e-12);
  EXPECT_NEAR(r.weighted_difference, r.model_weighted - r.baseline_weighted, 1e-15);
  EXPECT_TRUE(r.weighted_ci.contains(r.weighted_difference));
  EXPECT_TRUE(r.macro_ci.contains(r.macro_difference));
  // One task alone: the stratified bootstrap equals the plain paired bootstrap.
  std::vector<PairedTask> single = {{b1, m1}};
  auto s = compare_paired_tasks(single, {.resamples = 3000, .seed = 77});
  auto p = compare_paired(b1, m1, {.resamples = 3000, .seed = 77});
  EXPECT_NEAR(s.weighted_ci.low, p.difference_ci.low, 1e-14);
  EXPECT_NEAR(s.weighted_ci.high, p.difference_ci.high, 1e-14);
}

}  // namespace
}  // namespace qs::eval
