// GGUF Q8_0 / Q4_0 on AVX512-VNNI, the arithmetic of ggml's x86 vec_dot kernels.
//  - x: each row quantized to Q8_0 blocks once per call, bit-identical to
//    formats::quantize_row_q8_0 (d = amax / 127 rounded to f16, codes round(x * 1/d) half away
//    from zero with the f32 d).
//  - W codes as u8 (Q8_0: q + 128 by flipping the sign bit; Q4_0: the nibbles 0..15 as stored)
//    times the s8 x codes with VPDPBUSD; the offset (128 or 8) times the sum of the x codes is
//    subtracted by starting the int32 sums at -offset * sum(x) (per group of four for the GEMV,
//    per block for the GEMM). Every int32 sum is exact.
//  - f32: each block's integer dot times (d_w * d_x), accumulated in f32 (the GEMV, like ggml's
//    AVX2 code, keeps partial sums of 4 products per lane; the GEMM one sum per block).
// GEMV: two blocks per 64-byte vector; x is stored in the order the W bytes land in (Q4_0:
// low nibbles of both blocks, then high nibbles). GEMM: W panels decoded to u8 codes [K/4][32]
// with d_w [blocks][32]; tiles of 6 rows of x keep int32 and f32 accumulators for 32 columns.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <vector>

#include "core/dtype.h"
#include "formats/gguf_blocks.h"
#include "kernels/qmatmul_avx512.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::qdetail {

namespace {

// ---- Activations -------------------------------------------------------------------------------

// One block of 32 x values -> codes (natural order) and d as f16 bits; formats::quantize_row_q8_0.
QS_TARGET_AVX512 uint16_t quantize_block(const float* x, int8_t* q) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
  // fmax ignores NaN: treat NaN as 0 (amax >= 0)
  __m512 a0 = _mm512_abs_ps(x0), a1 = _mm512_abs_ps(x1);
  a0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a0, a0, _CMP_ORD_Q), a0);
  a1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a1, a1, _CMP_ORD_Q), a1);
  const float amax = hmax(_mm512_max_ps(a0, a1));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512 idv = _mm512_set1_ps(id);
  for (int h = 0; h < 2; ++h) {
    const __m512 v = _mm512_mul_ps(h ? x1 : x0, idv);
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 rest = _mm512_sub_ps(v, t);
    __m512i qi = _mm512_cvttps_epi32(t);
    qi = _mm512_mask_add_epi32(qi, _mm512_cmp_ps_mask(rest, _mm512_set1_ps(0.5f), _CMP_GE_OQ), qi, _mm512_set1_epi32(1));
    qi = _mm512_mask_sub_epi32(qi, _mm512_cmp_ps_mask(rest, _mm512_set1_ps(-0.5f), _CMP_LE_OQ), qi, _mm512_set1_epi32(1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * h), _mm512_cvtepi32_epi8(qi));
  }
  return f32_to_f16(d);
}

// GEMV layout of one row of x, per step of two blocks (b, b + 1):
//   codes [64]: Q8_0 natural (b then b + 1); Q4_0 b[0..15], b1[0..15], b[16..31], b1[16..31]
//   dx [16]: d_x of the block each group of four codes belongs to
//   corr [16]: -offset * (sum of that group of four codes)
struct GemvRow {
  int8_t* codes;
  float* dx;
  int32_t* corr;
};

QS_TARGET_AVX512_VNNI void prepare_gemv_row(const float* x, int64_t nb, bool q4, GemvRow out) {
  const int64_t steps = (nb + 1) / 2;
  alignas(64) int8_t q[64];
  for (int64_t s = 0; s < steps; ++s) {
    float d[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const int64_t b = 2 * s + i;
      if (b < nb) {
        d[i] = f16_to_f32(quantize_block(x + 32 * b, q + 32 * i));
      } else {
        std::fill(q + 32 * i, q + 32 * i + 32, int8_t{0});
      }
    }
    __m512i v = _mm512_load_si512(q);
    __m512 dv = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(d[0]), _mm512_set1_ps(d[1]));
    if (q4) {  // 128-bit lanes: b[0..15], b[16..31], b1[0..15], b1[16..31] -> 0, 2, 1, 3
      v = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
      dv = _mm512_mask_blend_ps(0xf0f0, _mm512_set1_ps(d[0]), _mm512_set1_ps(d[1]));
    }
    _mm512_store_si512(out.codes + 64 * s, v);
    _mm512_store_ps(out.dx + 16 * s, dv);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), v);
    _mm512_store_si512(out.corr + 16 * s, _mm512_mullo_epi32(sums, _mm512_set1_epi32(q4 ? -8 : -128)));
  }
}

