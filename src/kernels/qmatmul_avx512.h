// AVX-512 building blocks of the low-bit kernels (src/kernels/q*_avx512.cpp only):
//  - a GEMV pass over W rows for weights that a "decoder" turns into bf16 vectors in registers
//    (WeightOnly tables, e4m3), accumulated with VDPBF16PS against x prepared in the decoder's
//    element order;
//  - packing of 32-bit elements (bf16 pairs, groups of four int8) into the register-tile
//    layouts of the GEMM microkernels, which are those of gemm_avx512.cpp (W panel [steps][32],
//    x tile [steps][14]);
//  - the blocked GEMM driver and its bf16 (VDPBF16PS) and u8 x s8 (VPDPBUSD) microkernels.
// Include after simd_avx512.h (see the note there).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/matmul_internal.h"
#include "kernels/simd_avx512.h"

#if QS_HAVE_X86

#define QS_INLINE_AVX512_BF16 \
  inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,avx2")))
#define QS_INLINE_AVX512_VNNI \
  inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,avx2")))

namespace qs::kernels::qdetail {

using namespace avx512;

// Low n bytes of a 32-byte or 16-byte load.
QS_INLINE_AVX512 __mmask32 bytes32(int64_t n) { return lanes32(n); }
QS_INLINE_AVX512 __mmask16 bytes16(int64_t n) { return lanes16(n); }

// ---- Outputs ---------------------------------------------------------------------------------

// y[m, n] = ((sum * row_scale[m]) * col_scale[n]) + bias[n], each factor optional: the
// WeightOnly (bias only) and Fp8 (acc * s_x * s_w + bias) contracts.
struct Epilogue {
  float* y = nullptr;
  int64_t ldy = 0;
  const float* row_scale = nullptr;  // [M]
  const float* col_scale = nullptr;  // [N]
  const float* bias = nullptr;       // [N]
  float apply(float v, int64_t m, int64_t n) const {
    if (row_scale) v = v * row_scale[m];
    if (col_scale) v = v * col_scale[n];
    return v + (bias ? bias[n] : 0.0f);
  }
};

// ---- bf16 GEMV over a decoder ----------------------------------------------------------------
//
// A decoder Dec describes one W format:
//   kVecs            bf16 vectors (32 weights each) per decode block; kBlockK = 32 * kVecs
//   Tables           per-row state that changes with the scale group (lookup tables, scales)
//   blocks, full     decode blocks per row (the last may be partial) and whole ones
//   group_end(b)     first block after b that needs new tables
//   load_tables(T, n, b), decode<Tail>(T, n, b, out[kVecs]), prefetch(n, b)
// x is given as bf16 rows in the decoder's element order, zero padded to whole blocks.

// Rows of W per pass for a group of MR rows of x (accumulators + per-row tables in 32 registers).
constexpr int gemv_rows_per_pass(int mr) { return mr == 1 ? 8 : mr <= 4 ? 4 : 2; }

template <class Dec, int MR, int R, bool Tail>
QS_INLINE_AVX512_BF16 void gemv_bf16_step(const Dec& dec, const typename Dec::Tables (&tab)[R], const uint16_t* x,
                                          int64_t ldx, int64_t n, int64_t b, __m512 (&acc)[MR][R]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m512i w[Dec::kVecs];
    dec.template decode<Tail>(tab[r], n + r, b, w);
    dec.prefetch(n + R + r, b);
#pragma GCC unroll 4
    for (int v = 0; v < Dec::kVecs; ++v) {
      const int64_t off = (b * Dec::kVecs + v) * 32;
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m)
        acc[m][r] = _mm512_dpbf16_ps(acc[m][r], (__m512bh)_mm512_load_si512(x + m * ldx + off), (__m512bh)w[v]);
    }
  }
}

