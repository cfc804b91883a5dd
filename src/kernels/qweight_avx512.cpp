// WeightOnly (W8A16, W4A16, W3A16, NF4, FP4, MXFP4, NVFP4) on AVX512-BF16.
//
// Decode: within one scale group a weight can take only 2^bits values, round_bf16(value(c) *
// scale), so 3- and 4-bit weights are decoded by table lookup: per group the 16 (or 8) values
// are computed in f32 (one multiply), rounded to bf16 with VCVTNE2PS2BF16 and held in a register
// as a table of 32 words; VPERMW then turns 32 codes into 32 bf16 weights (VPERMT2W with two
// tables when four groups of 16 share a block, NVFP4). The table index is built from the packed
// codes with a shift or two and no masking: the table repeats, so index bits above the code
// either select the group or do not matter. 8-bit codes are widened and scaled in f32 per
// weight. The weights then meet x, rounded to bf16 once per call and stored in the decode order
// of the codes (elements 4j+i of 128 for 3-bit and for 4-bit with groups of 64 or more,
// even/odd elements of 64 for 4-bit groups of 32 and 16), in
// VDPBF16PS: exact products, f32 sums.
// VCVTNE2PS2BF16 rounds to nearest even like the contract but flushes f32 denormals to zero,
// and VDPBF16PS treats bf16 denormals as zero; a weight whose magnitude is below 2^-126 is
// therefore zero here (the dense bf16 path has the same property).
//
// GEMV (M <= ~16): one pass over the codes per chunk of rows (qmatmul_avx512.h). GEMM: each
// 32-row panel slice is decoded into bf16 rows once, packed into the bf16 microkernel's
// [pairs][32] layout and swept over all rows of x.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include "kernels/qmatmul_avx512.h"
#include "core/error.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::qdetail {

namespace {

alignas(64) constexpr float kIota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
alignas(64) constexpr float kCodes3[16] = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7};
// Group bits of the VPERMW index per word j of a decoded vector.
alignas(64) constexpr uint16_t kGroup4x2[32] = {0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
                                                16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16};
alignas(64) constexpr uint16_t kGroup4x4[32] = {0,  0,  0,  0,  0,  0,  0,  0,  16, 16, 16, 16, 16, 16, 16, 16,
                                                32, 32, 32, 32, 32, 32, 32, 32, 48, 48, 48, 48, 48, 48, 48, 48};