// ---- GEMV --------------------------------------------------------------------------------------

struct GgufCtx {
  const GgufArgs* a;
  int64_t nb, row_bytes, block_bytes;
  const int8_t* codes;  // [M][ld_codes]
  const float* dx;      // [M][ld_vec]
  const int32_t* corr;  // [M][ld_vec]
  int64_t ld_codes, ld_vec;
};

// W bytes of blocks b, b + 1 of a row (b + 1 only if `two`) as u8 codes in the x layout, and
// their d_w per group of four.
template <bool Q4>
QS_INLINE_AVX512_VNNI void load_pair(const uint8_t* blk, int64_t block_bytes, bool two, __m512i& w, __m512& dw) {
  const uint16_t d0 = *reinterpret_cast<const uint16_t*>(blk);
  const uint16_t d1 = two ? *reinterpret_cast<const uint16_t*>(blk + block_bytes) : 0;
  if constexpr (Q4) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i q1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + block_bytes + 2)) : _mm_setzero_si128();
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    w = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1),
                         _mm512_set1_epi8(15));
    const __m128i d = _mm_unpacklo_epi64(_mm_set1_epi16(static_cast<short>(d0)), _mm_set1_epi16(static_cast<short>(d1)));
    dw = _mm512_cvtph_ps(_mm256_broadcastsi128_si256(d));
  } else {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i q1 =
        two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + block_bytes + 2)) : _mm256_setzero_si256();
    w = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), _mm512_set1_epi8(-128));
    dw = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(d0))),
                                                 _mm_set1_epi16(static_cast<short>(d1)), 1));
  }
}

template <bool Q4, int MR, int R>
QS_TARGET_AVX512_VNNI void gemv_pass(const GgufCtx& c, int64_t n, int64_t m0) {
  const GgufArgs& a = *c.a;
  __m512 acc[MR][R];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  const uint8_t* base = static_cast<const uint8_t*>(a.blocks) + n * c.row_bytes;
  const int64_t steps = (c.nb + 1) / 2;
  for (int64_t s = 0; s < steps; ++s) {
    const bool two = 2 * s + 1 < c.nb;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = base + r * c.row_bytes + 2 * s * c.block_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(blk + R * c.row_bytes), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(blk + R * c.row_bytes + 63), _MM_HINT_T1);
      __m512i w;
      __m512 dw;
      load_pair<Q4>(blk, c.block_bytes, two, w, dw);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const int64_t row = m0 + m;
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(c.corr + row * c.ld_vec + 16 * s), w,
                                                _mm512_load_si512(c.codes + row * c.ld_codes + 64 * s));
        acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_load_ps(c.dx + row * c.ld_vec + 16 * s)),
                                    acc[m][r]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a.y[(m0 + m) * a.N + n + r] = hsum(acc[m][r]) + (a.bias ? a.bias[n + r] : 0.0f);
}

using GemvFn = void (*)(const GgufCtx&, int64_t, int64_t);
template <bool Q4, int R, std::size_t... I>
constexpr std::array<GemvFn, detail::kGemvGroupRows> gemv_table(std::index_sequence<I...>) {
  return {&gemv_pass<Q4, static_cast<int>(I) + 1, R == 0 ? gemv_rows_per_pass(static_cast<int>(I) + 1) : R>...};
}

template <bool Q4>
void gemv(const GgufCtx& c, ThreadPool& pool) {
  static constexpr auto kFull = gemv_table<Q4, 0>(std::make_index_sequence<detail::kGemvGroupRows>());
  static constexpr auto kSingle = gemv_table<Q4, 1>(std::make_index_sequence<detail::kGemvGroupRows>());
  gemv_passes(c.a->M, c.a->N, pool,
              [&](bool full, int mr, int64_t n, int64_t m) { (full ? kFull : kSingle)[mr - 1](c, n, m); });
}

// ---- GEMM --------------------------------------------------------------------------------------

constexpr int kGgufMR = 6;  // int32 and f32 accumulators for 6 x 32 outputs: 24 registers

// x tile: codes [k_steps][6] quads, then d_x [nb][6] (f32 bits), then corr [nb][6].
struct GgufX {
  const int8_t* codes;  // [M][K] natural order
  const float* dx;      // [M][nb]
  const int32_t* corr;  // [M][nb]
};

