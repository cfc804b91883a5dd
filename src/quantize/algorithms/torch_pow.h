// x^e for f32 tensors the way torch.pow(tensor, scalar) evaluates it on the CPU, so that the
// scale formulas of AWQ and SmoothQuant round like their PyTorch originals: exponents 0.5,
// -0.5, -1, 2, 3 and -2 take torch's exact fast paths (sqrt, 1 / sqrt, 1 / x, x * x, ...); any
// other exponent is rounded to f32 and goes to powf (torch: Sleef or std::pow, both within
// 1 ulp, so results may differ from torch's in the last bit there).
#pragma once

#include <cmath>

namespace qs::quant {

inline float torch_pow(float x, double e) {
  if (e == 0.5) return std::sqrt(x);
  if (e == -0.5) return 1.0f / std::sqrt(x);
  if (e == -1.0) return 1.0f / x;
  if (e == 2.0) return x * x;
  if (e == 3.0) return x * x * x;
  if (e == -2.0) return 1.0f / (x * x);
  return std::pow(x, static_cast<float>(e));
}

}  // namespace qs::quant
