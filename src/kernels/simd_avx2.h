// AVX2 + FMA building blocks shared by the kernels (internal to src/kernels).
// Everything here is always_inline and carries the AVX2 target attribute, so it is only ever
// compiled into functions that are themselves QS_TARGET_AVX2 (or a superset): no out-of-line
// AVX2 copy can be picked by portable code.
#pragma once

#include "core/cpu.h"

#if QS_HAVE_X86
// Same guarded include of immintrin.h as simd_avx512.h (GCC bug 105593 warnings inside the
// intrinsics headers); whichever of the two headers comes first does the include, so a file
// may use both in any order as long as one of them precedes any other include of immintrin.h.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include <cstdint>

#define QS_INLINE_AVX2 inline __attribute__((always_inline, target("avx2,fma,f16c")))

namespace qs::kernels::avx2 {

// Lane mask (all ones in the low n lanes, n clamped to 0..8) for maskload/maskstore/blendv.
QS_INLINE_AVX2 __m256i lanes8(int64_t n) {
  const int c = n >= 8 ? 8 : n <= 0 ? 0 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 bf16 -> 8 f32 (exact: bf16 is the top half of an f32).
QS_INLINE_AVX2 __m256 bf16x8_to_f32(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 f32 -> 8 bf16, round to nearest even, NaN kept quiet: bit-identical to qs::f32_to_bf16
// and to avx512::f32x16_to_bf16.
QS_INLINE_AVX2 __m128i f32x8_to_bf16(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  // Signed compare is safe: abs and 0x7f800000 are both non-negative as int32.
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i bits = _mm256_blendv_epi8(rounded, quiet, nan);  // 16-bit values in 32-bit lanes
  // packus works per 128-bit lane: pack against itself and pick qwords 0 and 2.
  const __m256i packed = _mm256_packus_epi32(bits, bits);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}

// Transposes an 8x8 matrix of 32-bit values held in r[0..7] (row i -> column i).
QS_INLINE_AVX2 void transpose8x8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  // t[2j] = a0 b0 a1 b1 | a4 b4 a5 b5 (per 128-bit lane); pairs of rows -> quads of rows.
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  // u[4q + c] lane h holds column (4h + c) of rows 4q..4q+3: join the halves.
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// exp(x) for every lane, the same method and constants as avx512::exp (about 1 ulp over the
// whole f32 range): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2), exp(r) by its
// degree-7 Taylor polynomial. AVX2 has no VSCALEFPS, so 2^n (n in [-150, 128]) is applied as
// two exact powers 2^a * 2^b with a = floor(n/2), b = n - a, both normal floats: p * 2^a is
// exact (p ~ 1), the second product rounds once, so overflow gives +inf and underflow rounds
// gradually to denormals/0 exactly as one scaling would. -inf -> 0, NaN propagates.
QS_INLINE_AVX2 __m256 exp(__m256 x) {
  // min/max with x as the second operand return x when it is NaN, so NaN flows through.
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
  x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);  // exact: ln2_hi has 9 free low bits
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417232e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);  // NaN lanes give INT_MIN: p is NaN there anyway
  const __m256i a = _mm256_srai_epi32(ni, 1);
  const __m256i b = _mm256_sub_epi32(ni, a);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 scale_a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 scale_b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, scale_a), scale_b);
}

// Sum of the 8 lanes.
QS_INLINE_AVX2 float hsum(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

QS_INLINE_AVX2 float hmax(__m256 v) {
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// Sum of the 4 lanes of a double vector.
QS_INLINE_AVX2 double hsum_pd(__m256d v) {
  __m128d q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));
  return _mm_cvtsd_f64(q);
}

}  // namespace qs::kernels::avx2

#endif  // QS_HAVE_X86