alignas(64) constexpr uint16_t kGroup3x2[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
alignas(64) constexpr uint16_t kGroup3x4[32] = {0,  0,  0,  0,  0,  0,  0,  0,  8,  8,  8,  8,  8,  8,  8,  8,
                                                16, 16, 16, 16, 16, 16, 16, 16, 24, 24, 24, 24, 24, 24, 24, 24};

// Low n bytes of a 64-byte load.
QS_INLINE_AVX512 __mmask64 bytes64(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : (__mmask64{1} << n) - 1;
}

// What every decoder shares: shape, groups and the per-group scales and zero points.
struct WoShape {
  int64_t K = 0, groups = 0, group = 0;
  const float* scales = nullptr;
  const uint8_t* zeros = nullptr;
  int64_t blocks = 0, full = 0;  // decode blocks per row (last possibly partial), whole ones
  int64_t bpg = 1;               // blocks per scale group (one group per block or more)
  int sym_zero = 0;

  WoShape(const WeightOnlyArgs& a, int64_t block_k, int gpb)
      : K(a.K), groups(a.K / a.group), group(a.group), scales(a.scales), zeros(a.zeros) {
    blocks = (K + block_k - 1) / block_k;
    full = K / block_k;
    bpg = gpb > 1 ? 1 : a.group == a.K ? blocks : a.group / block_k;
    sym_zero = 1 << (a.bits - 1);
  }
  // Group of block b and the first block after it (one group per block or more). The common
  // one-block groups skip the division: it costs as much as decoding a block of 128 weights.
  int64_t group_of(int64_t b) const { return bpg == 1 ? b : b / bpg; }
  int64_t gpb1_end(int64_t b) const { return bpg == 1 ? b + 1 : std::min(blocks, (b / bpg + 1) * bpg); }
  int64_t clamp_group(int64_t g) const { return std::min(g, groups - 1); }
  float scale(int64_t n, int64_t g) const { return scales[n * groups + g]; }
  float zero(int64_t n, int64_t g) const { return static_cast<float>(zeros ? zeros[n * groups + g] : sym_zero); }
};

// value(c) * scale of group g of row n, for c = lane (4-bit; lanes 0..15).
QS_INLINE_AVX512_BF16 __m512 scaled_values16(const WoShape& s, const float* values, int64_t n, int64_t g) {
  const __m512 v = s.zeros ? _mm512_sub_ps(_mm512_load_ps(kIota), _mm512_set1_ps(s.zero(n, g))) : _mm512_loadu_ps(values);
  return _mm512_mul_ps(v, _mm512_set1_ps(s.scale(n, g)));
}

// 4-bit codes, blocks of 64 weights (32 bytes): A = codes of even elements, B = odd ones.
template <int GPB>
struct Dec4 {
  static constexpr int kVecs = 2;
  static constexpr int kXStride = 2;
  static constexpr int64_t kBlockK = 64;
  struct Tables {
    __m512i t0, t1;
  };
  WoShape s;
  const uint8_t* codes;
  int64_t row_bytes;
  int64_t blocks, full;
  alignas(64) float values[16];  // value(c) without zero points: the lookup table or c - 8

  Dec4(const WeightOnlyArgs& a) : s(a, kBlockK, GPB), codes(a.codes), row_bytes(code_row_bytes(4, a.K)) {
    blocks = s.blocks, full = s.full;
    for (int c = 0; c < 16; ++c) values[c] = a.lut ? a.lut[c] : static_cast<float>(c - 8);
  }
  int64_t group_end(int64_t b) const { return GPB == 1 ? s.gpb1_end(b) : b + 1; }

  QS_INLINE_AVX512_BF16 void load_tables(Tables& t, int64_t n, int64_t b) const {
    if constexpr (GPB == 1) {
      const __m512 v = scaled_values16(s, values, n, s.group_of(b));
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(v, v);
    } else {
      const int64_t g = b * GPB;
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(scaled_values16(s, values, n, s.clamp_group(g + 1)),
                                          scaled_values16(s, values, n, g));
      if constexpr (GPB == 4)
        t.t1 = (__m512i)_mm512_cvtne2ps_pbh(scaled_values16(s, values, n, s.clamp_group(g + 3)),
                                            scaled_values16(s, values, n, s.clamp_group(g + 2)));
    }
  }

  template <bool Tail>
  QS_INLINE_AVX512_BF16 void decode(const Tables& t, int64_t n, int64_t b, __m512i (&out)[kVecs]) const {
    const uint8_t* p = codes + n * row_bytes + b * 32;
    const __m256i raw = Tail ? _mm256_maskz_loadu_epi8(bytes32(row_bytes - b * 32), p)
                             : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m512i w = _mm512_cvtepu8_epi16(raw);  // word j: codes of elements 2j (low) and 2j+1
    __m512i ia = w, ib = _mm512_srli_epi16(w, 4);
    if constexpr (GPB > 1) {
      const __m512i g = _mm512_load_si512(GPB == 2 ? kGroup4x2 : kGroup4x4);
      ia = _mm512_ternarylogic_epi32(w, _mm512_set1_epi16(15), g, 0xEA);  // (w & 15) | g
      ib = _mm512_or_si512(ib, g);
    }
    if constexpr (GPB == 4) {
      out[0] = _mm512_permutex2var_epi16(t.t0, ia, t.t1);
      out[1] = _mm512_permutex2var_epi16(t.t0, ib, t.t1);
    } else {  // one group: bit 4 of ia is the high code's bit 0, ignored by the repeated table
      out[0] = _mm512_permutexvar_epi16(ia, t.t0);
      out[1] = _mm512_permutexvar_epi16(ib, t.t0);
    }
  }
  QS_INLINE_AVX512_BF16 void prefetch(int64_t n, int64_t b) const {
    if ((b & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(codes + n * row_bytes + b * 32), _MM_HINT_T1);
  }
};

// 4-bit codes, blocks of 128 weights (64 bytes) read as 32 words: word j holds the codes of
// elements 4j..4j+3 in its four nibbles, so vector i (elements 4j + i) is the word shifted right
// by 4i, looked up by VPERMW as it is. Per 64 weights that is 1.5 shifts and 2 permutes, where
// Dec4 needs a widening shuffle, a shift and 2 permutes: the shuffle port is what bounds a
// 4-bit GEMV on this core. Groups of 64 (GPB 2) select their half of the table with bit 4.
// Used for one group per row and groups of 64 or a multiple of 128.
template <int GPB>
struct Dec4Wide {
  static_assert(GPB == 1 || GPB == 2);
  static constexpr int kVecs = 4;
  static constexpr int kXStride = 4;
  static constexpr int64_t kBlockK = 128;
  struct Tables {
    __m512i t0;
  };
  WoShape s;
  const uint8_t* codes;
  int64_t row_bytes;
  int64_t blocks, full;
  alignas(64) float values[16];

  Dec4Wide(const WeightOnlyArgs& a) : s(a, kBlockK, GPB), codes(a.codes), row_bytes(code_row_bytes(4, a.K)) {
    blocks = s.blocks, full = s.full;
    for (int c = 0; c < 16; ++c) values[c] = a.lut ? a.lut[c] : static_cast<float>(c - 8);
  }
  int64_t group_end(int64_t b) const { return GPB == 1 ? s.gpb1_end(b) : b + 1; }

  QS_INLINE_AVX512_BF16 void load_tables(Tables& t, int64_t n, int64_t b) const {
    if constexpr (GPB == 1) {
      const __m512 v = scaled_values16(s, values, n, s.group_of(b));
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(v, v);
    } else {
      const int64_t g = 2 * b;
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(scaled_values16(s, values, n, s.clamp_group(g + 1)),
                                          scaled_values16(s, values, n, g));
    }
  }

  template <bool Tail>
  QS_INLINE_AVX512_BF16 void decode(const Tables& t, int64_t n, int64_t b, __m512i (&out)[kVecs]) const {
    const uint8_t* p = codes + n * row_bytes + b * 64;
    const __m512i w = Tail ? _mm512_maskz_loadu_epi8(bytes64(row_bytes - b * 64), p) : _mm512_loadu_si512(p);
    const __m512i v[4] = {w, _mm512_srli_epi16(w, 4), _mm512_srli_epi16(w, 8), _mm512_srli_epi16(w, 12)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      if constexpr (GPB == 2) {  // (v & 15) | group bit
        const __m512i idx = _mm512_ternarylogic_epi32(v[i], _mm512_set1_epi16(15), _mm512_load_si512(kGroup4x2), 0xEA);
        out[i] = _mm512_permutexvar_epi16(idx, t.t0);
      } else {  // bits 4.. of the index: ignored (bit 4 picks a copy of the repeated table)
        out[i] = _mm512_permutexvar_epi16(v[i], t.t0);
      }
    }
  }
  QS_INLINE_AVX512_BF16 void prefetch(int64_t n, int64_t b) const {
    _mm_prefetch(reinterpret_cast<const char*>(codes + n * row_bytes + b * 64), _MM_HINT_T1);
  }
};

// 3-bit codes, blocks of 128 weights (32 bytes of the 2-bit plane, 16 of the 1-bit plane):
// vector i holds elements 4j + i.
template <int GPB>
struct Dec3 {
  static constexpr int kVecs = 4;
  static constexpr int kXStride = 4;
  static constexpr int64_t kBlockK = 128;
  struct Tables {
    __m512i t0;
  };
  WoShape s;
  const uint8_t *lo, *hi;
  int64_t lo_bytes, hi_bytes;
  int64_t blocks, full;

  Dec3(const WeightOnlyArgs& a)
      : s(a, kBlockK, GPB), lo(a.codes), hi(a.codes_hi), lo_bytes(code_row_bytes(3, a.K)), hi_bytes(hi_plane_row_bytes(a.K)) {
    blocks = s.blocks, full = s.full;
  }
  int64_t group_end(int64_t b) const { return GPB == 1 ? s.gpb1_end(b) : b + 1; }

  // Lanes 0..7: value(c) * scale of group ga for c = lane; lanes 8..15 likewise for group gb.
  QS_INLINE_AVX512_BF16 __m512 scaled_values(int64_t n, int64_t ga, int64_t gb) const {
    const __m512 codes8 = _mm512_load_ps(kCodes3);
    const __m512 z = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(s.zero(n, ga)), _mm512_set1_ps(s.zero(n, gb)));
    const __m512 sc = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(s.scale(n, ga)), _mm512_set1_ps(s.scale(n, gb)));
    return _mm512_mul_ps(_mm512_sub_ps(codes8, z), sc);
  }
  QS_INLINE_AVX512_BF16 void load_tables(Tables& t, int64_t n, int64_t b) const {
    if constexpr (GPB == 1) {
      const int64_t g = s.group_of(b);
      const __m512 v = scaled_values(n, g, g);
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(v, v);
    } else if constexpr (GPB == 2) {
      const __m512 v = scaled_values(n, 2 * b, s.clamp_group(2 * b + 1));
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(v, v);
    } else {
      const int64_t g = 4 * b;
      t.t0 = (__m512i)_mm512_cvtne2ps_pbh(scaled_values(n, s.clamp_group(g + 2), s.clamp_group(g + 3)),
                                          scaled_values(n, g, s.clamp_group(g + 1)));
    }
  }

  template <bool Tail>
  QS_INLINE_AVX512_BF16 void decode(const Tables& t, int64_t n, int64_t b, __m512i (&out)[kVecs]) const {
    const uint8_t* pl = lo + n * lo_bytes + b * 32;
    const uint8_t* ph = hi + n * hi_bytes + b * 16;
    const __m256i rl = Tail ? _mm256_maskz_loadu_epi8(bytes32(lo_bytes - b * 32), pl)
                            : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pl));
    const __m128i rh = Tail ? _mm_maskz_loadu_epi8(bytes16(hi_bytes - b * 16), ph)
                            : _mm_loadu_si128(reinterpret_cast<const __m128i*>(ph));
    const __m512i l = _mm512_cvtepu8_epi16(rl);  // word j: 2-bit codes of elements 4j..4j+3
    const __m512i hd = _mm512_cvtepu8_epi32(rh);
    const __m512i h = _mm512_or_si512(hd, _mm512_slli_epi32(hd, 12));  // word j, bits 0..3: high bits of 4j..4j+3
    const __m512i low2 = _mm512_set1_epi16(3);
    const __m512i a[4] = {l, _mm512_srli_epi16(l, 2), _mm512_srli_epi16(l, 4), _mm512_srli_epi16(l, 6)};
    const __m512i hb[4] = {_mm512_slli_epi16(h, 2), _mm512_slli_epi16(h, 1), h, _mm512_srli_epi16(h, 1)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      __m512i idx = _mm512_ternarylogic_epi32(a[i], hb[i], low2, 0xE4);  // bits 0-1 from a, 2 from hb
      if constexpr (GPB > 1)
        idx = _mm512_ternarylogic_epi32(idx, _mm512_set1_epi16(7), _mm512_load_si512(GPB == 2 ? kGroup3x2 : kGroup3x4),
                                        0xEA);
      out[i] = _mm512_permutexvar_epi16(idx, t.t0);
    }
  }
  QS_INLINE_AVX512_BF16 void prefetch(int64_t n, int64_t b) const {
    if ((b & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(lo + n * lo_bytes + b * 32), _MM_HINT_T1);
    if ((b & 3) == 0) _mm_prefetch(reinterpret_cast<const char*>(hi + n * hi_bytes + b * 16), _MM_HINT_T1);
  }
};

