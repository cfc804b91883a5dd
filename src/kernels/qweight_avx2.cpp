// WeightOnly (W8A16, W4A16, W3A16, NF4, FP4, MXFP4, NVFP4) on AVX2 + FMA.
//
// Decode: within one scale group a 3- or 4-bit weight can take only 2^bits values,
// round_bf16(value(c) * scale). Per group these are computed in f32 (one multiply), rounded to
// bf16 once, and held in registers as a table:
//  - 4-bit: the low and the high bytes of the 16 bf16 values as two VPSHUFB tables. One VPSHUFB
//    pair turns 32 nibbles into 32 bf16 weights, which widen to f32 by interleaving with zero
//    words. The nibbles are not un-shuffled: x is stored in the order the weights come out in
//    (kPerm32 / kPerm16 below), so a unit of 32 weights costs ~16 instructions, FMAs included.
//  - 3-bit: the 8 values as f32 in one register, indexed by VPERMPS (natural order).
//  - 8-bit: widened, offset and scaled in f32 per weight, then rounded to bf16.
// The weights meet x (rounded to bf16 once per call) in f32 FMAs: products of bf16 values are
// exact, sums are f32 as in the contract.
//
// GEMV (few rows of x): each W row is decoded once per pass of up to 4 rows of x. GEMM: a panel
// of W rows and a block of K is decoded into an f32 buffer once and used by every row of x, in
// 4 x 3 register tiles of dot products (x rows by W rows).
// The last, partial unit of a row (per-channel groups, K not a multiple of the unit) is decoded
// from a zero-padded copy of its codes and meets zero-padded x, so it adds nothing.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/matmul_internal.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::qdetail {

namespace {

#define QS_WO_AVX2 inline __attribute__((always_inline, target("avx2,fma,f16c")))

alignas(32) constexpr float kIota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

// Element of a 32-weight unit that decoded position p holds (4-bit). VPSHUFB runs on lane 0 =
// low nibbles (even elements), lane 1 = high nibbles (odd ones); interleaving the low and high
// bytes gives words in that order, and the even / odd words of each dword become f32 by a
// shift or a mask (no widening shuffles): positions of 8 hold elements 4i + c, i = 0..3.
constexpr int perm32(int p) {
  const int t = p / 8, q = p % 8;
  return 16 * (t / 2) + 2 * (t % 2) + (q < 4 ? 4 * q : 4 * (q - 4) + 1);
}
// 16-weight units (groups of 16, NVFP4): the 8 even elements, then the 8 odd ones.
constexpr int perm16(int p) { return p < 8 ? 2 * p : 2 * (p - 8) + 1; }

QS_WO_AVX2 float hsum8(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// f32 -> bf16 bits in the low half of each lane, as qs::f32_to_bf16 (nearest even; NaN quieted).
QS_WO_AVX2 __m256i bf16_bits(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i hi = _mm256_srli_epi32(u, 16);
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)))),
      16);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
}
// The same for values that are finite or quiet NaNs (which the rounding carry keeps NaN).
QS_WO_AVX2 __m256i bf16_bits_finite(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
}
QS_WO_AVX2 __m256 round_bf16(__m256 v) { return _mm256_castsi256_ps(_mm256_slli_epi32(bf16_bits(v), 16)); }

// Shape, groups and scales every decoder shares. A group spans whole units, or the whole row.
struct WoShape {
  const WeightOnlyArgs* a;
  int64_t groups, units, units_per_group;
  int sym_zero;
  WoShape(const WeightOnlyArgs& args, int unit)
      : a(&args), groups(args.K / args.group), units((args.K + unit - 1) / unit),
        units_per_group(args.group == args.K ? (args.K + unit - 1) / unit : args.group / unit),
        sym_zero(1 << (args.bits - 1)) {}
  float scale(int64_t n, int64_t g) const { return a->scales[n * groups + g]; }
  float zero(int64_t n, int64_t g) const { return static_cast<float>(a->zeros ? a->zeros[n * groups + g] : sym_zero); }
  // value(c) * scale for c = 0..7 (half 0) or 8..15 (half 1), f32.
  QS_WO_AVX2 __m256 values8(int64_t n, int64_t g, int half) const {
    const __m256 v = a->lut ? _mm256_loadu_ps(a->lut + 8 * half)
                            : _mm256_sub_ps(_mm256_load_ps(kIota + 8 * half), _mm256_set1_ps(zero(n, g)));
    return _mm256_mul_ps(v, _mm256_set1_ps(scale(n, g)));
  }
};

