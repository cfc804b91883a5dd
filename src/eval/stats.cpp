#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"

namespace qs::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Each replicate gets its own generator so that the result does not depend on how replicates
// are spread over threads.
Rng replicate_rng(uint64_t seed, int64_t replicate) {
  return Rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(replicate))));
}

// Uniform index in [0, n) by multiply-shift (bias ~ n / 2^64, far below anything measurable)
// instead of a 64-bit division per draw.
inline size_t index_below(Rng& rng, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(rng.next_u64()) * n) >> 64);
}

void check_options(const BootstrapOptions& opts) {
  require(opts.resamples >= 1, "bootstrap: resamples must be >= 1, got ", opts.resamples);
  require(opts.confidence > 0 && opts.confidence < 1, "bootstrap: confidence must be in (0, 1), got ",
          opts.confidence);
}

// Runs `stat(rng)` for every replicate (in parallel) and returns the values sorted.
template <class Stat>
std::vector<double> bootstrap_sorted(const BootstrapOptions& opts, Stat&& stat) {
  check_options(opts);
  std::vector<double> values(static_cast<size_t>(opts.resamples));
  default_pool().parallel_for(opts.resamples, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      Rng rng = replicate_rng(opts.seed, b);
      values[static_cast<size_t>(b)] = stat(rng);
    }
  });
  std::sort(values.begin(), values.end());
  return values;
}

ConfidenceInterval percentile_ci(std::span<const double> sorted, double confidence) {
  double alpha = (1 - confidence) / 2;
  return {quantile_sorted(sorted, alpha), quantile_sorted(sorted, 1 - alpha)};
}

// Mean of x over n indices drawn with replacement.
double resampled_mean(std::span<const double> x, Rng& rng) {
  double sum = 0;
  size_t n = x.size();
  for (size_t i = 0; i < n; ++i) sum += x[index_below(rng, n)];
  return sum / static_cast<double>(n);
}

void check_scores(std::span<const double> x, const char* what) {
  for (size_t i = 0; i < x.size(); ++i)
    require(std::isfinite(x[i]), "paired comparison: ", what, " score of example ", i, " is not finite (", x[i], ")");
}

double recovery(double model, double baseline) { return baseline == 0 ? kNaN : model / baseline * 100.0; }

}  // namespace

double mean(std::span<const double> x) {
  if (x.empty()) return kNaN;
  double sum = 0;
  for (double v : x) sum += v;
  return sum / static_cast<double>(x.size());
}

double sample_stddev(std::span<const double> x) {
  if (x.size() < 2) return 0;
  double mu = mean(x), ss = 0;
  for (double v : x) ss += (v - mu) * (v - mu);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double mean_stderr(std::span<const double> x) {
  if (x.empty()) return kNaN;
  return sample_stddev(x) / std::sqrt(static_cast<double>(x.size()));
}

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return kNaN;
  if (q <= 0) return sorted.front();
  if (q >= 1) return sorted.back();
  double pos = q * static_cast<double>(sorted.size() - 1);
  size_t i = static_cast<size_t>(pos);
  double frac = pos - static_cast<double>(i);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + frac * (sorted[i + 1] - sorted[i]);
}

MeanWithCI mean_with_ci(std::span<const double> x, const BootstrapOptions& opts) {
  MeanWithCI r;
  r.n = x.size();
  if (x.empty()) {
    r.mean = r.stderr_ = r.ci.low = r.ci.high = kNaN;
    return r;
  }
  r.mean = mean(x);
  r.stderr_ = mean_stderr(x);
  auto values = bootstrap_sorted(opts, [&](Rng& rng) { return resampled_mean(x, rng); });
  r.ci = percentile_ci(values, opts.confidence);
  return r;
}

ConfidenceInterval bootstrap_ci(size_t n, const std::function<double(std::span<const uint32_t>)>& statistic,
                                const BootstrapOptions& opts) {
  require(n > 0 && n <= std::numeric_limits<uint32_t>::max(), "bootstrap: number of examples ", n,
          " out of range");
  auto values = bootstrap_sorted(opts, [&](Rng& rng) {
    std::vector<uint32_t> idx(n);
    for (auto& i : idx) i = static_cast<uint32_t>(index_below(rng, n));
    return statistic(idx);
  });
  return percentile_ci(values, opts.confidence);
}