// 8-bit codes, blocks of 32 weights in natural order: widened, (c - z) * s in f32, then bf16.
template <int GPB>
struct Dec8 {
  static constexpr int kVecs = 1;
  static constexpr int kXStride = 1;
  static constexpr int64_t kBlockK = 32;
  struct Tables {
    __m512 s0, z0, s1, z1;
  };
  WoShape s;
  const uint8_t* codes;
  int64_t blocks, full;

  Dec8(const WeightOnlyArgs& a) : s(a, kBlockK, GPB), codes(a.codes) { blocks = s.blocks, full = s.full; }
  int64_t group_end(int64_t b) const { return GPB == 1 ? s.gpb1_end(b) : b + 1; }

  QS_INLINE_AVX512_BF16 void load_tables(Tables& t, int64_t n, int64_t b) const {
    const int64_t g0 = GPB == 1 ? s.group_of(b) : 2 * b;
    t.s0 = _mm512_set1_ps(s.scale(n, g0));
    t.z0 = _mm512_set1_ps(s.zero(n, g0));
    if constexpr (GPB == 2) {
      const int64_t g1 = s.clamp_group(g0 + 1);
      t.s1 = _mm512_set1_ps(s.scale(n, g1));
      t.z1 = _mm512_set1_ps(s.zero(n, g1));
    } else {
      t.s1 = t.s0, t.z1 = t.z0;
    }
  }
  template <bool Tail>
  QS_INLINE_AVX512_BF16 void decode(const Tables& t, int64_t n, int64_t b, __m512i (&out)[kVecs]) const {
    const uint8_t* p = codes + n * s.K + b * 32;
    __m128i r0, r1;
    if (Tail) {
      r0 = _mm_maskz_loadu_epi8(bytes16(s.K - b * 32), p);
      r1 = _mm_maskz_loadu_epi8(bytes16(s.K - b * 32 - 16), p + 16);
    } else {
      r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    }
    const __m512 f0 = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(r0)), t.z0), t.s0);
    const __m512 f1 = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(r1)), t.z1), t.s1);
    out[0] = (__m512i)_mm512_cvtne2ps_pbh(f1, f0);
  }
  QS_INLINE_AVX512_BF16 void prefetch(int64_t n, int64_t b) const {
    if ((b & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(codes + n * s.K + b * 32), _MM_HINT_T1);
  }
};