template <int MR>
QS_TARGET_AVX512_VNNI void kernel(const GgufArgs& a, const uint32_t* xp, const float* dx, const int32_t* corr,
                                  const uint32_t* wp, const float* dw, int64_t blocks, int64_t m0, int64_t n0,
                                  int64_t cols, bool first, bool last) {
  __m512 acc[MR][2];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i dot[MR][2];
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) dot[m][0] = dot[m][1] = _mm512_set1_epi32(corr[b * kGgufMR + m]);
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const __m512i w0 = _mm512_load_si512(wp), w1 = _mm512_load_si512(wp + 16);
#pragma GCC unroll 6
      for (int m = 0; m < MR; ++m) {
        const __m512i xv = _mm512_set1_epi32(static_cast<int>(xp[m]));
        dot[m][0] = _mm512_dpbusd_epi32(dot[m][0], w0, xv);
        dot[m][1] = _mm512_dpbusd_epi32(dot[m][1], w1, xv);
      }
      xp += kGgufMR;
      wp += kNR;
    }
    const __m512 dw0 = _mm512_load_ps(dw + b * kNR), dw1 = _mm512_load_ps(dw + b * kNR + 16);
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) {
      const __m512 d = _mm512_set1_ps(dx[b * kGgufMR + m]);
      acc[m][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m][0]), _mm512_mul_ps(dw0, d), acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m][1]), _mm512_mul_ps(dw1, d), acc[m][1]);
    }
  }
  const __mmask16 k0 = lanes16(cols), k1 = lanes16(cols - 16);
  __m512 b0 = _mm512_setzero_ps(), b1 = b0;
  if (last && a.bias) {
    b0 = _mm512_maskz_loadu_ps(k0, a.bias + n0);
    b1 = _mm512_maskz_loadu_ps(k1, a.bias + n0 + 16);
  }
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) {
    float* y = a.y + (m0 + m) * a.N + n0;
    __m512 v0 = acc[m][0], v1 = acc[m][1];
    if (!first) {
      v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, y), v0);
      v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, y + 16), v1);
    }
    _mm512_mask_storeu_ps(y, k0, _mm512_add_ps(v0, b0));
    _mm512_mask_storeu_ps(y + 16, k1, _mm512_add_ps(v1, b1));
  }
}

using KernelFn = void (*)(const GgufArgs&, const uint32_t*, const float*, const int32_t*, const uint32_t*, const float*,
                          int64_t, int64_t, int64_t, int64_t, bool, bool);
template <std::size_t... I>
constexpr std::array<KernelFn, kGgufMR> kernel_table(std::index_sequence<I...>) {
  return {&kernel<static_cast<int>(I) + 1>...};
}

// W rows [n0, n0 + cols) blocks [b0, b0 + nblk) -> u8 codes rows [32][32 * nblk] and d_w
// [nblk][32].
QS_TARGET_AVX512 void decode_w_blocks(const GgufArgs& a, int64_t n0, int64_t cols, int64_t b0, int64_t nblk,
                                      uint8_t* codes, float* dw) {
  const int64_t nb = a.K / 32, bb = a.q4_0 ? 18 : 34;
  const int64_t ld = 32 * nblk;
  for (int64_t r = 0; r < kNR; ++r) {
    for (int64_t i = 0; i < nblk; ++i) {
      if (r >= cols) {
        dw[i * kNR + r] = 0.0f;
        continue;
      }
      const uint8_t* blk = static_cast<const uint8_t*>(a.blocks) + ((n0 + r) * nb + b0 + i) * bb;
      dw[i * kNR + r] = f16_to_f32(*reinterpret_cast<const uint16_t*>(blk));
      __m256i v;
      if (a.q4_0) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        v = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                             _mm256_set1_epi8(15));
      } else {
        v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), _mm256_set1_epi8(-128));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes + r * ld + 32 * i), v);
    }
  }
}

struct GgufGemm {
  static constexpr int kTileRows = kGgufMR;
  const GgufArgs& a;
  GgufX x;
  int64_t nb = a.K / 32;
  int64_t k_steps = a.K / 4;
  int64_t x_tile_elems = (k_steps + 2 * nb) * kGgufMR;
  int64_t w_panel_elems = kKcSteps * kNR + (kKcSteps / 8) * kNR;

