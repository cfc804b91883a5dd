// Fp8 (W8A8-FP8, W8A16-FP8) on AVX512-BF16. Every e4m3 value is exact in bf16 (4 significant
// bits, exponents 2^-9 .. 2^8), so both operands become bf16 without rounding and VDPBF16PS
// forms the exact products of the contract with f32 sums.
//  - W: 32 codes per step widened to words; the 7-bit magnitude is looked up in 128 bf16
//    values (two VPERMT2W of 64 entries, selected by bit 6) and the sign bit is moved to bit 15.
//    NaN codes decode to NaN as in the reference.
//  - x: per row, s_x (vLLM's rule), then x / s_x rounded to e4m3 in f32 arithmetic (3 mantissa
//    bits by integer rounding in the normal range, multiples of 2^-9 below 2^-6, saturation at
//    448, NaN kept) and stored as bf16, once per call.
// y = acc * s_x * s_w + bias in the GEMV's and GEMM's epilogue.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <vector>

#include "core/dtype.h"
#include "formats/fp8.h"
#include "kernels/qmatmul_avx512.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::qdetail {

namespace {

// bf16 bits of the e4m3 magnitudes 0..127 (code 127 is NaN).
struct E4m3Table {
  alignas(64) uint16_t bf16[128];
  E4m3Table() {
    for (int c = 0; c < 128; ++c) bf16[c] = f32_to_bf16(formats::fp8_e4m3_to_f32(static_cast<uint8_t>(c)));
  }
};
const E4m3Table& e4m3_table() {
  static const E4m3Table t;
  return t;
}

struct DecFp8 {
  static constexpr int kVecs = 1;
  static constexpr int64_t kBlockK = 32;
  struct Tables {};
  const uint8_t* codes;
  int64_t K, blocks, full;
  __m512i t0, t1, t2, t3;

  QS_TARGET_AVX512 explicit DecFp8(const Fp8Args& a) : codes(a.w), K(a.K), blocks((a.K + 31) / 32), full(a.K / 32) {
    const uint16_t* t = e4m3_table().bf16;
    t0 = _mm512_load_si512(t), t1 = _mm512_load_si512(t + 32);
    t2 = _mm512_load_si512(t + 64), t3 = _mm512_load_si512(t + 96);
  }
  int64_t group_end(int64_t) const { return blocks; }
  QS_INLINE_AVX512_BF16 void load_tables(Tables&, int64_t, int64_t) const {}

  template <bool Tail>
  QS_INLINE_AVX512_BF16 void decode(const Tables&, int64_t n, int64_t b, __m512i (&out)[kVecs]) const {
    const uint8_t* p = codes + n * K + b * 32;
    const __m256i raw =
        Tail ? _mm256_maskz_loadu_epi8(bytes32(K - b * 32), p) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m512i w = _mm512_cvtepu8_epi16(raw);
    const __m512i lo = _mm512_permutex2var_epi16(t0, w, t1);  // magnitudes 0..63 (index bits 0..5)
    const __m512i hi = _mm512_permutex2var_epi16(t2, w, t3);  // 64..127
    const __m512i mag = _mm512_mask_blend_epi16(_mm512_test_epi16_mask(w, _mm512_set1_epi16(0x40)), lo, hi);
    out[0] = _mm512_ternarylogic_epi32(mag, _mm512_slli_epi16(w, 8), _mm512_set1_epi16(-0x8000), 0xF8);  // | sign
  }
  QS_INLINE_AVX512_BF16 void prefetch(int64_t n, int64_t b) const {
    if ((b & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(codes + n * K + b * 32), _MM_HINT_T1);
  }
};

// The e4m3 value nearest to v (ties to even), saturated to +-448, NaN kept: the value of
// formats::f32_to_fp8_e4m3(v), decoded.
QS_INLINE_AVX512 __m512 round_to_e4m3(__m512 v) {
  const __m512 a = _mm512_abs_ps(v);
  const __m512i u = _mm512_castps_si512(a);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 20), _mm512_set1_epi32(1));
  const __m512i normal = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7ffff))),
                                          _mm512_set1_epi32(static_cast<int>(0xfff00000u)));
  const __m512 sub = _mm512_mul_ps(
      _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(512.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
      _mm512_set1_ps(1.0f / 512));
  __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(1.0f / 64), _CMP_LT_OQ),
                                  _mm512_castsi512_ps(normal), sub);
  r = _mm512_min_ps(_mm512_set1_ps(formats::kFp8E4M3Max), r);       // r when r is NaN
  r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);  // any NaN payload stays NaN
  return _mm512_or_ps(r, _mm512_and_ps(v, _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)))));
}

// One row of x -> bf16 of the e4m3-quantized x / s (or of x for Act::Bf16), zero padded to ldx.
QS_TARGET_AVX512 void prepare_x_row(const Fp8Args& a, const float* x, float s, uint16_t* out, int64_t ldx) {
  const bool quantize = a.act != Fp8Args::Act::Bf16;
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t k = 0; k < ldx; k += 16) {
    __m512 v = _mm512_maskz_loadu_ps(lanes16(a.K - k), x + k);
    if (quantize) v = round_to_e4m3(_mm512_div_ps(v, sv));
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + k), f32x16_to_bf16(v));
  }
}

QS_TARGET_AVX512 float row_amax(const float* x, int64_t K) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(lanes16(K - k), x + k)), m);
  return hmax(m);
}

}  // namespace

void fp8_avx512(const Fp8Args& a, ThreadPool& pool, bool gemm) {
  const DecFp8 dec(a);
  const int64_t ldx = dec.blocks * DecFp8::kBlockK;
  uint16_t* xb = detail::scratch<uint16_t>(2, static_cast<size_t>(a.M * ldx));
  std::vector<float> sx(static_cast<size_t>(a.M));
  detail::parallel_chunks(pool, a.M, gemm ? 16 : a.M, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* x = a.x + m * a.K;
      // The dynamic scale from a vectorized amax (max ignores NaN as std::max does), the rest
      // of the rule as in fp8_row_scale.
      sx[m] = a.act == Fp8Args::Act::DynamicPerToken
                  ? std::max(row_amax(x, a.K) / formats::kFp8E4M3Max, formats::kFp8MinTokenScale)
                  : fp8_row_scale(a, x);
      prepare_x_row(a, x, sx[m], xb + m * ldx, ldx);
    }
  });
  Epilogue e;
  e.y = a.y, e.ldy = a.N, e.bias = a.bias, e.row_scale = sx.data(), e.col_scale = a.w_scale;
  if (gemm) {
    const DecGemm<DecFp8> f{dec, xb, ldx, e, ldx / 2};
    qgemm_blocked(f, a.M, a.N, pool);
  } else {
    gemv_bf16(dec, xb, ldx, a.M, a.N, e, pool);
  }
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
