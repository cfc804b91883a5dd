// Folding per-input-channel scales s [K] into a network without changing what it computes, as
// AWQ and SmoothQuant do: the consuming linears' weight columns are multiplied by s and their
// input is divided by s, the division being folded into whatever produces that input:
//     (x / s) (W diag(s))^T = x W^T
//  - produced by a norm (RMSNorm / LayerNorm): weight /= s, bias /= s
//      (AutoAWQ scale_ln_fcs, SmoothQuant smooth_ln_fcs);
//  - produced by a linear (v_proj -> o_proj, up_proj -> down_proj): W_prev[j, :] /= s[j],
//      bias[j] /= s[j] (AutoAWQ scale_fc_fc; s has one entry per output row of W_prev);
//  - consumers: W[:, j] *= s[j].
// Arithmetic is f32 division / multiplication per element, as torch's div_ and mul_.
// Scales must be positive and finite (qs::Error otherwise); shapes are checked.
#pragma once

#include <cstdint>
#include <span>

namespace qs::quant {

// A Linear layer's weight W [rows, cols] (row-major), read-only; several of them usually share
// one input (q/k/v_proj, gate/up_proj).
struct LinearWeight {
  std::span<const float> w;
  int64_t rows = 0;
};

void fold_scales_into_norm(std::span<float> norm_weight, std::span<const float> s, std::span<float> norm_bias = {});
void fold_scales_into_output_rows(std::span<float> w_prev, int64_t rows, int64_t cols, std::span<const float> s,
                                  std::span<float> bias = {});
void scale_input_columns(std::span<float> w, int64_t rows, int64_t cols, std::span<const float> s);

// Throws unless every scale is finite and positive; `what` names the scales in the message.
void check_scales(std::span<const float> s, const char* what);

}  // namespace qs::quant