// y[m0 + 0..MR, n + 0..R] from x rows [MR][ldx].
template <class Dec, int MR, int R>
QS_TARGET_AVX512_BF16 void gemv_bf16_pass(const Dec& dec, const uint16_t* x, int64_t ldx, int64_t n, int64_t m0,
                                          const Epilogue& out) {
  __m512 acc[MR][R];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  typename Dec::Tables tab[R];
  for (int64_t b = 0; b < dec.blocks;) {
    const int64_t end = dec.group_end(b);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) dec.load_tables(tab[r], n + r, b);
    const int64_t full_end = std::min(end, dec.full);
    for (; b < full_end; ++b) gemv_bf16_step<Dec, MR, R, false>(dec, tab, x, ldx, n, b, acc);
    if (b < end) gemv_bf16_step<Dec, MR, R, true>(dec, tab, x, ldx, n, b++, acc);
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out.y[(m0 + m) * out.ldy + n + r] = out.apply(hsum(acc[m][r]), m0 + m, n + r);
}

template <class Dec>
using GemvBf16Fn = void (*)(const Dec&, const uint16_t*, int64_t, int64_t, int64_t, const Epilogue&);

template <class Dec, std::size_t... I>
constexpr std::array<GemvBf16Fn<Dec>, detail::kGemvGroupRows> gemv_bf16_full(std::index_sequence<I...>) {
  return {&gemv_bf16_pass<Dec, static_cast<int>(I) + 1, gemv_rows_per_pass(static_cast<int>(I) + 1)>...};
}
template <class Dec, std::size_t... I>
constexpr std::array<GemvBf16Fn<Dec>, detail::kGemvGroupRows> gemv_bf16_single(std::index_sequence<I...>) {
  return {&gemv_bf16_pass<Dec, static_cast<int>(I) + 1, 1>...};
}

// The GEMV schedule every low-bit kind shares: threads take chunks of W rows; each group of up to
// kGemvGroupRows rows of x has its own W rows per pass (more x rows, fewer W rows), so for
// decode (M <= kGemvGroupRows) there is one group and W is read once. pass(full, mr, n, m) runs
// one pass over x rows [m, m + mr) and W rows [n, n + (full ? gemv_rows_per_pass(mr) : 1));
// finish(n0, n1) runs once per chunk after its passes.
template <class Pass, class Finish>
void gemv_passes(int64_t M, int64_t N, ThreadPool& pool, const Pass& pass, const Finish& finish) {
  const int64_t chunk = std::max<int64_t>(64, detail::chunk_for(N, pool.size(), 16, 8));
  detail::parallel_chunks(pool, N, chunk, [&](int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < M; m += detail::kGemvGroupRows) {
      const int mr = static_cast<int>(std::min<int64_t>(detail::kGemvGroupRows, M - m));
      const int R = gemv_rows_per_pass(mr);
      int64_t n = n0;
      for (; n + R <= n1; n += R) pass(true, mr, n, m);
      for (; n < n1; ++n) pass(false, mr, n, m);
    }
    finish(n0, n1);
  });
}
template <class Pass>
void gemv_passes(int64_t M, int64_t N, ThreadPool& pool, const Pass& pass) {
  gemv_passes(M, N, pool, pass, [](int64_t, int64_t) {});
}

// All of y = x W^T.
template <class Dec>
void gemv_bf16(const Dec& dec, const uint16_t* x, int64_t ldx, int64_t M, int64_t N, const Epilogue& out,
               ThreadPool& pool) {
  static constexpr auto kFull = gemv_bf16_full<Dec>(std::make_index_sequence<detail::kGemvGroupRows>());
  static constexpr auto kSingle = gemv_bf16_single<Dec>(std::make_index_sequence<detail::kGemvGroupRows>());
  gemv_passes(M, N, pool, [&](bool full, int mr, int64_t n, int64_t m) {
    (full ? kFull : kSingle)[mr - 1](dec, x + m * ldx, ldx, n, m, out);
  });
}