// `bytes` bytes of codes at p, zero padded to 16 (the partial last unit of a row).
inline const uint8_t* padded(const uint8_t* p, int64_t bytes, uint8_t* tmp) {
  std::memset(tmp, 0, 16);
  std::memcpy(tmp, p, static_cast<size_t>(std::max<int64_t>(bytes, 0)));
  return tmp;
}

// 4-bit codes (affine or lookup), units of 32 weights (16 bytes) or 16 (8 bytes).
template <int Unit>
struct Dec4 {
  static constexpr int kUnit = Unit, kVecs = Unit / 8;
  static int perm(int p) { return Unit == 32 ? perm32(p) : perm16(p); }
  WoShape s;
  int64_t row_bytes;
  explicit Dec4(const WeightOnlyArgs& a) : s(a, Unit), row_bytes(code_row_bytes(4, a.K)) {}

  struct Table {
    alignas(32) uint8_t bytes[32];  // low bytes of the 16 bf16 values, then their high bytes
  };
  QS_WO_AVX2 Table table(int64_t n, int64_t g) const {
    // Scaled values are finite or a quiet NaN (never signalling), so plain rounding suffices.
    const __m256i b0 = bf16_bits_finite(s.values8(n, g, 0)), b1 = bf16_bits_finite(s.values8(n, g, 1));
    // 16 words v0..v15 in order, then per lane: 8 low bytes, 8 high bytes.
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(b0, b1), 0xd8);
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10,
                                           12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    Table t;
    _mm256_store_si256(reinterpret_cast<__m256i*>(t.bytes),
                       _mm256_permute4x64_epi64(_mm256_shuffle_epi8(p, split), 0xd8));  // [lo(v0..15) | hi(v0..15)]
    return t;
  }
  QS_WO_AVX2 void decode(const Table& t, int64_t n, int64_t u, __m256* w) const {
    const uint8_t* row = s.a->codes + n * row_bytes;
    const int64_t off = u * (Unit / 2);
    alignas(16) uint8_t tmp[16];
    const uint8_t* p = off + Unit / 2 <= row_bytes ? row + off : padded(row + off, row_bytes - off, tmp);
    if constexpr (Unit == 32) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m256i idx =
          _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
      const __m256i tab_lo = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t.bytes)));
      const __m256i tab_hi =
          _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t.bytes + 16)));
      const __m256i lo = _mm256_shuffle_epi8(tab_lo, idx), hi = _mm256_shuffle_epi8(tab_hi, idx);
      const __m256i a = _mm256_unpacklo_epi8(lo, hi), c = _mm256_unpackhi_epi8(lo, hi);
      const __m256i high_words = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
      w[0] = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
      w[1] = _mm256_castsi256_ps(_mm256_and_si256(a, high_words));
      w[2] = _mm256_castsi256_ps(_mm256_slli_epi32(c, 16));
      w[3] = _mm256_castsi256_ps(_mm256_and_si256(c, high_words));
    } else {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
      const __m128i idx = _mm_and_si128(_mm_unpacklo_epi64(b, _mm_srli_epi16(b, 4)), _mm_set1_epi8(0x0f));
      const __m128i lo = _mm_shuffle_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(t.bytes)), idx);
      const __m128i hi = _mm_shuffle_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(t.bytes + 16)), idx);
      const __m128i even = _mm_unpacklo_epi8(lo, hi), odd = _mm_unpackhi_epi8(lo, hi);
      const __m128i z = _mm_setzero_si128();
      w[0] = _mm256_castsi256_ps(_mm256_set_m128i(_mm_unpackhi_epi16(z, even), _mm_unpacklo_epi16(z, even)));
      w[1] = _mm256_castsi256_ps(_mm256_set_m128i(_mm_unpackhi_epi16(z, odd), _mm_unpacklo_epi16(z, odd)));
    }
  }
};

// 3-bit codes (two planes), units of 32 weights in natural order.
struct Dec3 {
  static constexpr int kUnit = 32, kVecs = 4;
  static int perm(int p) { return p; }
  WoShape s;
  int64_t lo_bytes, hi_bytes;
  explicit Dec3(const WeightOnlyArgs& a) : s(a, 32), lo_bytes(code_row_bytes(3, a.K)), hi_bytes(hi_plane_row_bytes(a.K)) {}