// ---- x in decode order -------------------------------------------------------------------------

QS_INLINE_AVX512 __m512i bf16x32(const float* x, int64_t left) {
  const __m256i lo = f32x16_to_bf16(_mm512_maskz_loadu_ps(lanes16(left), x));
  const __m256i hi = f32x16_to_bf16(_mm512_maskz_loadu_ps(lanes16(left - 16), x + 16));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

alignas(64) constexpr uint16_t kEvenWords[32] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                                 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62};
alignas(64) constexpr uint16_t kOddWords[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
                                                33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};

// Row of x rounded to bf16 (RNE, as qs::f32_to_bf16), zero padded to ldx, in a decoder's element
// order: `stride` 1 natural, 2 even/odd elements of 64 (Dec4), 4 elements 4j + i of 128 (Dec3,
// Dec4Wide).
QS_TARGET_AVX512 void prepare_x_row(const float* x, int64_t K, int stride, uint16_t* out, int64_t ldx) {
  const __m512i even = _mm512_load_si512(kEvenWords), odd = _mm512_load_si512(kOddWords);
  if (stride == 1) {
    for (int64_t k = 0; k < ldx; k += 32) _mm512_store_si512(out + k, bf16x32(x + k, K - k));
  } else if (stride == 2) {
    for (int64_t k = 0; k < ldx; k += 64) {
      const __m512i v0 = bf16x32(x + k, K - k), v1 = bf16x32(x + k + 32, K - k - 32);
      _mm512_store_si512(out + k, _mm512_permutex2var_epi16(v0, even, v1));
      _mm512_store_si512(out + k + 32, _mm512_permutex2var_epi16(v0, odd, v1));
    }
  } else {
    for (int64_t k = 0; k < ldx; k += 128) {
      __m512i v[4];
      for (int i = 0; i < 4; ++i) v[i] = bf16x32(x + k + 32 * i, K - k - 32 * i);
      const __m512i e01 = _mm512_permutex2var_epi16(v[0], even, v[1]), o01 = _mm512_permutex2var_epi16(v[0], odd, v[1]);
      const __m512i e23 = _mm512_permutex2var_epi16(v[2], even, v[3]), o23 = _mm512_permutex2var_epi16(v[2], odd, v[3]);
      _mm512_store_si512(out + k, _mm512_permutex2var_epi16(e01, even, e23));       // 4j
      _mm512_store_si512(out + k + 32, _mm512_permutex2var_epi16(o01, even, o23));  // 4j + 1
      _mm512_store_si512(out + k + 64, _mm512_permutex2var_epi16(e01, odd, e23));   // 4j + 2
      _mm512_store_si512(out + k + 96, _mm512_permutex2var_epi16(o01, odd, o23));   // 4j + 3
    }
  }
}