// W rows [n0, n0 + rows), decode blocks [b0, b1) -> bf16 rows dst[row][(b - b0) * kBlockK ...]
// (stride ld elements), for the GEMM's panel packing.
template <class Dec>
QS_TARGET_AVX512_BF16 void decode_rows_bf16(const Dec& dec, int64_t n0, int64_t rows, int64_t b0, int64_t b1,
                                            uint16_t* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    typename Dec::Tables tab;
    uint16_t* out = dst + r * ld;
    for (int64_t b = b0; b < b1;) {
      const int64_t end = std::min(dec.group_end(b), b1);
      dec.load_tables(tab, n0 + r, b);
      for (; b < end; ++b) {
        __m512i w[Dec::kVecs];
        if (b < dec.full) dec.template decode<false>(tab, n0 + r, b, w);
        else dec.template decode<true>(tab, n0 + r, b, w);
#pragma GCC unroll 4
        for (int v = 0; v < Dec::kVecs; ++v) _mm512_store_si512(out + ((b - b0) * Dec::kVecs + v) * 32, w[v]);
      }
    }
  }
}

// ---- Packing into the GEMM layouts -----------------------------------------------------------

constexpr int kMR = 14;  // rows of x per register tile (broadcast)
constexpr int kNR = 32;  // columns of W per register tile (two vectors)
// Cache blocking as in gemm_avx512.cpp: a K block of kKcSteps packed 32-bit steps keeps the W
// panel slice (32 KiB) in L1/L2 and the x slice of an M block in L2.
constexpr int64_t kKcSteps = 256;
constexpr int64_t kXSliceBytes = int64_t{640} << 10;
constexpr int64_t kMaxPanelsPerChunk = 8;

// Rows [0, rows) (rows <= 16, row stride ld elements) of 32-bit elements [0, steps) ->
// dst[step * dst_stride + lane], lanes [0, dst_lanes) (rows beyond `rows` are zero).
inline QS_TARGET_AVX512 void pack_dwords16(const uint32_t* src, int64_t ld, int64_t rows, int64_t steps, uint32_t* dst,
                                    int64_t dst_stride, int dst_lanes) {
  const __mmask16 store = lanes16(dst_lanes);
  for (int64_t s = 0; s < steps; s += 16) {
    const __mmask16 load = lanes16(steps - s);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(load, src + i * ld + s)) : _mm512_setzero_ps();
    transpose16x16(r);
    const int64_t n = std::min<int64_t>(16, steps - s);
    for (int64_t i = 0; i < n; ++i) _mm512_mask_storeu_ps(dst + (s + i) * dst_stride, store, r[i]);
  }
}

// A W panel: rows [0, rows <= 32) -> dst[step][32].
inline QS_TARGET_AVX512 void pack_w_panel(const uint32_t* src, int64_t ld, int64_t rows, int64_t steps, uint32_t* dst) {
  pack_dwords16(src, ld, std::min<int64_t>(rows, 16), steps, dst, kNR, 16);
  pack_dwords16(src + 16 * ld, ld, std::max<int64_t>(rows - 16, 0), steps, dst + 16, kNR, 16);
}

// An x tile: rows [0, rows <= 14) -> dst[step][14].
inline QS_TARGET_AVX512 void pack_x_tile(const uint32_t* src, int64_t ld, int64_t rows, int64_t steps, uint32_t* dst) {
  pack_dwords16(src, ld, rows, steps, dst, kMR, kMR);
}

