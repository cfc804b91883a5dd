// AVX-512 building blocks shared by the kernels (internal to src/kernels).
// Everything here is always_inline and carries the AVX-512 target attribute, so it is only
// ever compiled into functions that are themselves QS_TARGET_AVX512* (no ODR mixing of
// instruction sets: an out-of-line copy compiled for AVX-512 can never be picked by
// portable code).
#pragma once

#include "core/cpu.h"

#if QS_HAVE_X86
// GCC 12 warns inside its own AVX-512 headers (the `__Y = __Y` of _mm512_undefined_*, GCC
// bug 105593) wherever they are inlined; the warning is attributed to the header lines, so it
// is silenced for them only. This header must come before any other include of immintrin.h.
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

#define QS_INLINE_AVX512 \
  inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))

namespace qs::kernels::avx512 {

// Mask with the low n lanes set (n clamped to 0..16).
QS_INLINE_AVX512 __mmask16 lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1u);
}
// Mask with the low n lanes set (n clamped to 0..32).
QS_INLINE_AVX512 __mmask32 lanes32(int64_t n) {
  return n >= 32 ? __mmask32(0xffffffffu) : n <= 0 ? __mmask32(0) : static_cast<__mmask32>((1u << n) - 1u);
}

// 16 bf16 -> 16 f32 (exact: bf16 is the top half of an f32).
QS_INLINE_AVX512 __m512 bf16x16_to_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16 f32 -> 16 bf16, round to nearest even, NaN kept quiet: bit-identical to qs::f32_to_bf16
// (denormals are rounded like any other value, unlike VCVTNEPS2BF16 which flushes them).
QS_INLINE_AVX512 __m256i f32x16_to_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet));
}

// f32 values rounded to bf16 precision and widened back (what the bf16 contract multiplies).
QS_INLINE_AVX512 __m512 round_to_bf16(__m512 x) { return bf16x16_to_f32(f32x16_to_bf16(x)); }

// Transposes a 16x16 matrix of 32-bit values held in r[0..15] (row i -> column i).
QS_INLINE_AVX512 void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // t[2j]   = a0 b0 a1 b1 | a4 b4 a5 b5 | ...  (per 128-bit lane)
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Each 128-bit lane of r[4q + c] now holds column (lane*4 + c) of rows 4q..4q+3.
  for (int c = 0; c < 4; ++c) {
    const __m512 a = r[c], b = r[4 + c], e = r[8 + c], f = r[12 + c];
    const __m512 ab_lo = _mm512_shuffle_f32x4(a, b, 0x88);  // lanes a0 a2 b0 b2
    const __m512 ab_hi = _mm512_shuffle_f32x4(a, b, 0xdd);  // lanes a1 a3 b1 b3
    const __m512 ef_lo = _mm512_shuffle_f32x4(e, f, 0x88);
    const __m512 ef_hi = _mm512_shuffle_f32x4(e, f, 0xdd);
    t[c] = _mm512_shuffle_f32x4(ab_lo, ef_lo, 0x88);       // lane 0 of a b e f
    t[c + 8] = _mm512_shuffle_f32x4(ab_lo, ef_lo, 0xdd);   // lane 2
    t[c + 4] = _mm512_shuffle_f32x4(ab_hi, ef_hi, 0x88);   // lane 1
    t[c + 12] = _mm512_shuffle_f32x4(ab_hi, ef_hi, 0xdd);  // lane 3
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// exp(x) for every lane, within about 1 ulp of the exact value over the whole f32 range:
// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2), exp(r) by its degree-7 Taylor
// polynomial (truncation error < 0.15 ulp there), then scaled by 2^n with VSCALEFPS, which
// rounds overflow to +inf and underflow gradually to denormals/0. NaN propagates.
QS_INLINE_AVX512 __m512 exp(__m512 x) {
  // max/min with x as the second operand return x when it is NaN, so NaN flows through.
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // exact: ln2_hi has 9 free low bits
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417232e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Sum of the 16 lanes.
QS_INLINE_AVX512 float hsum(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

QS_INLINE_AVX512 float hmax(__m512 v) {
  __m256 s = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// 512 -> 128 bits: the four 128-bit lanes added together.
QS_INLINE_AVX512 __m128 fold128(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// Four sums at once: lane i of the result is the sum of the lanes of the i-th argument.
QS_INLINE_AVX512 __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m128 ab = _mm_hadd_ps(fold128(a), fold128(b)), cd = _mm_hadd_ps(fold128(c), fold128(d));
  return _mm_hadd_ps(ab, cd);
}

}  // namespace qs::kernels::avx512

#endif  // QS_HAVE_X86
