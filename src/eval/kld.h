// KL-divergence statistics of a model against a baseline, token by token, with the same
// definitions as llama.cpp's `llama-perplexity --kl-divergence` (tools/perplexity/perplexity.cpp:
// `log_softmax(..., kl_divergence_result&)`, `kl_divergence()` and its final report).
//
// Per scored token t (the caller feeds the positions it scores; llama.cpp scores, in each chunk
// of n_ctx tokens, the positions n_ctx/2 .. n_ctx-2 predicting the next token):
//   log p = log_softmax(baseline logits), log q = log_softmax(model logits), both in double;
//   KLD_t    = sum_i p_i (log p_i - log q_i)                 (KL(base || model), nats)
//   nll_t    = -log q[next], nll_base_t = -log p[next]
//   dp_t     = q[next] - p[next]                             ("Δp": model minus baseline)
//   same_top = argmax q == argmax p (first index on ties, as llama.cpp's strict '>' scan)
// Aggregates (llama.cpp's `mean_and_uncertainty` and `covariance` lambdas):
//   mean(x) = S1/N; err(x) = sqrt((S2/N - mean^2) / (N-1)) when that variance is > 0 and N > 10,
//   else 0 (i.e. the sample stddev over sqrt(N));
//   cov(a,b) = (Sab/N - (Sa/N)(Sb/N)) / (N-1), 0 when N < 10.
//   PPL(Q) = exp(mean nll) ± PPL(Q) * err(nll); same for PPL(base);
//   ln(PPL(Q)/PPL(base)) = mean nll - mean nll_base ± sqrt(err_a^2 + err_b^2 - 2 cov);
//   PPL ratio = exp(that) ± ratio * its err; PPL(Q)-PPL(base) ± sqrt(e_q^2 + e_b^2 - 2 PPL(Q) PPL(base) cov);
//   Cor(ln PPL(Q), ln PPL(base)) = cov / (err_a err_b);
//   Mean KLD ± err(KLD); Mean Δp ± err(Δp); RMS Δp = sqrt(mean dp^2) ± 0.5/RMS * err(dp^2);
//   Same top p = n_same/N ± sqrt(p(1-p)/(N-1));
//   percentiles of the sorted per-token values: value at fraction f is the linear interpolation
//   at position f*(N-1) (llama.cpp's `percentile` lambda = numpy.percentile's default); median =
//   mean of the two middle values when N is even; Maximum/Minimum = last/first sorted value.
// Differences from llama.cpp: it evaluates per-token values in float and reads the baseline from
// its 16-bit quantized log-prob file (steps of (max-min)/65535, at most 16/65535 nats; tail
// terms with base log-prob <= -16 dropped) and picks percentile positions in float arithmetic;
// here everything is exact in double. Same formulas, so figures agree to the precision of
// llama.cpp's quantized baseline (a few significant digits), not necessarily to every printed one. Where a
// variance difference is negative by rounding (identical models) it is clamped to 0 instead of
// giving NaN. llama.cpp prints nothing with fewer than 100 tokens; `stats()` computes anyway.
//
// Compact baseline: instead of full-vocabulary log-probs (llama.cpp writes ~11 GiB for
// Llama-3-8B on WikiText-2), keep per token the k most probable ids with their log-probs, the
// log of the remaining (tail) mass and the exact log-prob of the correct next token. PPL(base),
// ln-ratio, Δp and same-top are then exact. The KLD is computed with the tail as one bucket:
//   KLD_k = sum_{i in top} p_i log(p_i/q_i) + P_T log(P_T/Q_T),  P_T, Q_T = tail masses.
// By the log-sum inequality (the data-processing inequality for the map that merges the tail),
//   KLD - KLD_k = P_T * KL(p_T/P_T || q_T/Q_T) >= 0,
// so KLD_k is a LOWER BOUND of the exact KLD, and the gap is the tail mass times the divergence
// of the two tail distributions renormalised. It vanishes when the tail is empty or the model
// reshapes the tail proportionally, and is small when P_T is small; no bound tighter than that
// exists without the baseline's tail. Stats from compact baselines carry kld_is_lower_bound and
// the mean/max tail mass P_T so that a report can say so. Measured on Zipf-like distributions
// over 32k tokens with logit noise spread over the whole vocabulary (tests/eval/kld_test.cpp),
// the mean KLD comes out lower than the exact one by about twice the mean tail mass:
// k=16: 14% (tail 8%), k=64: 7% (3.6%), k=256: 3.5% (1.7%), k=1024: 1.7% (0.8%).
// A record takes 24 + 12k bytes: k=256 is ~3 KB per scored token (~0.45 GB for 150k tokens).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qs::eval {

