// AVX-512 versions of the row-wise and element-wise operations (ops.h). Same arithmetic as the
// portable versions in ops.cpp, in the same order where that order is observable:
//  - rmsnorm: sum of squares in double, then y = (x * inv) * w as there;
//  - rope: a*c - b*s and b*c + a*s, not fused;
//  - softmax / log_sum_exp / silu: exp from avx512::exp (about 1 ulp), sums in double.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <cmath>

#include "kernels/ops_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

using namespace avx512;

QS_TARGET_AVX512 void rmsnorm_avx512(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < dim; i += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(lanes16(dim - i), xr + i);
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
      const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
      s0 = _mm512_fmadd_pd(lo, lo, s0);
      s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(static_cast<float>(ss / dim) + eps));
    for (int64_t i = 0; i < dim; i += 16) {
      const __mmask16 m = lanes16(dim - i);
      const __m512 v =
          _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), inv), _mm512_maskz_loadu_ps(m, w + i));
      _mm512_mask_storeu_ps(yr + i, m, v);
    }
  }
}

QS_TARGET_AVX512 void rope_avx512(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos,
                                  const float* sin, RopeStyle style) {
  const int half = head_dim / 2;
  // Interleaved: lanes (2i, 2i+1) hold (a, b); cos/sin of pair i are spread to both lanes.
  const __m512i spread_lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi64(static_cast<int64_t>(0x80000000u)));  // -0 in even lanes
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * static_cast<int64_t>(head_dim);
      if (style == RopeStyle::Half) {
        for (int i = 0; i < half; i += 16) {
          const __mmask16 m = lanes16(half - i);
          const __m512 cv = _mm512_maskz_loadu_ps(m, c + i), sv = _mm512_maskz_loadu_ps(m, s + i);
          const __m512 a = _mm512_maskz_loadu_ps(m, v + i), b = _mm512_maskz_loadu_ps(m, v + half + i);
          _mm512_mask_storeu_ps(v + i, m, _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv)));
          _mm512_mask_storeu_ps(v + half + i, m, _mm512_add_ps(_mm512_mul_ps(b, cv), _mm512_mul_ps(a, sv)));
        }
      } else {
        for (int i = 0; i < half; i += 8) {  // 8 pairs = 16 values per step
          const __mmask16 m = lanes16(2 * (half - i));
          const __m512 cv8 =
              _mm512_castps256_ps512(_mm256_maskz_loadu_ps(static_cast<__mmask8>(lanes16(half - i)), c + i));
          const __m512 sv8 =
              _mm512_castps256_ps512(_mm256_maskz_loadu_ps(static_cast<__mmask8>(lanes16(half - i)), s + i));
          const __m512 cv = _mm512_permutexvar_ps(spread_lo, cv8);
          const __m512 sv = _mm512_xor_ps(_mm512_permutexvar_ps(spread_lo, sv8), sign);  // (-s, s)
          const __m512 ab = _mm512_maskz_loadu_ps(m, v + 2 * i);
          const __m512 ba = _mm512_permute_ps(ab, 0xb1);  // swap within pairs
          // (a c + b (-s), b c + a s) = (a c - b s, b c + a s), exactly as the scalar code.
          _mm512_mask_storeu_ps(v + 2 * i, m, _mm512_add_ps(_mm512_mul_ps(ab, cv), _mm512_mul_ps(ba, sv)));
        }
      }
    }
  }
}

QS_TARGET_AVX512 float max_avx512(const float* x, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16)
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), lanes16(n - i), x + i));
  return hmax(mx);
}

QS_TARGET_AVX512 void softmax_avx512(float* x, int64_t n) {
  const __m512 mx = _mm512_set1_ps(max_avx512(x, n));
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();  // double sums, as the portable version
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx)));
    _mm512_mask_storeu_ps(x + i, m, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

QS_TARGET_AVX512 float log_sum_exp_avx512(const float* x, int64_t n) {
  const float mxs = max_avx512(x, n);
  const __m512 mx = _mm512_set1_ps(mxs);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    // Masked-off lanes read -inf: exp(-inf - max) = 0.
    const __m512 e = exp(_mm512_sub_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, x + i), mx));
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  return mxs + static_cast<float>(std::log(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
}

QS_TARGET_AVX512 void silu_mul_avx512(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 r = _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i));
    _mm512_mask_storeu_ps(out + i, m, r);
  }
}

QS_TARGET_AVX512 void add_inplace_avx512(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

QS_TARGET_AVX512 void bf16_to_f32_avx512(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm512_mask_storeu_ps(out + i, m, bf16x16_to_f32(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

QS_TARGET_AVX512 void f32_to_bf16_avx512(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm256_mask_storeu_epi16(out + i, m, f32x16_to_bf16(_mm512_maskz_loadu_ps(m, in + i)));
  }
}

QS_TARGET_AVX512 void f16_to_f32_avx512(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

QS_TARGET_AVX512 void exp_avx512(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes16(n - i);
    _mm512_mask_storeu_ps(out + i, m, exp(_mm512_maskz_loadu_ps(m, in + i)));
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