  struct Table {
    __m256 v;  // the 8 values, bf16-exact f32
  };
  QS_WO_AVX2 Table table(int64_t n, int64_t g) const { return {round_bf16(s.values8(n, g, 0))}; }
  QS_WO_AVX2 void decode(const Table& t, int64_t n, int64_t u, __m256* w) const {
    alignas(16) uint8_t tmp_lo[16], tmp_hi[16];
    const uint8_t* lo_row = s.a->codes + n * lo_bytes;
    const uint8_t* hi_row = s.a->codes_hi + n * hi_bytes;
    const uint8_t* lo = u * 8 + 8 <= lo_bytes ? lo_row + u * 8 : padded(lo_row + u * 8, lo_bytes - u * 8, tmp_lo);
    const uint8_t* hi = u * 4 + 4 <= hi_bytes ? hi_row + u * 4 : padded(hi_row + u * 4, hi_bytes - u * 4, tmp_hi);
    uint64_t lo_bits;
    uint32_t hi_bits;
    std::memcpy(&lo_bits, lo, 8);
    std::memcpy(&hi_bits, hi, 4);
    const __m256i lo_shift = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i hi_shift = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < 4; ++j) {
      const __m256i l = _mm256_and_si256(
          _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>((lo_bits >> (16 * j)) & 0xffff)), lo_shift),
          _mm256_set1_epi32(3));
      const __m256i h = _mm256_and_si256(
          _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>((hi_bits >> (8 * j)) & 0xff)), hi_shift),
          _mm256_set1_epi32(1));
      w[j] = _mm256_permutevar8x32_ps(t.v, _mm256_or_si256(l, _mm256_slli_epi32(h, 2)));
    }
  }
};

// 8-bit codes, units of 32 weights in natural order, scaled per weight.
struct Dec8 {
  static constexpr int kUnit = 32, kVecs = 4;
  static int perm(int p) { return p; }
  WoShape s;
  explicit Dec8(const WeightOnlyArgs& a) : s(a, 32) {}

  struct Table {
    __m256 zero, scale;
  };
  QS_WO_AVX2 Table table(int64_t n, int64_t g) const {
    return {_mm256_set1_ps(s.zero(n, g)), _mm256_set1_ps(s.scale(n, g))};
  }
  QS_WO_AVX2 void decode(const Table& t, int64_t n, int64_t u, __m256* w) const {
    const int64_t K = s.a->K;
    const uint8_t* row = s.a->codes + n * K;
    alignas(16) uint8_t tmp[32];
    const uint8_t* p = row + u * 32;
    if (u * 32 + 32 > K) {
      std::memset(tmp, 0, 32);
      std::memcpy(tmp, p, static_cast<size_t>(K - u * 32));
      p = tmp;
    }
    for (int j = 0; j < 4; ++j) {
      const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * j)));
      w[j] = round_bf16(_mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(c), t.zero), t.scale));
    }
  }
};

// x rows rounded to bf16 (as qs::f32_to_bf16), in the decoder's order, zero padded to ldx.
template <class Dec>
void prepare_x(const WeightOnlyArgs& a, int64_t ldx, float* out) {
  int perm[Dec::kUnit];
  for (int p = 0; p < Dec::kUnit; ++p) perm[p] = Dec::perm(p);
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    float* o = out + m * ldx;
    for (int64_t u0 = 0; u0 < ldx; u0 += Dec::kUnit)
      for (int p = 0; p < Dec::kUnit; ++p) {
        const int64_t k = u0 + perm[p];
        o[u0 + p] = k < a.K ? bf16_to_f32(f32_to_bf16(x[k])) : 0.0f;
      }
  }
}

// ---- GEMV --------------------------------------------------------------------------------------

// Tables of groups [g0, g1) of row n. Built in a loop of their own before the units that use
// them: a table is a long chain of dependent instructions, which would stall the decode of the
// first unit of every group if it were built in line.
constexpr int64_t kTableChunk = 32;  // groups per batch of tables

