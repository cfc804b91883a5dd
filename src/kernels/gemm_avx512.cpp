// Blocked GEMM for AVX-512 (y = x W^T), two register-tiled microkernels:
//  - f32 FMA: W (f32, f16 or bf16) widened exactly to f32 while packing; x rounded to bf16
//    first when W is bf16 (the contract), so bf16 weights on CPUs without AVX512_BF16 give the
//    same sums as VDPBF16PS up to accumulation order.
//  - bf16 VDPBF16PS: W packed as bf16 pairs, x converted to bf16 (RNE) once per call.
// Tile: kMR = 14 rows of x (broadcast) x kNR = 32 columns of W (two vectors) = 28 accumulators.
// Loop nest: x is packed once (all threads, per M block of up to 512 KiB per K block); then
// chunks of 32-column N panels are handed out dynamically; a thread walks the K blocks of its
// chunk, packing each panel's kc x 32 slice of W (L1 sized) and sweeping it over the M block.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <array>
#include <utility>

#include "kernels/matmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

namespace {

using namespace avx512;

constexpr int kMR = 14;
constexpr int kNR = 32;
// Cache blocking. Per K block of kKcSteps packed steps (f32 values or bf16 pairs): the packed
// W panel (kKcSteps x 32 x 4 bytes = 32 KiB) is swept over every M block from L1/L2, and the
// x slice of an M block (at most kXSliceBytes) is reused from L2 by all panels of a chunk.
// Keeping both out of L3 matters on a shared machine, where other processes thrash the L3.
constexpr int64_t kKcSteps = 256;
constexpr int64_t kXSliceBytes = int64_t{640} << 10;  // 640 rows: M = 512 in one block
constexpr int64_t kMaxPanelsPerChunk = 8;

// ---- Packing ------------------------------------------------------------------------------

// 16 weights of row `src` starting at element k (n valid, rest zero) widened to f32.
template <DType WT>
QS_INLINE_AVX512 __m512 load_w16(const void* src, int64_t k, int64_t n) {
  const __mmask16 m = lanes16(n);
  if constexpr (WT == DType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(src) + k);
  } else if constexpr (WT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(src) + k));
  } else {
    return bf16x16_to_f32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(src) + k));
  }
}

// W rows [0, rows) (rows <= 32), columns k0 .. k0+kc -> dst[k][32] f32, zero padded.
template <DType WT>
QS_TARGET_AVX512 void pack_w_f32(const char* w, int64_t ldw_bytes, int64_t rows, int64_t k0, int64_t kc, float* dst) {
  constexpr int64_t kElem = WT == DType::F32 ? 4 : 2;
  for (int64_t kb = 0; kb < kc; kb += 16) {
    const int64_t kn = std::min<int64_t>(16, kc - kb);
    for (int g = 0; g < 2; ++g) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t row = 16 * g + i;
        // The next panel's rows, same columns, one prefetch per 64-byte line (into L2): W may
        // come cold from DRAM, and 32 rows x 16 columns are too many short streams for the
        // hardware prefetchers. A prefetch past the end of W is harmless (never faults).
        if (WT == DType::F32 || kb % 32 == 0)
          _mm_prefetch(w + (row + kNR) * ldw_bytes + (k0 + kb) * kElem, _MM_HINT_T1);
        r[i] = row < rows ? load_w16<WT>(w + row * ldw_bytes, k0 + kb, kn) : _mm512_setzero_ps();
      }
      transpose16x16(r);
      for (int64_t i = 0; i < kn; ++i) _mm512_store_ps(dst + (kb + i) * kNR + 16 * g, r[i]);
    }
  }
}

