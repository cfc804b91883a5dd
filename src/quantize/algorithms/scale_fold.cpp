#include "quantize/algorithms/scale_fold.h"

#include <cmath>

#include "core/error.h"

namespace qs::quant {

void check_scales(std::span<const float> s, const char* what) {
  for (size_t j = 0; j < s.size(); ++j)
    require(std::isfinite(s[j]) && s[j] > 0.0f, what, ": scale ", j, " is ", s[j], ", expected a positive number");
}

void fold_scales_into_norm(std::span<float> norm_weight, std::span<const float> s, std::span<float> norm_bias) {
  require(norm_weight.size() == s.size(), "folding scales into a norm: weight has ", norm_weight.size(),
          " channels, scales ", s.size());
  require(norm_bias.empty() || norm_bias.size() == s.size(), "folding scales into a norm: bias has ",
          norm_bias.size(), " channels, scales ", s.size());
  check_scales(s, "folding scales into a norm");
  for (size_t j = 0; j < s.size(); ++j) norm_weight[j] /= s[j];
  for (size_t j = 0; j < norm_bias.size(); ++j) norm_bias[j] /= s[j];
}

void fold_scales_into_output_rows(std::span<float> w_prev, int64_t rows, int64_t cols, std::span<const float> s,
                                  std::span<float> bias) {
  require(rows > 0 && cols > 0 && w_prev.size() == static_cast<size_t>(rows * cols),
          "folding scales into a linear's outputs: weight has ", w_prev.size(), " values, expected ", rows, " x ",
          cols);
  require(s.size() == static_cast<size_t>(rows), "folding scales into a linear's outputs: ", s.size(),
          " scales for ", rows, " output rows");
  require(bias.empty() || bias.size() == static_cast<size_t>(rows),
          "folding scales into a linear's outputs: bias has ", bias.size(), " values, expected ", rows);
  check_scales(s, "folding scales into a linear's outputs");
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w_prev.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] /= s[r];
  }
  for (size_t r = 0; r < bias.size(); ++r) bias[r] /= s[r];
}

void scale_input_columns(std::span<float> w, int64_t rows, int64_t cols, std::span<const float> s) {
  require(rows > 0 && cols > 0 && w.size() == static_cast<size_t>(rows * cols), "scaling a linear's inputs: weight has ",
          w.size(), " values, expected ", rows, " x ", cols);
  require(s.size() == static_cast<size_t>(cols), "scaling a linear's inputs: ", s.size(), " scales for ", cols,
          " input columns");
  check_scales(s, "scaling a linear's inputs");
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] *= s[c];
  }
}

}  // namespace qs::quant