template <class Dec>
QS_WO_AVX2 void build_tables(const Dec& dec, int64_t n, int64_t g0, int64_t g1, typename Dec::Table* t) {
  for (int64_t g = g0; g < g1; ++g) t[g - g0] = dec.table(n, g);
}

// y[m0 .. m0+MR) x [n0, n1): one decode of each W row per MR rows of x.
template <class Dec, int MR>
QS_WO_AVX2 void gemv_pass(const Dec& dec, const float* x, int64_t ldx, int64_t m0, int64_t n0, int64_t n1) {
  const WeightOnlyArgs& a = *dec.s.a;
  constexpr int kAcc = MR == 1 ? 4 : 2;  // independent FMA chains per row of x
  const int64_t upg = dec.s.units_per_group, groups = (dec.s.units + upg - 1) / upg;
  auto* tables = detail::scratch<typename Dec::Table>(3, kTableChunk);
  for (int64_t n = n0; n < n1; ++n) {
    __m256 acc[MR][kAcc];
    for (int m = 0; m < MR; ++m)
      for (int i = 0; i < kAcc; ++i) acc[m][i] = _mm256_setzero_ps();
    for (int64_t g0 = 0; g0 < groups; g0 += kTableChunk) {
      const int64_t g1 = std::min(groups, g0 + kTableChunk);
      build_tables(dec, n, g0, g1, tables);
      for (int64_t g = g0; g < g1; ++g) {
        const typename Dec::Table& t = tables[g - g0];
        const int64_t u_end = std::min(dec.s.units, (g + 1) * upg);
        for (int64_t u = g * upg; u < u_end; ++u) {
          __m256 w[Dec::kVecs];
          dec.decode(t, n, u, w);
          const float* xu = x + m0 * ldx + u * Dec::kUnit;
#pragma GCC unroll 4
          for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
            for (int j = 0; j < Dec::kVecs; ++j)
              acc[m][j % kAcc] = _mm256_fmadd_ps(w[j], _mm256_loadu_ps(xu + m * ldx + 8 * j), acc[m][j % kAcc]);
        }
      }
    }
    for (int m = 0; m < MR; ++m) {
      __m256 s = acc[m][0];
      for (int i = 1; i < kAcc; ++i) s = _mm256_add_ps(s, acc[m][i]);
      a.y[(m0 + m) * a.N + n] = hsum8(s) + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

template <class Dec>
QS_TARGET_AVX2 void gemv_rows(const Dec& dec, const float* x, int64_t ldx, int64_t n0, int64_t n1) {
  const int64_t M = dec.s.a->M;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) gemv_pass<Dec, 4>(dec, x, ldx, m, n0, n1);
  switch (M - m) {
    case 3:
      return gemv_pass<Dec, 3>(dec, x, ldx, m, n0, n1);
    case 2:
      return gemv_pass<Dec, 2>(dec, x, ldx, m, n0, n1);
    case 1:
      return gemv_pass<Dec, 1>(dec, x, ldx, m, n0, n1);
    default:
      return;
  }
}

// ---- GEMM --------------------------------------------------------------------------------------

constexpr int64_t kPanelRows = 48;    // W rows decoded together (a multiple of kNR)
constexpr int64_t kBlockWeights = 512;  // K per block: a panel is 48 x 512 f32 = 96 KiB
constexpr int kMR = 4, kNR = 3;

// y[MR x NR] (+)= x[MR rows] . w[NR rows] over kc decoded positions.
template <int MR, int NR>
QS_TARGET_AVX2 void dot_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t kc, float* y,
                             int64_t ldy, const float* bias, bool accumulate) {
  __m256 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < NR; ++r) acc[m][r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k += 8) {
    __m256 wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = _mm256_load_ps(w + r * ldw + k);
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * ldx + k);
      for (int r = 0; r < NR; ++r) acc[m][r] = _mm256_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < NR; ++r) {
      float& out = y[m * ldy + r];
      const float v = hsum8(acc[m][r]);
      out = accumulate ? out + v : v + (bias ? bias[r] : 0.0f);
    }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, const float*, bool);
template <int MR>
constexpr TileFn tile_for(int nr) {
  return nr == 3 ? &dot_tile<MR, 3> : nr == 2 ? &dot_tile<MR, 2> : &dot_tile<MR, 1>;
}
TileFn tile_fn(int mr, int nr) {
  switch (mr) {
    case 4:
      return tile_for<4>(nr);
    case 3:
      return tile_for<3>(nr);
    case 2:
      return tile_for<2>(nr);
    default:
      return tile_for<1>(nr);
  }
}