// ---- Drivers -----------------------------------------------------------------------------------

template <class Dec>
void run(const WeightOnlyArgs& a, ThreadPool& pool, bool gemm) {
  const Dec dec(a);
  const int64_t ldx = dec.blocks * Dec::kBlockK;
  uint16_t* xb = detail::scratch<uint16_t>(2, static_cast<size_t>(a.M * ldx));
  detail::parallel_chunks(pool, a.M, gemm ? 16 : a.M, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) prepare_x_row(a.x + m * a.K, a.K, Dec::kXStride, xb + m * ldx, ldx);
  });
  Epilogue e;
  e.y = a.y, e.ldy = a.N, e.bias = a.bias;
  if (gemm) {
    const DecGemm<Dec> f{dec, xb, ldx, e, ldx / 2};
    qgemm_blocked(f, a.M, a.N, pool);
  } else {
    gemv_bf16(dec, xb, ldx, a.M, a.N, e, pool);
  }
}

}  // namespace

namespace {
int groups_per_block(const WeightOnlyArgs& a, int64_t block) {
  if (a.group == a.K || a.group % block == 0) return 1;
  if (2 * a.group == block) return 2;
  if (4 * a.group == block) return 4;
  return 0;
}
// 4-bit codes take Dec4Wide's 128-blocks when a group is 64 or more, else Dec4's 64-blocks.
bool wide_4bit(const WeightOnlyArgs& a) { return a.bits == 4 && groups_per_block(a, 128) > 0 && groups_per_block(a, 128) <= 2; }
}  // namespace