McNemarResult mcnemar_exact(int64_t flips_to_wrong, int64_t flips_to_right) {
  require(flips_to_wrong >= 0 && flips_to_right >= 0, "McNemar: counts must be non-negative, got ",
          flips_to_wrong, " and ", flips_to_right);
  McNemarResult r;
  r.flips_to_wrong = flips_to_wrong;
  r.flips_to_right = flips_to_right;
  const int64_t n = flips_to_wrong + flips_to_right;
  const int64_t k = std::min(flips_to_wrong, flips_to_right);
  if (2 * k >= n - 1) return r;  // P[X <= k] >= 1/2 by symmetry: p = 1 exactly (also n = 0)
  // P[X <= k] = C(n,k)/2^n * sum_{i<=k} C(n,i)/C(n,k); the ratios come from the recurrence
  // C(n,i-1)/C(n,i) = i/(n-i+1), so only one log-binomial is needed.
  auto log_gamma = [](double v) {
    int sign = 0;
    return ::lgamma_r(v, &sign);
  };
  const double nd = static_cast<double>(n), kd = static_cast<double>(k);
  const double log_term_k = log_gamma(nd + 1) - log_gamma(kd + 1) - log_gamma(nd - kd + 1) - nd * std::log(2.0);
  double ratio = 1, sum = 1;
  for (int64_t i = k; i >= 1; --i) {
    ratio *= static_cast<double>(i) / static_cast<double>(n - i + 1);
    sum += ratio;
    if (ratio < sum * 1e-18) break;  // remaining terms shrink geometrically
  }
  double log_p = std::log(2.0) + log_term_k + std::log(sum);
  r.log_p = std::min(log_p, 0.0);
  r.p_value = std::exp(r.log_p);
  return r;
}

const char* verdict_text(Verdict v) {
  switch (v) {
    case Verdict::WithinNoise: return "difference within noise";
    case Verdict::ModelWorse: return "model significantly worse than baseline";
    case Verdict::ModelBetter: return "model significantly better than baseline";
  }
  return "?";
}

Verdict PairedComparison::verdict() const {
  if (difference_ci.contains(0.0)) return Verdict::WithinNoise;
  return difference_ci.high < 0 ? Verdict::ModelWorse : Verdict::ModelBetter;
}

PairedComparison compare_paired(std::span<const double> baseline, std::span<const double> model,
                                const BootstrapOptions& opts) {
  require(baseline.size() == model.size(), "paired comparison: baseline has ", baseline.size(),
          " examples but model has ", model.size(), " (they must be scored on the same examples)");
  require(!baseline.empty(), "paired comparison: no examples");
  check_scores(baseline, "baseline");
  check_scores(model, "model");

  PairedComparison r;
  const size_t n = baseline.size();
  r.n = n;
  r.baseline_mean = mean(baseline);
  r.model_mean = mean(model);
  r.baseline_stderr = mean_stderr(baseline);
  r.model_stderr = mean_stderr(model);
  std::vector<double> diff(n);
  for (size_t i = 0; i < n; ++i) diff[i] = model[i] - baseline[i];
  r.difference = r.model_mean - r.baseline_mean;
  r.difference_stderr = mean_stderr(diff);
  r.recovery_pct = recovery(r.model_mean, r.baseline_mean);

  auto is01 = [](double v) { return v == 0.0 || v == 1.0; };
  r.binary = std::all_of(baseline.begin(), baseline.end(), is01) && std::all_of(model.begin(), model.end(), is01);
  if (r.binary) {
    for (size_t i = 0; i < n; ++i) {
      bool b = baseline[i] == 1.0, m = model[i] == 1.0;
      if (b && m) ++r.both_right;
      else if (!b && !m) ++r.both_wrong;
      else if (b) ++r.flips_to_wrong;
      else ++r.flips_to_right;
    }
    r.flips_to_wrong_pct = 100.0 * static_cast<double>(r.flips_to_wrong) / static_cast<double>(n);
    r.flips_to_right_pct = 100.0 * static_cast<double>(r.flips_to_right) / static_cast<double>(n);
    r.mcnemar = mcnemar_exact(r.flips_to_wrong, r.flips_to_right);
  }

  // The difference of resampled means equals the resampled mean of the differences.
  auto values = bootstrap_sorted(opts, [&](Rng& rng) { return resampled_mean(diff, rng); });
  r.difference_ci = percentile_ci(values, opts.confidence);
  return r;
}