// Rows [n0, n1) of W, units [u0, u1), decoded into w [rows][ldw] f32.
template <class Dec>
QS_TARGET_AVX2 void decode_panel(const Dec& dec, int64_t n0, int64_t n1, int64_t u0, int64_t u1, float* w,
                                 int64_t ldw) {
  for (int64_t n = n0; n < n1; ++n) {
    float* out = w + (n - n0) * ldw;
    for (int64_t u = u0; u < u1;) {
      const int64_t g = u / dec.s.units_per_group;
      const typename Dec::Table t = dec.table(n, g);
      const int64_t u_end = std::min(u1, (g + 1) * dec.s.units_per_group);
      for (; u < u_end; ++u) {
        __m256 v[Dec::kVecs];
        dec.decode(t, n, u, v);
        for (int j = 0; j < Dec::kVecs; ++j) _mm256_store_ps(out + (u - u0) * Dec::kUnit + 8 * j, v[j]);
      }
    }
  }
}

template <class Dec>
void gemm(const Dec& dec, const float* x, int64_t ldx, ThreadPool& pool) {
  const WeightOnlyArgs& a = *dec.s.a;
  const int64_t units_per_block = std::max<int64_t>(1, kBlockWeights / Dec::kUnit);
  const int64_t panels = (a.N + kPanelRows - 1) / kPanelRows;
  for (int64_t u0 = 0; u0 < dec.s.units; u0 += units_per_block) {
    const int64_t u1 = std::min(dec.s.units, u0 + units_per_block);
    const int64_t kc = (u1 - u0) * Dec::kUnit;
    detail::parallel_chunks(pool, panels, 1, [&](int64_t p0, int64_t p1) {
      float* w = detail::scratch<float>(0, static_cast<size_t>(kPanelRows * kc));
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n0 = p * kPanelRows, n1 = std::min(a.N, n0 + kPanelRows);
        decode_panel(dec, n0, n1, u0, u1, w, kc);
        for (int64_t m = 0; m < a.M; m += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, a.M - m));
          for (int64_t n = n0; n < n1; n += kNR) {
            const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - n));
            tile_fn(mr, nr)(x + m * ldx + u0 * Dec::kUnit, ldx, w + (n - n0) * kc, kc, kc, a.y + m * a.N + n, a.N,
                            a.bias ? a.bias + n : nullptr, u0 > 0);
          }
        }
      }
    });
  }
}

// ---- Driver ------------------------------------------------------------------------------------

template <class Dec>
void run(const WeightOnlyArgs& a, ThreadPool& pool, bool use_gemm) {
  const Dec dec(a);
  const int64_t ldx = dec.s.units * Dec::kUnit;
  float* x = detail::scratch<float>(2, static_cast<size_t>(a.M * ldx));
  prepare_x<Dec>(a, ldx, x);
  if (use_gemm) return gemm(dec, x, ldx, pool);
  // Chunks of 16 rows: enough for the threads to balance, few enough to keep W streaming.
  detail::parallel_chunks(pool, a.N, 16, [&](int64_t n0, int64_t n1) { gemv_rows(dec, x, ldx, n0, n1); });
}

// Units per group, or 0 when groups do not fall on unit boundaries (e.g. groups of 48).
bool groups_fit(const WeightOnlyArgs& a, int unit) { return a.group == a.K || a.group % unit == 0; }

}  // namespace

bool weight_only_avx2_supported(const WeightOnlyArgs& a) {
  if (a.bits == 4) return groups_fit(a, 32) || a.group == 16;
  return groups_fit(a, 32);
}

void weight_only_avx2(const WeightOnlyArgs& a, ThreadPool& pool, bool gemm) {
  require(weight_only_avx2_supported(a), "weight_only_avx2: no kernel for ", a.bits, "-bit codes in groups of ",
          a.group);
  if (a.bits == 4) return groups_fit(a, 32) ? run<Dec4<32>>(a, pool, gemm) : run<Dec4<16>>(a, pool, gemm);
  if (a.bits == 3) return run<Dec3>(a, pool, gemm);
  run<Dec8>(a, pool, gemm);
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
