// SmoothQuant (Xiao, Lin, Seznec, Wu, Demouth, Han 2022, "SmoothQuant: Accurate and Efficient
// Post-Training Quantization for Large Language Models"): migrates activation outliers into
// the weights with a per-input-channel scale before W8A8 quantization,
//     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)      (alpha = 0.5, the paper's default)
// where max|W_j| is over the j-th input column of every linear that reads X (q/k/v_proj, or
// gate/up_proj). X / s is folded into the preceding norm (norm weight /= s) and W into
// W diag(s) (scale_fold.h: fold_scales_into_norm, scale_input_columns).
//
// Clamps, as the reference code (mit-han-lab/smoothquant smooth.py, smooth_ln_fcs): the weight
// maxima are clamped to >= 1e-5, the activation maxima are not, and s is clamped to >= 1e-5
// (a channel never active gets s = 1e-5). f32 arithmetic; alpha = 0.5 uses sqrt, as torch's
// pow does for an exponent of 0.5.
// llm-compressor's SmoothQuantModifier uses ranges instead of maxima, act max - min and
// 2 * max|W_j|, and s_j = act_j where a weight column is all zero; for activations whose
// range is symmetric (max - min = 2 max|x|) and alpha = 0.5 that is the same s.
//
// Activation maxima come from ChannelStats (calib_stats.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantize/algorithms/scale_fold.h"

namespace qs::quant {

struct SmoothQuantOptions {
  float alpha = 0.5f;            // migration strength in [0, 1]
  float weight_clamp = 1e-5f;    // max|W_j| clamped to at least this
  float scale_clamp = 1e-5f;     // s clamped to at least this
};

// max |W[:, j]| over all given linears (each [rows, k]).
std::vector<float> weight_column_absmax(std::span<const LinearWeight> linears, int64_t k);

// s [K] from the activation maxima [K] and weight_column_absmax [K].
std::vector<float> smoothquant_scales(std::span<const float> act_absmax, std::span<const float> weight_absmax,
                                      const SmoothQuantOptions& options = {});

}  // namespace qs::quant
