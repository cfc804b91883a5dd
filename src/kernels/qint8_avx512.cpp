// Int8 (W8A8-INT8 and LLM.int8()) on AVX512-VNNI.
//  - x: one pass per row: (LLM.int8()) outlier columns zeroed, s_x = max|x| / 127,
//    q = clamp(round_half_even(x / s_x)) exactly as quantize_row_int8, stored as q + 128 (u8).
//  - VPDPBUSD multiplies the u8 x with the s8 W in groups of four, int32 sums, exact;
//    sum (q_x + 128) q_w - 128 * sum q_w = sum q_x q_w (row sums of W from the layer, or
//    accumulated alongside when not given).
//  - y = (s_x * s_w) * sum, then the LLM.int8() f32 pass over the outlier columns and the bias
//    (llm_int8_finish) while the chunk's W rows are still in cache.
// GEMV: W rows streamed once, 64 codes per instruction. GEMM: W panels of 32 rows packed as
// groups of four codes [K/4][32], x tiles [K/4][14], int32 partial sums of earlier K blocks
// kept in y (as int32 bits) until the last block converts them.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <cmath>
#include <vector>

#include "kernels/qmatmul_avx512.h"
#include "kernels/qmatmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::qdetail {

namespace {

struct Int8Ctx {
  const Int8Args* a;
  const uint8_t* xq;  // [M][ldq] q + 128, padded with 128
  int64_t ldq;
  const float* sx;          // [M]
  const int32_t* row_sums;  // [N] or null (the GEMV computes them)
};

// ---- Activations -------------------------------------------------------------------------------

// Columns of x kept (1) or zeroed as LLM.int8() outliers, 16 per mask.
std::vector<__mmask16> keep_masks(int64_t K, const std::vector<int32_t>& outliers) {
  std::vector<__mmask16> keep(static_cast<size_t>((K + 15) / 16), 0xffff);
  for (int32_t k : outliers) keep[k / 16] = static_cast<__mmask16>(keep[k / 16] & ~(1u << (k % 16)));
  return keep;
}

QS_TARGET_AVX512 float quantize_row(const float* x, int64_t K, const __mmask16* keep, float static_scale, uint8_t* q,
                                    int64_t ldq) {
  float s = static_scale;
  if (!(s > 0)) {
    __m512 m = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16)
      m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(lanes16(K - k) & keep[k / 16], x + k)), m);
    const float amax = hmax(m);
    s = amax > 0 ? amax / 127.0f : 1.0f;
  }
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t k = 0; k < ldq; k += 16) {
    const __mmask16 valid = k < K ? lanes16(K - k) & keep[k / 16] : __mmask16(0);
    __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(valid, x + k), sv),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // std::max(-127, std::min(127, v)) with its NaN behaviour (NaN -> 127)
    v = _mm512_max_ps(_mm512_min_ps(v, _mm512_set1_ps(127.0f)), _mm512_set1_ps(-127.0f));
    const __m512i u = _mm512_add_epi32(_mm512_cvttps_epi32(v), _mm512_set1_epi32(128));
    _mm_store_si128(reinterpret_cast<__m128i*>(q + k), _mm512_cvtepi32_epi8(u));
  }
  return s;
}

// ---- GEMV --------------------------------------------------------------------------------------

template <int MR, int R, bool kSums>
QS_TARGET_AVX512_VNNI void gemv_pass(const Int8Ctx& c, const uint8_t* xq, int64_t n, int64_t m0) {
  const Int8Args& a = *c.a;
  const int64_t K = a.K;
  __m512i acc[MR][R], sums[R];
  const int8_t* w[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    w[r] = a.w + (n + r) * K;
    sums[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) acc[m][r] = _mm512_setzero_si512();
  }
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t k = 0; k < K; k += 64) {
    const __mmask64 mask = K - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (K - k)) - 1;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w[r] + R * K + k), _MM_HINT_T1);
      const __m512i wv = _mm512_maskz_loadu_epi8(mask, w[r] + k);
      if (kSums) sums[r] = _mm512_dpbusd_epi32(sums[r], ones, wv);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m)
        acc[m][r] = _mm512_dpbusd_epi32(acc[m][r], _mm512_load_si512(xq + m * c.ldq + k), wv);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int32_t rs = kSums ? _mm512_reduce_add_epi32(sums[r]) : c.row_sums[n + r];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const int32_t dot = _mm512_reduce_add_epi32(acc[m][r]) - 128 * rs;
      a.y[(m0 + m) * a.N + n + r] = c.sx[m0 + m] * a.w_scale[n + r] * static_cast<float>(dot);
    }
  }
}