  void pack_x(int64_t m0, int64_t rows, uint32_t* dst) const {
    pack_dwords16(reinterpret_cast<const uint32_t*>(x.codes + m0 * a.K), a.K / 4, rows, k_steps, dst, kGgufMR, kGgufMR);
    float* dx = reinterpret_cast<float*>(dst + k_steps * kGgufMR);
    int32_t* corr = reinterpret_cast<int32_t*>(dst + (k_steps + nb) * kGgufMR);
    for (int64_t b = 0; b < nb; ++b)
      for (int m = 0; m < kGgufMR; ++m) {
        dx[b * kGgufMR + m] = m < rows ? x.dx[(m0 + m) * nb + b] : 0.0f;
        corr[b * kGgufMR + m] = m < rows ? x.corr[(m0 + m) * nb + b] : 0;
      }
  }
  void pack_w(int64_t n0, int64_t cols, int64_t s0, int64_t steps, uint32_t* dst) const {
    const int64_t nblk = steps / 8;
    uint8_t* codes = detail::scratch<uint8_t>(3, static_cast<size_t>(kNR * 4 * kKcSteps));
    decode_w_blocks(a, n0, cols, s0 / 8, nblk, codes, reinterpret_cast<float*>(dst + kKcSteps * kNR));
    pack_w_panel(reinterpret_cast<const uint32_t*>(codes), steps, cols, steps, dst);
  }
  void kernel(int rows, const uint32_t* xtile, int64_t s0, const uint32_t* wp, int64_t steps, int64_t m0, int64_t n0,
              int64_t cols, bool first, bool last) const {
    static constexpr auto kKernels = kernel_table(std::make_index_sequence<kGgufMR>());
    const int64_t b0 = s0 / 8;
    const auto* dx = reinterpret_cast<const float*>(xtile + k_steps * kGgufMR) + b0 * kGgufMR;
    const auto* corr = reinterpret_cast<const int32_t*>(xtile + (k_steps + nb) * kGgufMR) + b0 * kGgufMR;
    kKernels[rows - 1](a, xtile + s0 * kGgufMR, dx, corr, wp, reinterpret_cast<const float*>(wp + kKcSteps * kNR),
                       steps / 8, m0, n0, cols, first, last);
  }
  void finish(int64_t, int64_t, int64_t, int64_t) const {}
};

QS_TARGET_AVX512_VNNI void prepare_gemm_row(const float* x, int64_t nb, bool q4, int8_t* codes, float* dx,
                                            int32_t* corr) {
  for (int64_t b = 0; b < nb; ++b) {
    dx[b] = f16_to_f32(quantize_block(x + 32 * b, codes + 32 * b));
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * b));
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), v);
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    corr[b] = (_mm_cvtsi128_si32(s2) + _mm_extract_epi32(s2, 1)) * (q4 ? -8 : -128);
  }
}

}  // namespace

void gguf_avx512(const GgufArgs& a, ThreadPool& pool, bool gemm) {
  const int64_t nb = a.K / 32;
  if (!gemm) {
    const int64_t steps = (nb + 1) / 2;
    const int64_t ld_codes = 64 * steps, ld_vec = 16 * steps;
    // One scratch buffer (the other slots belong to the GEMM driver) carved into three.
    const int64_t vec_bytes = a.M * ld_vec * 4;
    char* buf = detail::scratch<char>(2, static_cast<size_t>(a.M * ld_codes + 2 * vec_bytes));
    int8_t* codes = reinterpret_cast<int8_t*>(buf);
    float* dx = reinterpret_cast<float*>(buf + a.M * ld_codes);
    int32_t* corr = reinterpret_cast<int32_t*>(buf + a.M * ld_codes + vec_bytes);
    for (int64_t m = 0; m < a.M; ++m)
      prepare_gemv_row(a.x + m * a.K, nb, a.q4_0, {codes + m * ld_codes, dx + m * ld_vec, corr + m * ld_vec});
    const GgufCtx c{&a, nb, nb * (a.q4_0 ? 18 : 34), a.q4_0 ? 18 : 34, codes, dx, corr, ld_codes, ld_vec};
    if (a.q4_0) gemv<true>(c, pool);
    else gemv<false>(c, pool);
    return;
  }
  const int64_t codes_bytes = (a.M * a.K + 63) / 64 * 64, vec_bytes = (a.M * nb * 4 + 63) / 64 * 64;
  char* buf = detail::scratch<char>(2, static_cast<size_t>(codes_bytes + 2 * vec_bytes));
  int8_t* codes = reinterpret_cast<int8_t*>(buf);
  float* dx = reinterpret_cast<float*>(buf + codes_bytes);
  int32_t* corr = reinterpret_cast<int32_t*>(buf + codes_bytes + vec_bytes);
  detail::parallel_chunks(pool, a.M, 16, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      prepare_gemm_row(a.x + m * a.K, nb, a.q4_0, codes + m * a.K, dx + m * nb, corr + m * nb);
  });
  const GgufGemm f{a, {codes, dx, corr}};
  qgemm_blocked(f, a.M, a.N, pool);
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