// ---- GEMM driver -----------------------------------------------------------------------------
//
// A family F provides:
//   kTileRows, k_steps, x_tile_elems, w_panel_elems   rows of x per register tile; 32-bit steps
//                                              over all of K; 32-bit words per packed x tile and
//                                              per packed W panel slice (kKcSteps steps)
//   pack_x(m0, rows, dst)                      x rows [m0, m0 + rows <= kTileRows) -> one x tile
//   pack_w(n0, cols, s0, steps, dst)           W rows [n0, n0 + cols <= 32), steps [s0, s0 + steps)
//   kernel(rows, xtile, s0, wp, steps, m0, n0, cols, first, last)   the register tile
//   finish(m0, m1, n0, n1)                     after the last K block of the panels (LLM.int8())
// Loop nest of gemm_avx512.cpp: x packed once per M block, threads take chunks of 32-column
// panels, each walks the K blocks of its chunk, packing a panel slice and sweeping it over M.
template <class F>
void qgemm_blocked(const F& f, int64_t M, int64_t N, ThreadPool& pool) {
  constexpr int64_t kRows = F::kTileRows;
  const int64_t n_panels = (N + kNR - 1) / kNR;
  const int threads = pool.size();
  const int64_t rows_fit = std::max<int64_t>(kRows, kXSliceBytes / (kKcSteps * 4));
  const int64_t n_mblocks = (M + rows_fit - 1) / rows_fit;
  const int64_t mc_max = ((M + n_mblocks - 1) / n_mblocks + kRows - 1) / kRows * kRows;
  const int64_t chunk = std::clamp<int64_t>(n_panels / (16 * threads), 1, kMaxPanelsPerChunk);
  const int64_t k_steps = f.k_steps;
  for (int64_t m0 = 0; m0 < M; m0 += mc_max) {
    const int64_t mc = std::min(mc_max, M - m0);
    const int64_t m_tiles = (mc + kRows - 1) / kRows;
    uint32_t* xp = detail::scratch<uint32_t>(0, static_cast<size_t>(m_tiles * f.x_tile_elems));
    detail::parallel_chunks(pool, m_tiles, detail::chunk_for(m_tiles, threads, 4, 1), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t row = m0 + t * kRows;
        f.pack_x(row, std::min<int64_t>(kRows, M - row), xp + t * f.x_tile_elems);
      }
    });
    detail::parallel_chunks(pool, n_panels, chunk, [&](int64_t p0, int64_t p1) {
      uint32_t* wp = detail::scratch<uint32_t>(1, static_cast<size_t>(f.w_panel_elems));
      for (int64_t s0 = 0; s0 < k_steps; s0 += kKcSteps) {
        const int64_t steps = std::min(kKcSteps, k_steps - s0);
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n0 = p * kNR;
          const int64_t cols = std::min<int64_t>(kNR, N - n0);
          f.pack_w(n0, cols, s0, steps, wp);
          for (int64_t t = 0; t < m_tiles; ++t) {
            const int64_t row = m0 + t * kRows;
            f.kernel(static_cast<int>(std::min<int64_t>(kRows, M - row)), xp + t * f.x_tile_elems, s0, wp, steps, row,
                     n0, cols, s0 == 0, s0 + steps == k_steps);
          }
        }
      }
      f.finish(m0, m0 + mc, p0 * kNR, std::min(N, p1 * kNR));
    });
  }
}

// ---- Microkernels ----------------------------------------------------------------------------