AggregateScore aggregate_tasks(std::span<const TaskScore> tasks) {
  require(!tasks.empty(), "task aggregation: no tasks");
  AggregateScore r;
  r.n_tasks = tasks.size();
  double weighted = 0, macro = 0, pooled_ss = 0, se2 = 0;
  for (const auto& t : tasks) {
    require(t.n > 0, "task aggregation: task ", quote(t.task), " has no examples");
    double n = static_cast<double>(t.n);
    r.n_examples += t.n;
    weighted += t.mean * n;
    macro += t.mean;
    pooled_ss += (n - 1) * t.stderr_ * t.stderr_ * n;
    se2 += t.stderr_ * t.stderr_;
  }
  double total = static_cast<double>(r.n_examples), count = static_cast<double>(r.n_tasks);
  r.weighted_mean = weighted / total;
  r.macro_mean = macro / count;
  r.pooled_stderr = r.n_examples > r.n_tasks ? std::sqrt(pooled_ss / (total - count) / total) : kNaN;
  r.macro_stderr = std::sqrt(se2) / count;
  return r;
}

PairedAggregate compare_paired_tasks(std::span<const PairedTask> tasks, const BootstrapOptions& opts) {
  require(!tasks.empty(), "paired task comparison: no tasks");
  PairedAggregate r;
  r.n_tasks = tasks.size();
  std::vector<std::vector<double>> diffs(tasks.size());
  double base_w = 0, model_w = 0, base_m = 0, model_m = 0;
  for (size_t t = 0; t < tasks.size(); ++t) {
    const auto& task = tasks[t];
    require(task.baseline.size() == task.model.size() && !task.baseline.empty(), "paired task comparison: task ", t,
            " has ", task.baseline.size(), " baseline and ", task.model.size(),
            " model scores (need the same non-zero count)");
    check_scores(task.baseline, "baseline");
    check_scores(task.model, "model");
    double mb = mean(task.baseline), mm = mean(task.model), n = static_cast<double>(task.baseline.size());
    base_w += mb * n;
    model_w += mm * n;
    base_m += mb;
    model_m += mm;
    r.n_examples += task.baseline.size();
    diffs[t].resize(task.baseline.size());
    for (size_t i = 0; i < task.baseline.size(); ++i) diffs[t][i] = task.model[i] - task.baseline[i];
  }
  double total = static_cast<double>(r.n_examples), count = static_cast<double>(r.n_tasks);
  r.baseline_weighted = base_w / total;
  r.model_weighted = model_w / total;
  r.weighted_difference = r.model_weighted - r.baseline_weighted;
  r.baseline_macro = base_m / count;
  r.model_macro = model_m / count;
  r.macro_difference = r.model_macro - r.baseline_macro;
  r.weighted_recovery_pct = recovery(r.model_weighted, r.baseline_weighted);
  r.macro_recovery_pct = recovery(r.model_macro, r.baseline_macro);

  // One pass computes both statistics from the same resample; the replicate seeds are shared,
  // so the two bootstraps are drawn from identical index sets.
  check_options(opts);
  std::vector<double> weighted(static_cast<size_t>(opts.resamples)), macro(weighted.size());
  default_pool().parallel_for(opts.resamples, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      Rng rng = replicate_rng(opts.seed, b);
      double sum_w = 0, sum_m = 0;
      for (const auto& d : diffs) {
        double task_mean = resampled_mean(d, rng);
        sum_w += task_mean * static_cast<double>(d.size());
        sum_m += task_mean;
      }
      weighted[static_cast<size_t>(b)] = sum_w / total;
      macro[static_cast<size_t>(b)] = sum_m / count;
    }
  });
  std::sort(weighted.begin(), weighted.end());
  std::sort(macro.begin(), macro.end());
  r.weighted_ci = percentile_ci(weighted, opts.confidence);
  r.macro_ci = percentile_ci(macro, opts.confidence);
  return r;
}

}  // namespace qs::eval
