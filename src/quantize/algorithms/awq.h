// AWQ (Lin, Tang, Tang, Yang, Dang, Gan, Han 2023, "AWQ: Activation-aware Weight Quantization
// for LLM Compression and Acceleration"), following AutoAWQ's AwqQuantizer
// (_search_best_scale / _compute_best_scale, _compute_best_clip, apply_scale, apply_clip).
//
// Scale search, per set of linears that share an input X (q/k/v_proj, gate/up_proj, ...):
//   x_scale[j] = mean |X[:, j]|                                 (awq_activation_scale)
//   w_scale[j] = mean over all rows of the concatenated weights of |w| / (group absmax + 1e-6)
//                                                                (awq_weight_scale)
//   for ratio = i / n_grid, i = 0 .. n_grid - 1:
//     s = x_scale^ratio / (w_scale^(1 - ratio) + 1e-4)   (duo_scaling; else s = x_scale^ratio)
//     s = max(s, 1e-4);  s = s / sqrt(max(s) * min(s));  inf / NaN entries -> 1
//     loss = loss_fn(s)   (the block-output MSE of Q(W diag(s)) diag(s)^-1 against W)
//   keep the first ratio with the smallest loss. The caller then folds s (scale_fold.h): the
//   producer of X divided by s, the linears' columns multiplied by s.
// AutoAWQ's defaults: n_grid 20, duo_scaling true, 4-bit asymmetric groups of 128.
// The arithmetic is f32 in AutoAWQ's order (torch_pow.h for the powers); statistics sum in f64.
//
// Clip search, per linear (AutoAWQ skips q/k_proj, whose outputs meet in a product): for each
// output row and group, with amax = max |w| over the group, try
//   max_val = amax * (1 - i / n_grid) for i = 0 .. int(max_shrink * n_grid) - 1,
// quantize clamp(w, -max_val, max_val) and measure, over sampled tokens (every
// max(1, rows / n_sample_tokens)-th row of X), the mean of (x . w - x . w_q)^2 restricted to
// the group's columns; keep the first max_val with the smallest error (strictly smaller than
// all before). awq_apply_clip clamps W to [-max_val, max_val] per group.
// The error is computed as (x . (w_q - w))^2, the same quantity as AutoAWQ's
// (x . w_q - x . w)^2 without the cancellation.
//
// Quantizer: the one the result is stored with, formats::quantize_int with an IntQuantConfig
// (AutoAWQ's pseudo_quantize_tensor for asymmetric groups is the same except that its range
// is [min, max] of the group rather than [min(min, 0), max(max, 0)] and is clamped to >= 1e-5;
// the two agree on every group that holds values of both signs and a range >= 1e-5).
//
// Threads: GEMMs in fixed tiles on the pool (OpenBLAS single-threaded inside); results are
// identical for any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "formats/int_quant.h"
#include "quantize/algorithms/scale_fold.h"

namespace qs::quant {

// mean |X[:, j]| of X [rows, k] (ChannelStats::mean_abs).
std::vector<float> awq_activation_scale(std::span<const float> x, int64_t rows, int64_t k,
                                        ThreadPool& pool = default_pool());
// Per input column: mean over every row of the given linears of |w| / (absmax of w's group + 1e-6).
// `group_size` must divide k (k for per-channel quantization).
std::vector<float> awq_weight_scale(std::span<const LinearWeight> linears, int64_t k, int64_t group_size);

struct AwqScaleOptions {
  int n_grid = 20;
  bool duo_scaling = true;
};

// The candidate scales for one ratio (including normalization and the inf / NaN -> 1 rule).
std::vector<float> awq_candidate_scales(std::span<const float> x_scale, std::span<const float> w_scale, double ratio,
                                        bool duo_scaling);

using AwqLossFn = std::function<double(std::span<const float> scales)>;

struct AwqScaleResult {
  std::vector<float> scales;  // the best candidate
  double ratio = -1.0;        // its ratio (best index / n_grid)
  int best_index = -1;
  std::vector<double> losses;  // loss of every ratio, in grid order
};

// Grid search over the ratio; `loss` is called once per ratio. Throws if no loss is finite.
AwqScaleResult awq_search_scales(std::span<const float> x_scale, std::span<const float> w_scale, const AwqLossFn& loss,
                                 const AwqScaleOptions& options = {});

// The standalone block loss for linears that share the input X [rows, k]: the block output is
// their concatenated outputs, so loss(s) = mean over rows and all output channels of
// (X (W - W_q(s))^T)^2 with W_q(s) = quantize(W diag(s)) / s (f32, as AutoAWQ's
// fc.weight.mul_(s); pseudo_quantize(...) / s). Keeps references to X and the weights.
// Cost per call: one [rows, k] x [k, n_total] SGEMM (AutoAWQ runs the block forward per ratio),
// so a search costs 20 of them: pass a sample of the calibration rows for long calibration sets.
class AwqLinearsLoss {
 public:
  AwqLinearsLoss(std::span<const float> x, int64_t rows, int64_t k, std::vector<LinearWeight> linears,
                 const formats::IntQuantConfig& quant, std::string name, ThreadPool& pool = default_pool());
  double operator()(std::span<const float> scales) const;
  // W_q(s) of linear `l` (f32, [rows, k]).
  std::vector<float> quantized_weight(size_t l, std::span<const float> scales) const;

 private:
  std::span<const float> x_;
  int64_t rows_, k_;
  std::vector<LinearWeight> linears_;
  formats::IntQuantConfig quant_;
  std::string name_;
  ThreadPool* pool_;
};

struct AwqClipOptions {
  int n_grid = 20;
  double max_shrink = 0.5;
  int64_t n_sample_tokens = 512;
  int64_t oc_batch = 256;  // output rows per task (memory: sampled tokens x oc_batch floats); no effect on results
};

// max_val [n, groups] for W [n, k] with calibration input X [rows, k].
std::vector<float> awq_search_clip(std::span<const float> w, int64_t n, int64_t k, std::span<const float> x,
                                   int64_t rows, const formats::IntQuantConfig& quant, const AwqClipOptions& options,
                                   std::string_view name, ThreadPool& pool = default_pool());
// W[r, c] = clamp(W[r, c], -max_val[r, g], max_val[r, g]) for c in group g.
void awq_apply_clip(std::span<float> w, int64_t n, int64_t k, std::span<const float> max_val, int64_t group_size);

}  // namespace qs::quant