using GemvFn = void (*)(const Int8Ctx&, const uint8_t*, int64_t, int64_t);

template <bool kSums, int R, std::size_t... I>
constexpr std::array<GemvFn, detail::kGemvGroupRows> gemv_table(std::index_sequence<I...>) {
  return {&gemv_pass<static_cast<int>(I) + 1, R == 0 ? gemv_rows_per_pass(static_cast<int>(I) + 1) : R, kSums>...};
}

template <bool kSums>
void gemv(const Int8Ctx& c, const std::vector<int32_t>& outliers, ThreadPool& pool) {
  static constexpr auto kFull = gemv_table<kSums, 0>(std::make_index_sequence<detail::kGemvGroupRows>());
  static constexpr auto kSingle = gemv_table<kSums, 1>(std::make_index_sequence<detail::kGemvGroupRows>());
  const Int8Args& a = *c.a;
  gemv_passes(
      a.M, a.N, pool,
      [&](bool full, int mr, int64_t n, int64_t m) { (full ? kFull : kSingle)[mr - 1](c, c.xq + m * c.ldq, n, m); },
      [&](int64_t n0, int64_t n1) { llm_int8_finish(a, outliers, 0, a.M, n0, n1); });
}

// ---- GEMM --------------------------------------------------------------------------------------

// Rows [0, rows <= 16) of bytes, row stride ld, columns [k0, k0 + 4 * steps) (zero past kend)
// as groups of four -> dst[step * dst_stride + lane].
QS_TARGET_AVX512 void pack_bytes16(const int8_t* src, int64_t ld, int64_t rows, int64_t k0, int64_t kend, int64_t steps,
                                   uint32_t* dst) {
  for (int64_t s = 0; s < steps; s += 16) {
    const int64_t k = k0 + 4 * s;
    const __mmask64 mask = kend - k >= 64 ? ~__mmask64(0) : kend <= k ? 0 : (__mmask64(1) << (kend - k)) - 1;
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi8(mask, src + i * ld + k)) : _mm512_setzero_ps();
    transpose16x16(r);
    const int64_t n = std::min<int64_t>(16, steps - s);
    for (int64_t i = 0; i < n; ++i) _mm512_store_ps(reinterpret_cast<float*>(dst + (s + i) * kNR), r[i]);
  }
}

// xp [steps][14] u8 quads, wp [steps][32] s8 quads.
template <int MR>
QS_TARGET_AVX512_VNNI void kernel_u8s8(const Int8Ctx& c, const uint32_t* xp, const uint32_t* wp, int64_t steps,
                                       int64_t m0, int64_t n0, int64_t cols, bool first, bool last) {
  const Int8Args& a = *c.a;
  __m512i acc[MR][2];
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_si512();
  for (int64_t s = 0; s < steps; ++s) {
    const __m512i w0 = _mm512_load_si512(wp), w1 = _mm512_load_si512(wp + 16);
#pragma GCC unroll 14
    for (int m = 0; m < MR; ++m) {
      const __m512i b = _mm512_set1_epi32(static_cast<int>(xp[m]));
      acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], b, w0);
      acc[m][1] = _mm512_dpbusd_epi32(acc[m][1], b, w1);
    }
    xp += kMR;
    wp += kNR;
  }
  const __mmask16 k0 = lanes16(cols), k1 = lanes16(cols - 16);
  __m512i corr0 = _mm512_setzero_si512(), corr1 = corr0;
  __m512 ws0 = _mm512_setzero_ps(), ws1 = ws0;
  if (last) {
    const __m512i c128 = _mm512_set1_epi32(128);
    corr0 = _mm512_mullo_epi32(c128, _mm512_maskz_loadu_epi32(k0, c.row_sums + n0));
    corr1 = _mm512_mullo_epi32(c128, _mm512_maskz_loadu_epi32(k1, c.row_sums + n0 + 16));
    ws0 = _mm512_maskz_loadu_ps(k0, a.w_scale + n0);
    ws1 = _mm512_maskz_loadu_ps(k1, a.w_scale + n0 + 16);
  }
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) {
    float* y = a.y + (m0 + m) * a.N + n0;
    __m512i v0 = acc[m][0], v1 = acc[m][1];
    if (!first) {
      v0 = _mm512_add_epi32(v0, _mm512_maskz_loadu_epi32(k0, y));
      v1 = _mm512_add_epi32(v1, _mm512_maskz_loadu_epi32(k1, y + 16));
    }
    if (last) {
      const __m512 sx = _mm512_set1_ps(c.sx[m0 + m]);
      _mm512_mask_storeu_ps(y, k0, _mm512_mul_ps(_mm512_mul_ps(sx, ws0), _mm512_cvtepi32_ps(_mm512_sub_epi32(v0, corr0))));
      _mm512_mask_storeu_ps(y + 16, k1,
                            _mm512_mul_ps(_mm512_mul_ps(sx, ws1), _mm512_cvtepi32_ps(_mm512_sub_epi32(v1, corr1))));
    } else {
      _mm512_mask_storeu_epi32(y, k0, v0);
      _mm512_mask_storeu_epi32(y + 16, k1, v1);
    }
  }
}

