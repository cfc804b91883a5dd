// GEMV-style matmul for few rows of x (decode) on AVX-512: memory-bound, so W is streamed
// exactly once, in place, R rows at a time with the vectors running along K; every row of x
// (at most kGemvGroupRows per pass) is multiplied with each W vector while it is in registers.
// Threads take chunks of W rows dynamically. The x rows are converted once per call into a
// zero-padded buffer (bf16 pairs for VDPBF16PS, or f32, rounded to bf16 when W is bf16), so
// only the W loads of the last partial vector need a mask.
#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <array>
#include <utility>

#include "kernels/matmul_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

namespace {

using namespace avx512;

// Software prefetch: while a pass reads rows n..n+R-1 at column k, it prefetches rows
// n+R..n+2R-1 (the next pass) at the same column into L2. A row of a 1B-class model is one
// 4 KiB page (2048 bf16), and the hardware prefetchers restart at every page, so the start of
// each row would otherwise be a demand miss; one pass ahead (R pages) keeps enough lines in
// flight to cover DRAM latency. Measured on Zen 4, one thread: 22-24 GB/s, against 16-17 with
// a prefetch 1 KiB ahead within the row and 17-19 with none.

// Row sums of acc[m][0..R) -> y[m][0..R) (+ bias).
template <int MR, int R>
QS_INLINE_AVX512 void store_sums(__m512 (&acc)[MR][R], float* y, int64_t ldy, const float* bias) {
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    if constexpr (R % 4 == 0) {
#pragma GCC unroll 2
      for (int r = 0; r < R; r += 4) {
        __m128 s = hsum4(acc[m][r], acc[m][r + 1], acc[m][r + 2], acc[m][r + 3]);
        if (bias) s = _mm_add_ps(s, _mm_loadu_ps(bias + r));
        _mm_storeu_ps(y + m * ldy + r, s);
      }
    } else {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) y[m * ldy + r] = hsum(acc[m][r]) + (bias ? bias[r] : 0.0f);
    }
  }
}

// bf16 W, x as bf16 rows [MR][ldx] (zero padded to a multiple of 32): VDPBF16PS.
template <int MR, int R>
QS_TARGET_AVX512_BF16 void gemv_dot(const uint16_t* x, int64_t ldx, const char* w, int64_t ldw_bytes, int64_t K,
                                    float* y, int64_t ldy, const float* bias) {
  __m512 acc[MR][R];
  const uint16_t* wr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    wr[r] = reinterpret_cast<const uint16_t*>(w + r * ldw_bytes);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) acc[m][r] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512bh wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(wr[r] + k) + R * ldw_bytes, _MM_HINT_T1);
      wv[r] = (__m512bh)_mm512_loadu_si512(wr[r] + k);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512bh xv = (__m512bh)_mm512_load_si512(x + m * ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv, wv[r]);
    }
  }
  if (k < K) {
    const __mmask32 mask = lanes32(K - k);
    __m512bh wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, wr[r] + k);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512bh xv = (__m512bh)_mm512_load_si512(x + m * ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv, wv[r]);
    }
  }
  store_sums<MR, R>(acc, y, ldy, bias);
}

template <DType WT>
QS_INLINE_AVX512 __m512 load_w(const void* row, int64_t k, __mmask16 mask) {
  if constexpr (WT == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(row) + k);
  } else if constexpr (WT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(row) + k));
  } else {
    return bf16x16_to_f32(_mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(row) + k));
  }
}

// W in f32/f16/bf16 widened to f32, x as f32 rows [MR][ldx] (zero padded to a multiple of 16).
template <DType WT, int MR, int R>
QS_TARGET_AVX512 void gemv_fma(const float* x, int64_t ldx, const char* w, int64_t ldw_bytes, int64_t K, float* y,
                               int64_t ldy, const float* bias) {
  __m512 acc[MR][R];
  const char* wr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    wr[r] = w + r * ldw_bytes;
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) acc[m][r] = _mm512_setzero_ps();
  }
  constexpr int64_t kElemBytes = WT == DType::F32 ? 4 : 2;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 mask = lanes16(K - k);
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      // One prefetch per 64-byte line of the next pass (f16/bf16 use 32 bytes per step).
      if (kElemBytes == 4 || (k & 31) == 0) _mm_prefetch(wr[r] + k * kElemBytes + R * ldw_bytes, _MM_HINT_T1);
      wv[r] = load_w<WT>(wr[r], k, mask);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_load_ps(x + m * ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
  store_sums<MR, R>(acc, y, ldy, bias);
}

// Rows of W per pass for a group of MR rows of x: enough independent accumulators and
// concurrent W streams without running out of the 32 vector registers.
constexpr int rows_per_pass(int mr) { return mr <= 2 ? 8 : mr <= 5 ? 4 : 3; }

template <class XT>
using GemvFn = void (*)(const XT*, int64_t, const char*, int64_t, int64_t, float*, int64_t, const float*);

