// AVX2 + FMA versions of the row-wise and element-wise operations (ops.h). Same arithmetic as
// the portable versions in ops.cpp and the AVX-512 ones, in the same order where that order is
// observable:
//  - rmsnorm: sum of squares in double, then y = (x * inv) * w;
//  - rope: a*c - b*s and b*c + a*s, not fused (bit-identical to the portable version);
//  - softmax / log_sum_exp / silu: exp from avx2::exp (bit-identical to avx512::exp), sums in
//    double.
// The last n % 8 elements go through an 8-float stack buffer padded with a neutral value, so
// every function has one vector body and no masked stores (slow on AMD).
#include "kernels/simd_avx2.h"  // first: see the note there
//
#include <cmath>

#include "core/dtype.h"
#include "kernels/ops_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

using namespace avx2;

namespace {

// 8 floats of x from i on: a full load, or the tail padded with `pad`.
QS_INLINE_AVX2 __m256 load_or_pad(const float* x, int64_t i, int64_t n, float pad) {
  if (i + 8 <= n) return _mm256_loadu_ps(x + i);
  alignas(32) float buf[8];
  for (int k = 0; k < 8; ++k) buf[k] = i + k < n ? x[i + k] : pad;
  return _mm256_load_ps(buf);
}

// 4 floats of x from i on, the tail padded with zeros (the upper half of the result is undefined).
QS_INLINE_AVX2 __m256 load4_or_pad(const float* x, int64_t i, int64_t n) {
  if (i + 4 <= n) return _mm256_castps128_ps256(_mm_loadu_ps(x + i));
  alignas(16) float buf[4];
  for (int k = 0; k < 4; ++k) buf[k] = i + k < n ? x[i + k] : 0.0f;
  return _mm256_castps128_ps256(_mm_load_ps(buf));
}

// Stores the lanes of v that fall below n.
QS_INLINE_AVX2 void store_upto(float* y, int64_t i, int64_t n, __m256 v) {
  if (i + 8 <= n) return _mm256_storeu_ps(y + i, v);
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (int k = 0; i + k < n; ++k) y[i + k] = buf[k];
}

// Adds the 8 lanes of e to two double accumulators (4 lanes each).
QS_INLINE_AVX2 void add_to_pd(__m256 e, __m256d& s0, __m256d& s1) {
  s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
  s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

}  // namespace

QS_TARGET_AVX2 void rmsnorm_avx2(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    // x^2 is exact in double, so FMA or not the sums are the same.
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int64_t i = 0; i < dim; i += 8) {
      const __m256 v = load_or_pad(xr, i, dim, 0.0f);
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      s0 = _mm256_fmadd_pd(lo, lo, s0);
      s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    const double ss = hsum_pd(_mm256_add_pd(s0, s1));
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(static_cast<float>(ss / dim) + eps));
    for (int64_t i = 0; i < dim; i += 8) {
      const __m256 scaled = _mm256_mul_ps(load_or_pad(xr, i, dim, 0.0f), inv);
      store_upto(yr, i, dim, _mm256_mul_ps(scaled, load_or_pad(w, i, dim, 0.0f)));
    }
  }
}