struct KldStats {
  size_t tokens = 0;
  // Perplexity statistics.
  double ppl_model = 0, ppl_model_err = 0;          // "Mean PPL(Q)"
  double ppl_base = 0, ppl_base_err = 0;            // "Mean PPL(base)"
  double ln_ppl_correlation = 0;                    // "Cor(ln(PPL(Q)), ln(PPL(base)))", as a fraction
  double ln_ppl_ratio = 0, ln_ppl_ratio_err = 0;    // "Mean ln(PPL(Q)/PPL(base))"
  double ppl_ratio = 0, ppl_ratio_err = 0;          // "Mean PPL(Q)/PPL(base)"
  double ppl_diff = 0, ppl_diff_err = 0;            // "Mean PPL(Q)-PPL(base)"
  // KL divergence statistics (nats).
  double kld_mean = 0, kld_mean_err = 0;
  double kld_max = 0, kld_p99_9 = 0, kld_p99 = 0, kld_p95 = 0, kld_p90 = 0, kld_median = 0;
  double kld_p10 = 0, kld_p5 = 0, kld_p1 = 0, kld_p0_1 = 0, kld_min = 0;
  // Token probability statistics. Δp values are probability differences (fractions); llama.cpp
  // prints them x100 with a '%' sign. same_top_pct is already in percent.
  double dp_mean = 0, dp_mean_err = 0;
  double dp_max = 0, dp_p99_9 = 0, dp_p99 = 0, dp_p95 = 0, dp_p90 = 0, dp_p75 = 0, dp_median = 0;
  double dp_p25 = 0, dp_p10 = 0, dp_p5 = 0, dp_p1 = 0, dp_p0_1 = 0, dp_min = 0;
  double dp_rms = 0, dp_rms_err = 0;
  double same_top_pct = 0, same_top_pct_err = 0;
  // Compact baselines: KLD values are lower bounds; mean and max tail mass of the baseline.
  bool kld_is_lower_bound = false;
  double baseline_tail_mass_mean = 0, baseline_tail_mass_max = 0;
};

// The report lines of llama.cpp's final summary, with its labels and number formats.
std::string llama_style_report(const KldStats& s);

// A baseline stored as top-k log-probs per token (see the file comment). In memory and on disk.
// File layout (little-endian): "QSKLDB01", u32 version (1), u32 n_vocab, u32 k, u32 0,
// u64 n_tokens, then n_tokens records of { i32 next_token, i32 0, f64 next_logprob,
// f64 tail_logprob (-inf when empty), i32 ids[k], f64 logprobs[k] }, ids by decreasing
// log-prob (ties: lower id first), so ids[0] is the baseline's argmax.
class CompactBaseline {
 public:
  static constexpr int kDefaultK = 256;  // see the measured gaps in the file comment

  CompactBaseline() = default;
  CompactBaseline(int32_t n_vocab, int k);  // k is clipped to n_vocab

  int32_t n_vocab() const { return n_vocab_; }
  int k() const { return k_; }
  size_t size() const { return next_token_.size(); }

  // Summarises one position from the baseline's full logits.
  void append(std::span<const float> logits, int32_t next_token);
  // Row-major [n, n_vocab] logits, n = next_tokens.size(), summarised in parallel.
  void append_rows(std::span<const float> logits, std::span<const int32_t> next_tokens);

  int32_t next_token(size_t t) const { return next_token_[t]; }
  double next_logprob(size_t t) const { return next_logprob_[t]; }
  double tail_logprob(size_t t) const { return tail_logprob_[t]; }
  std::span<const int32_t> ids(size_t t) const { return {ids_.data() + t * k_, static_cast<size_t>(k_)}; }
  std::span<const double> logprobs(size_t t) const {
    return {logprobs_.data() + t * k_, static_cast<size_t>(k_)};
  }

  std::string serialize() const;
  // Validates everything (sizes, ranges, order, probabilities summing to 1); errors name
  // `source` (a file name), the record and the field.
  static CompactBaseline parse(std::string_view bytes, const std::string& source);
  void save(const std::string& path) const;  // atomic write
  static CompactBaseline load(const std::string& path);

 private:
  void push(int32_t next_token, double next_logprob, double tail_logprob, std::span<const int32_t> ids,
            std::span<const double> logprobs);
  int32_t n_vocab_ = 0;
  int k_ = 0;
  std::vector<int32_t> next_token_;
  std::vector<double> next_logprob_, tail_logprob_;
  std::vector<int32_t> ids_;
  std::vector<double> logprobs_;
};

// Accumulates per-token values. Not thread-safe: use one per thread and merge() them.
class KldAccumulator {
 public:
  // Exact: full-vocabulary logits of the baseline and of the model at one position, and the
  // correct next token. Throws qs::Error on size mismatch, bad token id, NaN or +inf logits.
  void add(std::span<const float> base_logits, std::span<const float> model_logits, int32_t next_token);
  // From a compact baseline (token index t) and the model's full logits at the same position.
  void add(const CompactBaseline& base, size_t t, std::span<const float> model_logits);
  // Many positions at once, computed in parallel on the default thread pool: row-major
  // [n, n_vocab] logits with n = next_tokens.size(). Same result as adding the rows in order.
  void add_rows(std::span<const float> base_logits, std::span<const float> model_logits, size_t n_vocab,
                std::span<const int32_t> next_tokens);
  // Rows of model logits for compact-baseline tokens first_token, first_token + 1, ...
  void add_rows(const CompactBaseline& base, size_t first_token, std::span<const float> model_logits);
  void merge(const KldAccumulator& other);

  size_t tokens() const { return kld_values_.size(); }
  std::span<const double> kld_values() const { return kld_values_; }  // in order added
  std::span<const double> dp_values() const { return dp_values_; }
  KldStats stats() const;

 private:
  void add_token(double kld, double nll, double nll_base, bool same_top);
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp_ = 0, sum_dp2_ = 0, sum_dp4_ = 0;
  size_t n_same_top_ = 0;
  size_t n_compact_ = 0;
  double sum_tail_ = 0, max_tail_ = 0;
  std::vector<double> kld_values_, dp_values_;
};

}  // namespace qs::eval