// Kernel tables indexed [MR - 1]: the full pass (R = rows_per_pass of the group's first, full
// group) is looked up with R fixed per call, the single-row remainder with R = 1.
template <class XT, template <int, int> class Pick, int R, std::size_t... I>
constexpr std::array<GemvFn<XT>, kGemvGroupRows> table(std::index_sequence<I...>) {
  return {Pick<static_cast<int>(I) + 1, R>::fn...};
}
template <int MR, int R>
struct PickDot {
  static constexpr GemvFn<uint16_t> fn = &gemv_dot<MR, R>;
};
template <DType WT>
struct PickFma {
  template <int MR, int R>
  struct T {
    static constexpr GemvFn<float> fn = &gemv_fma<WT, MR, R>;
  };
};

template <class XT, template <int, int> class Pick>
struct Tables {
  static constexpr auto kR1 = table<XT, Pick, 1>(std::make_index_sequence<kGemvGroupRows>());
  static constexpr auto kR3 = table<XT, Pick, 3>(std::make_index_sequence<kGemvGroupRows>());
  static constexpr auto kR4 = table<XT, Pick, 4>(std::make_index_sequence<kGemvGroupRows>());
  static constexpr auto kR8 = table<XT, Pick, 8>(std::make_index_sequence<kGemvGroupRows>());
  static GemvFn<XT> get(int mr, int r) {
    switch (r) {
      case 8:
        return kR8[mr - 1];
      case 4:
        return kR4[mr - 1];
      case 3:
        return kR3[mr - 1];
      default:
        return kR1[mr - 1];
    }
  }
};

// Runs the passes over W rows [n0, n1) for all rows of x (prepared in xb, row stride ldxb).
template <class XT, class Tab>
void run_rows(const MatmulArgs& a, const XT* xb, int64_t ldxb, int64_t n0, int64_t n1) {
  const int64_t ldw_bytes = a.ldw * static_cast<int64_t>(dtype_size(a.w_dtype));
  const int R = rows_per_pass(static_cast<int>(std::min<int64_t>(a.M, kGemvGroupRows)));
  for (int64_t n = n0; n < n1;) {
    const int r = n + R <= n1 ? R : 1;
    const char* w = w_row(a, n);
    const float* bias = a.bias ? a.bias + n : nullptr;
    for (int64_t m = 0; m < a.M; m += kGemvGroupRows) {
      const int mr = static_cast<int>(std::min<int64_t>(kGemvGroupRows, a.M - m));
      Tab::get(mr, r)(xb + m * ldxb, ldxb, w, ldw_bytes, a.K, a.y + m * a.ldy + n, a.ldy, bias);
    }
    n += r;
  }
}

template <class XT, class Tab>
void run_parallel(const MatmulArgs& a, ThreadPool& pool, const XT* xb, int64_t ldxb) {
  // About 16 chunks per thread: small enough to balance around other load, large enough
  // (>= 64 rows) that each chunk is a long sequential read.
  const int64_t chunk = std::max<int64_t>(64, chunk_for(a.N, pool.size(), 16, 8));
  parallel_chunks(pool, a.N, chunk, [&](int64_t n0, int64_t n1) { run_rows<XT, Tab>(a, xb, ldxb, n0, n1); });
}

QS_TARGET_AVX512 void prepare_x_bf16(const MatmulArgs& a, uint16_t* xb, int64_t ldxb) {
  for (int64_t m = 0; m < a.M; ++m) {
    const float* src = a.x + m * a.ldx;
    for (int64_t k = 0; k < ldxb; k += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(lanes16(a.K - k), src + k);
      _mm256_store_si256(reinterpret_cast<__m256i*>(xb + m * ldxb + k), f32x16_to_bf16(v));
    }
  }
}

QS_TARGET_AVX512 void prepare_x_f32(const MatmulArgs& a, bool round, float* xf, int64_t ldxf) {
  for (int64_t m = 0; m < a.M; ++m) {
    const float* src = a.x + m * a.ldx;
    for (int64_t k = 0; k < ldxf; k += 16) {
      __m512 v = _mm512_maskz_loadu_ps(lanes16(a.K - k), src + k);
      if (round) v = round_to_bf16(v);
      _mm512_store_ps(xf + m * ldxf + k, v);
    }
  }
}

template <DType WT>
void gemv_fma_family(const MatmulArgs& a, ThreadPool& pool) {
  const int64_t ldxf = (a.K + 15) / 16 * 16;
  float* xf = scratch<float>(0, static_cast<size_t>(a.M * ldxf));
  prepare_x_f32(a, WT == DType::BF16, xf, ldxf);
  run_parallel<float, Tables<float, PickFma<WT>::template T>>(a, pool, xf, ldxf);
}

}  // namespace

void gemv_avx512(const MatmulArgs& a, ThreadPool& pool, bool bf16_dot) {
  switch (a.w_dtype) {
    case DType::BF16:
      if (bf16_dot) {
        const int64_t ldxb = (a.K + 31) / 32 * 32;
        uint16_t* xb = scratch<uint16_t>(0, static_cast<size_t>(a.M * ldxb));
        prepare_x_bf16(a, xb, ldxb);
        run_parallel<uint16_t, Tables<uint16_t, PickDot>>(a, pool, xb, ldxb);
      } else {
        gemv_fma_family<DType::BF16>(a, pool);
      }
      break;
    case DType::F16:
      gemv_fma_family<DType::F16>(a, pool);
      break;
    default:
      gemv_fma_family<DType::F32>(a, pool);
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
