// matmul for AVX2 + FMA (+F16C) CPUs: the same two algorithms as the AVX-512 code, narrower.
//  - GEMV: W rows streamed in place, 8 columns per step, up to 4 rows of x per pass.
//  - GEMM: x and W panels packed (plain C++), 6 x 16 register tile of f32 FMAs.
// bf16 weights are widened exactly and x is rounded to bf16 first (the contract's products);
// f16 weights are widened exactly with F16C.
#include <array>
#include <cstring>
#include <utility>

#include "core/cpu.h"
#include "kernels/matmul_internal.h"

#if QS_HAVE_X86
#include <immintrin.h>

namespace qs::kernels::detail {

namespace {

#define QS_INLINE_AVX2 inline __attribute__((always_inline, target("avx2,fma,f16c")))

template <DType WT>
QS_INLINE_AVX2 __m256 load_w8(const char* row, int64_t k) {
  if constexpr (WT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    if constexpr (WT == DType::F16)
      return _mm256_cvtph_ps(h);
    else
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

QS_INLINE_AVX2 float hsum8(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

constexpr int kGroupRows = 4;  // rows of x per GEMV pass

// x: MR rows [ldx] f32 (rounded for bf16 W), zero padded to a multiple of 8.
template <DType WT, int MR, int R>
QS_TARGET_AVX2 void gemv_tile(const float* x, int64_t ldx, const char* w, int64_t ldw_bytes, int64_t K, float* y,
                              int64_t ldy, const float* bias) {
  constexpr int64_t kElem = WT == DType::F32 ? 4 : 2;
  __m256 acc[MR][R];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  const int64_t k_main = K / 8 * 8;
  for (int64_t k = 0; k < k_main; k += 8) {
    __m256 wv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      if ((k * kElem) % 64 == 0) _mm_prefetch(w + r * ldw_bytes + k * kElem + R * ldw_bytes, _MM_HINT_T1);
      wv[r] = load_w8<WT>(w + r * ldw_bytes, k);
    }
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_load_ps(x + m * ldx + k);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[m][r] = _mm256_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
  if (k_main < K) {  // last partial vector: copy the tail of each row into a zero-padded buffer
    alignas(32) char tail[R][32] = {};
    __m256 wv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      std::memcpy(tail[r], w + r * ldw_bytes + k_main * kElem, static_cast<size_t>((K - k_main) * kElem));
      wv[r] = load_w8<WT>(tail[r], 0);
    }
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_load_ps(x + m * ldx + k_main);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[m][r] = _mm256_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[m * ldy + r] = hsum8(acc[m][r]) + (bias ? bias[r] : 0.0f);
}

using GemvFn = void (*)(const float*, int64_t, const char*, int64_t, int64_t, float*, int64_t, const float*);

template <DType WT, int R, std::size_t... I>
constexpr std::array<GemvFn, kGroupRows> gemv_row(std::index_sequence<I...>) {
  return {&gemv_tile<WT, static_cast<int>(I) + 1, R>...};
}
template <DType WT>
struct GemvTables {
  static constexpr auto kR1 = gemv_row<WT, 1>(std::make_index_sequence<kGroupRows>());
  static constexpr auto kR2 = gemv_row<WT, 2>(std::make_index_sequence<kGroupRows>());
  static constexpr auto kR4 = gemv_row<WT, 4>(std::make_index_sequence<kGroupRows>());
  static GemvFn get(int mr, int r) { return r == 4 ? kR4[mr - 1] : r == 2 ? kR2[mr - 1] : kR1[mr - 1]; }
};

template <DType WT>
void gemv_typed(const MatmulArgs& a, ThreadPool& pool) {
  const int64_t ldx = (a.K + 7) / 8 * 8;
  float* xf = scratch<float>(0, static_cast<size_t>(a.M * ldx));
  for (int64_t m = 0; m < a.M; ++m) {
    for (int64_t k = 0; k < a.K; ++k) {
      const float v = a.x[m * a.ldx + k];
      xf[m * ldx + k] = WT == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v;
    }
    for (int64_t k = a.K; k < ldx; ++k) xf[m * ldx + k] = 0.0f;
  }
  const int64_t ldw_bytes = a.ldw * static_cast<int64_t>(dtype_size(a.w_dtype));
  const int R = a.M <= 2 ? 4 : 2;
  const int64_t chunk = std::max<int64_t>(64, chunk_for(a.N, pool.size(), 16, 8));
  parallel_chunks(pool, a.N, chunk, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1;) {
      const int r = n + R <= n1 ? R : 1;
      for (int64_t m = 0; m < a.M; m += kGroupRows) {
        const int mr = static_cast<int>(std::min<int64_t>(kGroupRows, a.M - m));
        GemvTables<WT>::get(mr, r)(xf + m * ldx, ldx, w_row(a, n), ldw_bytes, a.K, a.y + m * a.ldy + n, a.ldy,
                                   a.bias ? a.bias + n : nullptr);
      }
      n += r;
    }
  });
}

// ---- GEMM ---------------------------------------------------------------------------------

constexpr int kMR = 6;
constexpr int kNR = 16;
constexpr int64_t kKc = 1024;

float widen(const MatmulArgs& a, int64_t n, int64_t k) {
  const char* row = w_row(a, n);
  switch (a.w_dtype) {
    case DType::BF16:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
    case DType::F16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
    default:
      return reinterpret_cast<const float*>(row)[k];
  }
}

QS_INLINE_AVX2 void transpose8x8(__m256* r) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// W rows [n0, n0 + cols) x [k0, k0 + kc) -> wp [kc][16] f32, zero beyond cols. Whole panels go
// through 8 x 8 register transposes (an element-wise copy took as long as the FMAs).
template <DType WT>
QS_TARGET_AVX2 void pack_panel(const MatmulArgs& a, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float* wp) {
  int64_t k = 0;
  if (cols == kNR) {
    for (; k + 8 <= kc; k += 8)
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = load_w8<WT>(w_row(a, n0 + 8 * half + i), k0 + k);
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_store_ps(wp + (k + i) * kNR + 8 * half, r[i]);
      }
  }
  for (int64_t c = 0; c < kNR; ++c)
    for (int64_t kk = k; kk < kc; ++kk) wp[kk * kNR + c] = c < cols ? widen(a, n0 + c, k0 + kk) : 0.0f;
}

void pack_panel(const MatmulArgs& a, int64_t n0, int64_t cols, int64_t k0, int64_t kc, float* wp) {
  switch (a.w_dtype) {
    case DType::BF16:
      return pack_panel<DType::BF16>(a, n0, cols, k0, kc, wp);
    case DType::F16:
      return pack_panel<DType::F16>(a, n0, cols, k0, kc, wp);
    default:
      return pack_panel<DType::F32>(a, n0, cols, k0, kc, wp);
  }
}

template <int MR>
QS_TARGET_AVX2 void gemm_tile(const float* xp, const float* wp, int64_t kc, float* y, int64_t ldy, int64_t cols,
                              const float* bias, bool accumulate) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_load_ps(wp), w1 = _mm256_load_ps(wp + 8);
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) {
      const __m256 b = _mm256_broadcast_ss(xp + m);
      acc[m][0] = _mm256_fmadd_ps(b, w0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(b, w1, acc[m][1]);
    }
    xp += kMR;
    wp += kNR;
  }
  alignas(32) float tile[kNR];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) {
    _mm256_store_ps(tile, acc[m][0]);
    _mm256_store_ps(tile + 8, acc[m][1]);
    float* row = y + m * ldy;
    for (int64_t c = 0; c < cols; ++c) row[c] = accumulate ? row[c] + tile[c] : tile[c] + (bias ? bias[c] : 0.0f);
  }
}

