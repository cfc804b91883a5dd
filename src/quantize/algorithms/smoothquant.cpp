#include "quantize/algorithms/smoothquant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quantize/algorithms/torch_pow.h"

namespace qs::quant {

std::vector<float> weight_column_absmax(std::span<const LinearWeight> linears, int64_t k) {
  require(!linears.empty() && k > 0, "weight maxima need at least one linear and a positive input size");
  std::vector<float> amax(k, 0.0f);
  for (size_t l = 0; l < linears.size(); ++l) {
    const LinearWeight& lin = linears[l];
    require(lin.rows > 0 && lin.w.size() == static_cast<size_t>(lin.rows * k), "weight maxima: linear ", l,
            " has ", lin.w.size(), " values, expected ", lin.rows, " x ", k);
    for (int64_t r = 0; r < lin.rows; ++r) {
      const float* row = lin.w.data() + r * k;
      for (int64_t c = 0; c < k; ++c) amax[c] = std::max(amax[c], std::fabs(row[c]));
    }
  }
  return amax;
}

std::vector<float> smoothquant_scales(std::span<const float> act_absmax, std::span<const float> weight_absmax,
                                      const SmoothQuantOptions& opt) {
  require(act_absmax.size() == weight_absmax.size() && !act_absmax.empty(), "SmoothQuant: ", act_absmax.size(),
          " activation maxima but ", weight_absmax.size(), " weight maxima");
  require(opt.alpha >= 0.0f && opt.alpha <= 1.0f, "SmoothQuant: alpha must be in [0, 1], got ", opt.alpha);
  std::vector<float> s(act_absmax.size());
  for (size_t j = 0; j < s.size(); ++j) {
    require(std::isfinite(act_absmax[j]) && act_absmax[j] >= 0.0f && std::isfinite(weight_absmax[j]) &&
                weight_absmax[j] >= 0.0f,
            "SmoothQuant: channel ", j, " has activation max ", act_absmax[j], " and weight max ", weight_absmax[j],
            ", expected finite non-negative values");
    const float w = std::max(weight_absmax[j], opt.weight_clamp);
    const float v = torch_pow(act_absmax[j], opt.alpha) / torch_pow(w, 1.0f - opt.alpha);
    s[j] = std::max(v, opt.scale_clamp);
  }
  return s;
}

}  // namespace qs::quant