// bf16 pairs: xp [steps][14], wp [steps][32]. Partial sums of earlier K blocks are in y; the
// last K block applies the epilogue.
template <int MR>
QS_TARGET_AVX512_BF16 void qkernel_bf16(const uint32_t* xp, const uint32_t* wp, int64_t steps, int64_t m0, int64_t n0,
                                        int64_t cols, bool first, bool last, const Epilogue& e) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t s = 0; s < steps; ++s) {
    const __m512bh w0 = (__m512bh)_mm512_load_si512(wp), w1 = (__m512bh)_mm512_load_si512(wp + 16);
#pragma GCC unroll 14
    for (int m = 0; m < MR; ++m) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(static_cast<int>(xp[m]));
      acc[m][0] = _mm512_dpbf16_ps(acc[m][0], b, w0);
      acc[m][1] = _mm512_dpbf16_ps(acc[m][1], b, w1);
    }
    xp += kMR;
    wp += kNR;
  }
  const __mmask16 k0 = lanes16(cols), k1 = lanes16(cols - 16);
  __m512 cs0 = _mm512_set1_ps(1.0f), cs1 = cs0, b0 = _mm512_setzero_ps(), b1 = b0;
  if (last && e.col_scale) {
    cs0 = _mm512_maskz_loadu_ps(k0, e.col_scale + n0);
    cs1 = _mm512_maskz_loadu_ps(k1, e.col_scale + n0 + 16);
  }
  if (last && e.bias) {
    b0 = _mm512_maskz_loadu_ps(k0, e.bias + n0);
    b1 = _mm512_maskz_loadu_ps(k1, e.bias + n0 + 16);
  }
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) {
    float* y = e.y + (m0 + m) * e.ldy + n0;
    __m512 v0 = acc[m][0], v1 = acc[m][1];
    if (!first) {
      v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, y), v0);
      v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, y + 16), v1);
    }
    if (last) {
      if (e.row_scale) {
        const __m512 rs = _mm512_set1_ps(e.row_scale[m0 + m]);
        v0 = _mm512_mul_ps(v0, rs);
        v1 = _mm512_mul_ps(v1, rs);
      }
      if (e.col_scale) {
        v0 = _mm512_mul_ps(v0, cs0);
        v1 = _mm512_mul_ps(v1, cs1);
      }
      v0 = _mm512_add_ps(v0, b0);
      v1 = _mm512_add_ps(v1, b1);
    }
    _mm512_mask_storeu_ps(y, k0, v0);
    _mm512_mask_storeu_ps(y + 16, k1, v1);
  }
}

template <std::size_t... I>
constexpr auto qkernels_bf16(std::index_sequence<I...>) {
  return std::array{&qkernel_bf16<static_cast<int>(I) + 1>...};
}
inline constexpr auto kQKernelsBf16 = qkernels_bf16(std::make_index_sequence<kMR>());

// GEMM over a bf16 decoder: x rows prepared in the decoder's element order (xb [M][ldx]), W
// panels decoded into bf16 rows and packed as pairs; epilogue as in the GEMV.
template <class Dec>
struct DecGemm {
  static constexpr int kTileRows = kMR;
  const Dec& dec;
  const uint16_t* xb;
  int64_t ldx;
  Epilogue e;
  int64_t k_steps;  // pairs: ldx / 2
  int64_t x_tile_elems = k_steps * kMR;
  int64_t w_panel_elems = kKcSteps * kNR;

  void pack_x(int64_t m0, int64_t rows, uint32_t* dst) const {
    pack_x_tile(reinterpret_cast<const uint32_t*>(xb + m0 * ldx), ldx / 2, rows, k_steps, dst);
  }
  void pack_w(int64_t n0, int64_t cols, int64_t s0, int64_t steps, uint32_t* dst) const {
    const int64_t k0 = 2 * s0, kc = 2 * steps;  // whole decode blocks: kKcSteps and ldx are multiples
    uint16_t* rows = detail::scratch<uint16_t>(3, static_cast<size_t>(kNR * 2 * kKcSteps));
    decode_rows_bf16(dec, n0, cols, k0 / Dec::kBlockK, (k0 + kc) / Dec::kBlockK, rows, kc);
    pack_w_panel(reinterpret_cast<const uint32_t*>(rows), steps, cols, steps, dst);
  }
  void kernel(int rows, const uint32_t* xtile, int64_t s0, const uint32_t* wp, int64_t steps, int64_t m0, int64_t n0,
              int64_t cols, bool first, bool last) const {
    kQKernelsBf16[rows - 1](xtile + s0 * kMR, wp, steps, m0, n0, cols, first, last, e);
  }
  void finish(int64_t, int64_t, int64_t, int64_t) const {}
};

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