// bf16 W rows -> dst[k/2][32] pairs (w[n][k], w[n][k+1]) as 32-bit words, zero padded.
QS_TARGET_AVX512 void pack_w_bf16(const char* w, int64_t ldw_bytes, int64_t rows, int64_t k0, int64_t kc,
                                  uint32_t* dst) {
  for (int64_t kb = 0; kb < kc; kb += 32) {
    const int64_t kn = std::min<int64_t>(32, kc - kb);
    const int64_t pairs = (kn + 1) / 2;
    for (int g = 0; g < 2; ++g) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t row = 16 * g + i;
        _mm_prefetch(w + (row + kNR) * ldw_bytes + (k0 + kb) * 2, _MM_HINT_T1);  // as in pack_w_f32
        r[i] = row < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(
                                lanes32(kn), reinterpret_cast<const uint16_t*>(w + row * ldw_bytes) + k0 + kb))
                          : _mm512_setzero_ps();
      }
      transpose16x16(r);
      for (int64_t i = 0; i < pairs; ++i)
        _mm512_store_ps(reinterpret_cast<float*>(dst + (kb / 2 + i) * kNR + 16 * g), r[i]);
    }
  }
}

// x rows [0, rows) (rows <= 14), columns k0 .. k0+kc -> dst[k][14] f32 (rounded to bf16 when
// `round`), zero padded to 14 rows.
QS_TARGET_AVX512 void pack_x_f32(const float* x, int64_t ldx, int64_t rows, int64_t k0, int64_t kc, bool round,
                                 float* dst) {
  for (int64_t kb = 0; kb < kc; kb += 16) {
    const int64_t kn = std::min<int64_t>(16, kc - kb);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) {
      r[i] = i < rows ? _mm512_maskz_loadu_ps(lanes16(kn), x + i * ldx + k0 + kb) : _mm512_setzero_ps();
      if (round) r[i] = round_to_bf16(r[i]);
    }
    transpose16x16(r);
    for (int64_t i = 0; i < kn; ++i) _mm512_mask_storeu_ps(dst + (kb + i) * kMR, lanes16(kMR), r[i]);
  }
}