QS_TARGET_AVX2 void rope_avx2(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos,
                              const float* sin, RopeStyle style) {
  const int half = head_dim / 2;
  // Interleaved: lanes (2i, 2i+1) hold (a, b); cos/sin of pair i are spread to both lanes.
  const __m256i spread = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi64x(static_cast<int64_t>(0x80000000u)));  // -0 in even lanes
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    float* xt = x + t * n_heads * static_cast<int64_t>(head_dim);
    if (style == RopeStyle::Half) {
      for (int h = 0; h < n_heads; ++h) {
        float* v = xt + h * static_cast<int64_t>(head_dim);
        for (int i = 0; i < half; i += 8) {
          const __m256 cv = load_or_pad(c, i, half, 0.0f), sv = load_or_pad(s, i, half, 0.0f);
          const __m256 a = load_or_pad(v, i, half, 0.0f), b = load_or_pad(v + half, i, half, 0.0f);
          store_upto(v, i, half, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
          store_upto(v + half, i, half, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
        }
      }
    } else {
      // Heads inside: the spread cos/sin of 4 pairs serve every head of the token.
      for (int i = 0; i < half; i += 4) {  // 4 pairs = 8 values per step
        const __m256 cv = _mm256_permutevar8x32_ps(load4_or_pad(c, i, half), spread);
        const __m256 sv = _mm256_xor_ps(_mm256_permutevar8x32_ps(load4_or_pad(s, i, half), spread), sign);
        for (int h = 0; h < n_heads; ++h) {
          float* v = xt + h * static_cast<int64_t>(head_dim);
          const __m256 ab = load_or_pad(v, 2 * i, 2 * half, 0.0f);
          const __m256 ba = _mm256_permute_ps(ab, 0xb1);  // swap within pairs
          // (a c + b (-s), b c + a s) = (a c - b s, b c + a s), exactly as the scalar code.
          store_upto(v, 2 * i, 2 * half, _mm256_add_ps(_mm256_mul_ps(ab, cv), _mm256_mul_ps(ba, sv)));
        }
      }
    }
  }
}

QS_TARGET_AVX2 float max_avx2(const float* x, int64_t n) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 8) mx = _mm256_max_ps(mx, load_or_pad(x, i, n, -INFINITY));
  return hmax(mx);
}

QS_TARGET_AVX2 void softmax_avx2(float* x, int64_t n) {
  const __m256 mx = _mm256_set1_ps(max_avx2(x, n));
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();  // double sums, as the portable version
  for (int64_t i = 0; i < n; i += 8) {
    // Padding lanes read -inf: exp(-inf - max) = 0.
    const __m256 e = exp(_mm256_sub_ps(load_or_pad(x, i, n, -INFINITY), mx));
    store_upto(x, i, n, e);
    add_to_pd(e, s0, s1);
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / hsum_pd(_mm256_add_pd(s0, s1))));
  for (int64_t i = 0; i < n; i += 8) store_upto(x, i, n, _mm256_mul_ps(load_or_pad(x, i, n, 0.0f), inv));
}

QS_TARGET_AVX2 float log_sum_exp_avx2(const float* x, int64_t n) {
  const float mxs = max_avx2(x, n);
  const __m256 mx = _mm256_set1_ps(mxs);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) add_to_pd(exp(_mm256_sub_ps(load_or_pad(x, i, n, -INFINITY), mx)), s0, s1);
  return mxs + static_cast<float>(std::log(hsum_pd(_mm256_add_pd(s0, s1))));
}

QS_TARGET_AVX2 void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 g = load_or_pad(gate, i, n, 0.0f);
    const __m256 e = exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    store_upto(out, i, n, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), load_or_pad(up, i, n, 0.0f)));
  }
}

QS_TARGET_AVX2 void add_inplace_avx2(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 8)
    store_upto(x, i, n, _mm256_add_ps(load_or_pad(x, i, n, 0.0f), load_or_pad(y, i, n, 0.0f)));
}

// The conversions are exact per element: the tail is left to the scalar definitions.
QS_TARGET_AVX2 void bf16_to_f32_avx2(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, bf16x8_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = qs::bf16_to_f32(in[i]);
}

QS_TARGET_AVX2 void f32_to_bf16_avx2(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), f32x8_to_bf16(_mm256_loadu_ps(in + i)));
  for (; i < n; ++i) out[i] = qs::f32_to_bf16(in[i]);
}

QS_TARGET_AVX2 void f16_to_f32_avx2(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = qs::f16_to_f32(in[i]);
}

QS_TARGET_AVX2 void exp_avx2(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) store_upto(out, i, n, exp(load_or_pad(in, i, n, 0.0f)));
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