using KernelFn = void (*)(const Int8Ctx&, const uint32_t*, const uint32_t*, int64_t, int64_t, int64_t, int64_t, bool,
                          bool);
template <std::size_t... I>
constexpr std::array<KernelFn, kMR> kernel_table(std::index_sequence<I...>) {
  return {&kernel_u8s8<static_cast<int>(I) + 1>...};
}

struct Int8Gemm {
  static constexpr int kTileRows = kMR;
  const Int8Ctx& c;
  const std::vector<int32_t>& outliers;
  int64_t k_steps = (c.a->K + 3) / 4;
  int64_t x_tile_elems = k_steps * kMR;
  int64_t w_panel_elems = kKcSteps * kNR;

  void pack_x(int64_t m0, int64_t rows, uint32_t* dst) const {
    pack_x_tile(reinterpret_cast<const uint32_t*>(c.xq + m0 * c.ldq), c.ldq / 4, rows, k_steps, dst);
  }
  void pack_w(int64_t n0, int64_t cols, int64_t s0, int64_t steps, uint32_t* dst) const {
    const int64_t K = c.a->K;
    const int8_t* w = c.a->w + n0 * K;
    pack_bytes16(w, K, std::min<int64_t>(cols, 16), 4 * s0, K, steps, dst);
    pack_bytes16(w + 16 * K, K, std::max<int64_t>(cols - 16, 0), 4 * s0, K, steps, dst + 16);
  }
  void kernel(int rows, const uint32_t* xtile, int64_t s0, const uint32_t* wp, int64_t steps, int64_t m0, int64_t n0,
              int64_t cols, bool first, bool last) const {
    static constexpr auto kKernels = kernel_table(std::make_index_sequence<kMR>());
    kKernels[rows - 1](c, xtile + s0 * kMR, wp, steps, m0, n0, cols, first, last);
  }
  void finish(int64_t m0, int64_t m1, int64_t n0, int64_t n1) const { llm_int8_finish(*c.a, outliers, m0, m1, n0, n1); }
};

QS_TARGET_AVX512_VNNI void row_sums(const Int8Args& a, int64_t n0, int64_t n1, int32_t* out) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t n = n0; n < n1; ++n) {
    __m512i s = _mm512_setzero_si512();
    for (int64_t k = 0; k < a.K; k += 64) {
      const __mmask64 mask = a.K - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (a.K - k)) - 1;
      s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(mask, a.w + n * a.K + k));
    }
    out[n] = _mm512_reduce_add_epi32(s);
  }
}

}  // namespace

void int8_avx512(const Int8Args& a, ThreadPool& pool, bool gemm) {
  const std::vector<int32_t> outliers = llm_int8_outlier_columns(a);
  const std::vector<__mmask16> keep = keep_masks(a.K, outliers);
  const int64_t ldq = (a.K + 63) / 64 * 64;
  uint8_t* xq = detail::scratch<uint8_t>(2, static_cast<size_t>(a.M * ldq));
  std::vector<float> sx(static_cast<size_t>(a.M));
  detail::parallel_chunks(pool, a.M, gemm ? 16 : a.M, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      sx[m] = quantize_row(a.x + m * a.K, a.K, keep.data(), a.static_x_scale, xq + m * ldq, ldq);
  });
  Int8Ctx c{&a, xq, ldq, sx.data(), a.w_row_sums};
  if (!gemm) {
    if (a.w_row_sums) gemv<false>(c, outliers, pool);
    else gemv<true>(c, outliers, pool);
    return;
  }
  std::vector<int32_t> sums;
  if (!a.w_row_sums) {
    sums.resize(static_cast<size_t>(a.N));
    detail::parallel_chunks(pool, a.N, 256, [&](int64_t n0, int64_t n1) { row_sums(a, n0, n1, sums.data()); });
    c.row_sums = sums.data();
  }
  const Int8Gemm f{c, outliers};
  qgemm_blocked(f, a.M, a.N, pool);
}

}  // namespace qs::kernels::qdetail

#endif  // QS_HAVE_X86