// x rows -> bf16 pairs dst[k/2][14] (RNE, as qs::f32_to_bf16), zero padded.
QS_TARGET_AVX512 void pack_x_bf16(const float* x, int64_t ldx, int64_t rows, int64_t k0, int64_t kc, uint32_t* dst) {
  for (int64_t kb = 0; kb < kc; kb += 32) {
    const int64_t kn = std::min<int64_t>(32, kc - kb);
    const int64_t pairs = (kn + 1) / 2;
    __m512 r[16];
    for (int i = 0; i < 16; ++i) {
      if (i < rows) {
        const float* src = x + i * ldx + k0 + kb;
        const __m256i lo = f32x16_to_bf16(_mm512_maskz_loadu_ps(lanes16(kn), src));
        const __m256i hi = f32x16_to_bf16(_mm512_maskz_loadu_ps(lanes16(kn - 16), src + 16));
        r[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
      } else {
        r[i] = _mm512_setzero_ps();
      }
    }
    transpose16x16(r);
    for (int64_t i = 0; i < pairs; ++i)
      _mm512_mask_storeu_ps(reinterpret_cast<float*>(dst + (kb / 2 + i) * kMR), lanes16(kMR), r[i]);
  }
}

// ---- Microkernels -------------------------------------------------------------------------

// Writes the MR x 32 tile: y = acc (+ bias) on the first K block, y += acc on later ones.
template <int MR>
QS_INLINE_AVX512 void store_tile(__m512 (&acc)[MR][2], float* y, int64_t ldy, int64_t cols, const float* bias,
                                 bool accumulate) {
  const __mmask16 m0 = lanes16(cols), m1 = lanes16(cols - 16);
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (bias && !accumulate) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) {
    float* row = y + m * ldy;
    __m512 v0 = acc[m][0], v1 = acc[m][1];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    } else {
      v0 = _mm512_add_ps(v0, b0);
      v1 = _mm512_add_ps(v1, b1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

// The y tile a later K block adds to has usually left L1 since it was written: fetch it while
// the microkernel runs instead of stalling in store_tile.
template <int MR>
QS_INLINE_AVX512 void prefetch_tile(const float* y, int64_t ldy, bool accumulate) {
  if (!accumulate) return;
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) {
    _mm_prefetch(reinterpret_cast<const char*>(y + m * ldy), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(y + m * ldy + 16), _MM_HINT_T0);
  }
}

// xp: [kc][14] f32, wp: [kc][32] f32.
template <int MR>
QS_TARGET_AVX512 void kernel_f32(const float* xp, const float* wp, int64_t kc, float* y, int64_t ldy, int64_t cols,
                                 const float* bias, bool accumulate) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  prefetch_tile<MR>(y, ldy, accumulate);
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 w0 = _mm512_load_ps(wp), w1 = _mm512_load_ps(wp + 16);
#pragma GCC unroll 14
    for (int m = 0; m < MR; ++m) {
      const __m512 b = _mm512_set1_ps(xp[m]);
      acc[m][0] = _mm512_fmadd_ps(b, w0, acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(b, w1, acc[m][1]);
    }
    xp += kMR;
    wp += kNR;
  }
  store_tile<MR>(acc, y, ldy, cols, bias, accumulate);
}

// xp: [kc/2][14] bf16 pairs, wp: [kc/2][32] bf16 pairs.
template <int MR>
QS_TARGET_AVX512_BF16 void kernel_bf16(const uint32_t* xp, const uint32_t* wp, int64_t kpairs, float* y, int64_t ldy,
                                       int64_t cols, const float* bias, bool accumulate) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  prefetch_tile<MR>(y, ldy, accumulate);
  for (int64_t k = 0; k < kpairs; ++k) {
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
  store_tile<MR>(acc, y, ldy, cols, bias, accumulate);
}

template <class Elem>
using KernelFn = void (*)(const Elem*, const Elem*, int64_t, float*, int64_t, int64_t, const float*, bool);

template <std::size_t... I>
constexpr std::array<KernelFn<float>, kMR> f32_kernels(std::index_sequence<I...>) {
  return {&kernel_f32<static_cast<int>(I) + 1>...};
}
template <std::size_t... I>
constexpr std::array<KernelFn<uint32_t>, kMR> bf16_kernels(std::index_sequence<I...>) {
  return {&kernel_bf16<static_cast<int>(I) + 1>...};
}

// ---- Driver -------------------------------------------------------------------------------

// What differs between the two kernel families: element of the packed buffers, K per
// element (pairs for bf16), the packing functions and the microkernel table.
struct F32Family {
  using Elem = float;
  static constexpr int64_t kPerElem = 1;
  DType w_dtype;
  bool round_x;
  void pack_x(const float* x, int64_t ldx, int64_t rows, int64_t k0, int64_t kc, Elem* dst) const {
    pack_x_f32(x, ldx, rows, k0, kc, round_x, dst);
  }
  void pack_w(const char* w, int64_t ldw_bytes, int64_t rows, int64_t k0, int64_t kc, Elem* dst) const {
    switch (w_dtype) {
      case DType::F16:
        pack_w_f32<DType::F16>(w, ldw_bytes, rows, k0, kc, dst);
        break;
      case DType::BF16:
        pack_w_f32<DType::BF16>(w, ldw_bytes, rows, k0, kc, dst);
        break;
      default:
        pack_w_f32<DType::F32>(w, ldw_bytes, rows, k0, kc, dst);
    }
  }
  static constexpr auto kKernels = f32_kernels(std::make_index_sequence<kMR>());
};

struct Bf16Family {
  using Elem = uint32_t;
  static constexpr int64_t kPerElem = 2;
  void pack_x(const float* x, int64_t ldx, int64_t rows, int64_t k0, int64_t kc, Elem* dst) const {
    pack_x_bf16(x, ldx, rows, k0, kc, dst);
  }
  void pack_w(const char* w, int64_t ldw_bytes, int64_t rows, int64_t k0, int64_t kc, Elem* dst) const {
    pack_w_bf16(w, ldw_bytes, rows, k0, kc, dst);
  }
  static constexpr auto kKernels = bf16_kernels(std::make_index_sequence<kMR>());
};

template <class Family>
void gemm_blocked(const MatmulArgs& a, ThreadPool& pool, const Family& family) {
  using Elem = typename Family::Elem;
  constexpr int64_t kElemBytes = sizeof(Elem);
  const int64_t ldw_bytes = a.ldw * static_cast<int64_t>(dtype_size(a.w_dtype));
  const int64_t n_panels = (a.N + kNR - 1) / kNR;
  const int threads = pool.size();
  const int64_t k_steps = (a.K + Family::kPerElem - 1) / Family::kPerElem;  // packed steps over all of K
  // M blocks of equal size whose x slice for one K block (mc x kKcSteps) stays in L2.
  const int64_t rows_fit = std::max<int64_t>(kMR, kXSliceBytes / (kKcSteps * kElemBytes));
  const int64_t n_mblocks = (a.M + rows_fit - 1) / rows_fit;
  const int64_t mc_max = ((a.M + n_mblocks - 1) / n_mblocks + kMR - 1) / kMR * kMR;
  // Panels per work chunk: each K block's x slice is reused by all of them while in L2; about
  // 16 chunks per thread so a thread slowed by other work delays the end little.
  const int64_t chunk = std::clamp<int64_t>(n_panels / (16 * threads), 1, kMaxPanelsPerChunk);
  for (int64_t m0 = 0; m0 < a.M; m0 += mc_max) {
    const int64_t mc = std::min(mc_max, a.M - m0);
    const int64_t m_blocks = (mc + kMR - 1) / kMR;
    const int64_t x_block_elems = k_steps * kMR;
    Elem* xp = scratch<Elem>(0, static_cast<size_t>(m_blocks * x_block_elems));
    parallel_chunks(pool, m_blocks, chunk_for(m_blocks, threads, 4, 1), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = m0 + b * kMR;
        family.pack_x(a.x + row * a.ldx, a.ldx, std::min<int64_t>(kMR, a.M - row), 0, a.K, xp + b * x_block_elems);
      }
    });
    parallel_chunks(pool, n_panels, chunk, [&](int64_t p0, int64_t p1) {
      Elem* wp = scratch<Elem>(1, static_cast<size_t>(kKcSteps * kNR));
      for (int64_t s0 = 0; s0 < k_steps; s0 += kKcSteps) {
        const int64_t steps = std::min(kKcSteps, k_steps - s0);
        const int64_t k0 = s0 * Family::kPerElem;
        const int64_t kc = std::min(steps * Family::kPerElem, a.K - k0);
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n0 = p * kNR;
          const int64_t cols = std::min<int64_t>(kNR, a.N - n0);
          family.pack_w(w_row(a, n0), ldw_bytes, cols, k0, kc, wp);
          const float* bias = a.bias ? a.bias + n0 : nullptr;
          for (int64_t b = 0; b < m_blocks; ++b) {
            const int64_t row = m0 + b * kMR;
            const int64_t rows = std::min<int64_t>(kMR, a.M - row);
            Family::kKernels[rows - 1](xp + b * x_block_elems + s0 * kMR, wp, steps, a.y + row * a.ldy + n0, a.ldy,
                                       cols, bias, s0 > 0);
          }
        }
      }
    });
  }
}

}  // namespace

void gemm_avx512(const MatmulArgs& a, ThreadPool& pool, bool bf16_dot) {
  if (a.w_dtype == DType::BF16 && bf16_dot) {
    gemm_blocked(a, pool, Bf16Family{});
  } else {
    gemm_blocked(a, pool, F32Family{a.w_dtype, a.w_dtype == DType::BF16});
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
