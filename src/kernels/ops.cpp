// Row-wise and element-wise operations: dispatch, and the portable versions, which are also the
// references the vectorized ones are tested against.
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

#include "core/cpu.h"
#include "core/dtype.h"
#include "kernels/ops_internal.h"

namespace qs::kernels {

namespace detail {

void rmsnorm_generic(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void rope_generic(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin,
                  RopeStyle style) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const int i0 = style == RopeStyle::Half ? i : 2 * i;
        const int i1 = style == RopeStyle::Half ? i + half : 2 * i + 1;
        const float a = v[i0], b = v[i1];
        v[i0] = a * c[i] - b * s[i];
        v[i1] = b * c[i] + a * s[i];
      }
    }
  }
}

// The sum is kept in double: over a vocabulary of 10^5 terms an f32 running sum drifts by
// 1e-4 relative, while in double every probability is within a few f32 ulps.
void softmax_generic(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float log_sum_exp_generic(const float* x, int64_t n) {
  float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  return mx + static_cast<float>(std::log(sum));
}

void silu_mul_generic(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace_generic(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void bf16_to_f32_generic(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = qs::bf16_to_f32(in[i]);
}
void f32_to_bf16_generic(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = qs::f32_to_bf16(in[i]);
}
void f16_to_f32_generic(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = qs::f16_to_f32(in[i]);
}

}  // namespace detail

// Runs the AVX-512 or AVX2 version when the dispatch level allows it (compiled on x86 only).
#if QS_HAVE_X86
#define QS_OPS_SIMD(fn, ...)                                                  \
  do {                                                                        \
    const SimdLevel level_ = simd_level();                                    \
    if (level_ == SimdLevel::Avx512) return detail::fn##_avx512(__VA_ARGS__); \
    if (level_ == SimdLevel::Avx2) return detail::fn##_avx2(__VA_ARGS__);     \
  } while (0)
#else
#define QS_OPS_SIMD(fn, ...) (void)0
#endif

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  QS_OPS_SIMD(rmsnorm, x, w, y, rows, dim, eps);
  detail::rmsnorm_generic(x, w, y, rows, dim, eps);
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin, RopeStyle style) {
  QS_OPS_SIMD(rope, x, n_tokens, n_heads, head_dim, cos, sin, style);
  detail::rope_generic(x, n_tokens, n_heads, head_dim, cos, sin, style);
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  QS_OPS_SIMD(softmax, x, n);
  detail::softmax_generic(x, n);
}

float log_sum_exp(const float* x, int64_t n) {
  if (n <= 0) return -INFINITY;  // log of an empty sum
  QS_OPS_SIMD(log_sum_exp, x, n);
  return detail::log_sum_exp_generic(x, n);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  QS_OPS_SIMD(silu_mul, gate, up, out, n);
  detail::silu_mul_generic(gate, up, out, n);
}

void add_inplace(float* x, const float* y, int64_t n) {
  QS_OPS_SIMD(add_inplace, x, y, n);
  detail::add_inplace_generic(x, y, n);
}

void bf16_to_f32(const uint16_t* in, float* out, int64_t n) {
  QS_OPS_SIMD(bf16_to_f32, in, out, n);
  detail::bf16_to_f32_generic(in, out, n);
}

void f32_to_bf16(const float* in, uint16_t* out, int64_t n) {
  QS_OPS_SIMD(f32_to_bf16, in, out, n);
  detail::f32_to_bf16_generic(in, out, n);
}

void f16_to_f32(const uint16_t* in, float* out, int64_t n) {
  QS_OPS_SIMD(f16_to_f32, in, out, n);
  detail::f16_to_f32_generic(in, out, n);
}

}  // namespace qs::kernels