int weight_only_groups_per_block(const WeightOnlyArgs& a) {
  if (wide_4bit(a)) return groups_per_block(a, 128);
  return groups_per_block(a, a.bits == 8 ? 32 : a.bits == 4 ? 64 : 128);
}

void weight_only_avx512(const WeightOnlyArgs& a, ThreadPool& pool, bool gemm) {
  const int gpb = weight_only_groups_per_block(a);
  if (wide_4bit(a)) return gpb == 1 ? run<Dec4Wide<1>>(a, pool, gemm) : run<Dec4Wide<2>>(a, pool, gemm);
  switch (a.bits * 10 + gpb) {
    case 41:
      return run<Dec4<1>>(a, pool, gemm);
    case 42:
      return run<Dec4<2>>(a, pool, gemm);
    case 44:
      return run<Dec4<4>>(a, pool, gemm);
    case 31:
      return run<Dec3<1>>(a, pool, gemm);
    case 32:
      return run<Dec3<2>>(a, pool, gemm);
    case 34:
      return run<Dec3<4>>(a, pool, gemm);
    case 81:
      return run<Dec8<1>>(a, pool, gemm);
    case 82:
      return run<Dec8<2>>(a, pool, gemm);
    default:
      fail("weight_only_avx512: no kernel for ", a.bits, "-bit codes in groups of ", a.group);
  }
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