using GemmFn = void (*)(const float*, const float*, int64_t, float*, int64_t, int64_t, const float*, bool);
template <std::size_t... I>
constexpr std::array<GemmFn, kMR> gemm_table(std::index_sequence<I...>) {
  return {&gemm_tile<static_cast<int>(I) + 1>...};
}
constexpr auto kGemm = gemm_table(std::make_index_sequence<kMR>());

}  // namespace

void gemv_avx2(const MatmulArgs& a, ThreadPool& pool) {
  switch (a.w_dtype) {
    case DType::BF16:
      gemv_typed<DType::BF16>(a, pool);
      break;
    case DType::F16:
      gemv_typed<DType::F16>(a, pool);
      break;
    default:
      gemv_typed<DType::F32>(a, pool);
  }
}

void gemm_avx2(const MatmulArgs& a, ThreadPool& pool) {
  const bool round_x = a.w_dtype == DType::BF16;
  const int64_t m_blocks = (a.M + kMR - 1) / kMR;
  const int64_t n_panels = (a.N + kNR - 1) / kNR;
  for (int64_t k0 = 0; k0 < a.K; k0 += kKc) {
    const int64_t kc = std::min(kKc, a.K - k0);
    // x block [m_blocks][kc][6], zero padded rows.
    float* xp = scratch<float>(0, static_cast<size_t>(m_blocks * kc * kMR));
    parallel_chunks(pool, m_blocks, chunk_for(m_blocks, pool.size(), 4, 1), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t k = 0; k < kc; ++k)
          for (int i = 0; i < kMR; ++i) {
            const int64_t m = b * kMR + i;
            float v = m < a.M ? a.x[m * a.ldx + k0 + k] : 0.0f;
            if (round_x) v = bf16_to_f32(f32_to_bf16(v));
            xp[(b * kc + k) * kMR + i] = v;
          }
    });
    parallel_chunks(pool, n_panels, chunk_for(n_panels, pool.size(), 8, 1), [&](int64_t p0, int64_t p1) {
      float* wp = scratch<float>(1, static_cast<size_t>(kc * kNR));
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n0 = p * kNR;
        const int64_t cols = std::min<int64_t>(kNR, a.N - n0);
        pack_panel(a, n0, cols, k0, kc, wp);
        for (int64_t b = 0; b < m_blocks; ++b) {
          const int64_t rows = std::min<int64_t>(kMR, a.M - b * kMR);
          kGemm[rows - 1](xp + b * kc * kMR, wp, kc, a.y + b * kMR * a.ldy + n0, a.ldy, cols,
                          a.bias ? a.bias + n0 : nullptr, k0 > 0);
        }
      }
    });
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
