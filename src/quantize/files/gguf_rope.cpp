// Llama-3 rope scaling <-> llama.cpp's rope_freqs.weight.
#include <algorithm>
#include <cmath>

#include "quantize/files/gguf_names.h"

namespace qs::gguf_names {

namespace {

// theta_i = base^(-2i/d) as transformers computes it in float32 (rope_inv_freq does the same).
std::vector<float> base_frequencies(const ModelConfig& c) {
  std::vector<float> f(static_cast<size_t>(c.head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta),
                           static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
  return f;
}

std::vector<float> factors_for(const std::vector<float>& freqs, const RopeScaling& s) {
  const double low_wavelen = static_cast<double>(s.original_max_position_embeddings) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.original_max_position_embeddings) / s.high_freq_factor;
  std::vector<float> out;
  for (float f : freqs) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(s.factor));
    } else {
      const double smooth = (static_cast<double>(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return out;
}

bool close(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= 1e-5 * std::fabs(b[i]))) return false;
  return true;
}

}  // namespace

std::vector<float> llama3_rope_factors(const ModelConfig& c) { return factors_for(base_frequencies(c), *c.rope_scaling); }

std::optional<RopeScaling> llama3_scaling_from_factors(const ModelConfig& c, const std::vector<float>& factors,
                                                       std::optional<int64_t> original_context) {
  const std::vector<float> freqs = base_frequencies(c);
  if (factors.size() != freqs.size()) return std::nullopt;
  RopeScaling s;
  s.type = "llama3";
  s.factor = *std::max_element(factors.begin(), factors.end());
  s.original_max_position_embeddings = original_context.value_or(8192);
  if (close(factors, std::vector<float>(factors.size(), 1.0f))) {
    s.type = "none";
    return s;
  }
  if (!(s.factor > 1)) return std::nullopt;
  if (close(factors_for(freqs, s), factors)) return s;  // the defaults: low 1, high 4
  // Between the bands, smooth = (orig / wavelen - low) / (high - low) is linear in 1 / wavelen:
  // fit it on the blended frequencies, then read low and high off for the original context.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < freqs.size(); ++i) {
    const double f = factors[i];
    if (!(f > 1 + 1e-6 && f < s.factor * (1 - 1e-6))) continue;
    const double x = freqs[i] / (2 * M_PI);
    const double y = (1 / f - 1 / s.factor) / (1 - 1 / s.factor);
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double det = n * sxx - sx * sx;
  if (n < 2 || !(det > 0)) return std::nullopt;
  const double a = (n * sxy - sx * sy) / det, b = (sy - a * sx) / n;
  if (!(a > 0)) return std::nullopt;
  const double span = static_cast<double>(s.original_max_position_embeddings) / a;
  s.low_freq_factor = -b * span;
  s.high_freq_factor = s.low_freq_factor + span;
  // Snap to the 1e-6 grid the configs' round numbers sit on.
  for (double* v : {&s.low_freq_factor, &s.high_freq_factor}) *v = std::round(*v * 1e6) / 1e6;
  if (!(s.low_freq_factor > 0) || !close(factors_for(freqs, s), factors)) return std::nullopt;
  return s;
}

}  // namespace qs::gguf_names
