// matmul dispatch (CPU level x shape) and the portable C++ implementation.
#include "kernels/matmul.h"

#include <cstring>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"
#include "kernels/matmul_internal.h"

namespace qs::kernels {

namespace detail {

namespace {

// Widens W row `n` (columns 0..K) to f32.
void widen_row(const MatmulArgs& a, int64_t n, float* out) {
  const char* row = w_row(a, n);
  switch (a.w_dtype) {
    case DType::BF16: {
      const auto* h = reinterpret_cast<const uint16_t*>(row);
      for (int64_t k = 0; k < a.K; ++k) out[k] = bf16_to_f32(h[k]);
      break;
    }
    case DType::F16: {
      const auto* h = reinterpret_cast<const uint16_t*>(row);
      for (int64_t k = 0; k < a.K; ++k) out[k] = f16_to_f32(h[k]);
      break;
    }
    default:
      std::memcpy(out, row, static_cast<size_t>(a.K) * sizeof(float));
  }
}

constexpr int kTile = 4;   // 4x4 dot products per pass
constexpr int kLanes = 8;  // partial sums per dot product (the compiler vectorizes them)

// y[i][j] for rows x[0..mi), w[0..nj) (f32, row stride ld); products and sums in f32 (for bf16
// inputs the products are exact, so this is the contract's arithmetic in another order).
void dot_tile(const float* x, const float* w, int64_t ld, int64_t K, int mi, int nj, float out[kTile][kTile]) {
  float acc[kTile][kTile][kLanes] = {};
  const int64_t k_main = K / kLanes * kLanes;
  for (int64_t k = 0; k < k_main; k += kLanes)
    for (int i = 0; i < kTile; ++i)
      for (int j = 0; j < kTile; ++j)
        for (int l = 0; l < kLanes; ++l) acc[i][j][l] += x[i * ld + k + l] * w[j * ld + k + l];
  for (int i = 0; i < mi; ++i)
    for (int j = 0; j < nj; ++j) {
      float s = 0;
      for (int l = 0; l < kLanes; ++l) s += acc[i][j][l];
      for (int64_t k = k_main; k < K; ++k) s += x[i * ld + k] * w[j * ld + k];
      out[i][j] = s;
    }
}

}  // namespace

void matmul_generic(const MatmulArgs& a, ThreadPool& pool) {
  // x once (rounded to bf16 for bf16 W), padded to a multiple of the tile so tiles can read
  // whole blocks of rows; padding rows are zero and their results discarded.
  const int64_t m_pad = (a.M + kTile - 1) / kTile * kTile;
  float* xf = scratch<float>(0, static_cast<size_t>(m_pad * a.K));
  for (int64_t m = 0; m < m_pad; ++m)
    for (int64_t k = 0; k < a.K; ++k) {
      const float v = m < a.M ? a.x[m * a.ldx + k] : 0.0f;
      xf[m * a.K + k] = a.w_dtype == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v;
    }
  constexpr int64_t kRowsPerChunk = 16;
  parallel_chunks(pool, a.N, kRowsPerChunk, [&](int64_t c0, int64_t c1) {
    float* wf = scratch<float>(1, static_cast<size_t>(kRowsPerChunk * a.K));
    for (int64_t n0 = c0; n0 < c1; n0 += kRowsPerChunk) {  // a serial pool hands over everything
      const int64_t n1 = std::min(c1, n0 + kRowsPerChunk);
      for (int64_t n = n0; n < n1; ++n) widen_row(a, n, wf + (n - n0) * a.K);
      for (int64_t n = n1; n < n0 + kRowsPerChunk; ++n) std::memset(wf + (n - n0) * a.K, 0, a.K * sizeof(float));
      for (int64_t nb = n0; nb < n1; nb += kTile) {
        const int nj = static_cast<int>(std::min<int64_t>(kTile, n1 - nb));
        for (int64_t mb = 0; mb < a.M; mb += kTile) {
          const int mi = static_cast<int>(std::min<int64_t>(kTile, a.M - mb));
          float out[kTile][kTile];
          dot_tile(xf + mb * a.K, wf + (nb - n0) * a.K, a.K, a.K, mi, nj, out);
          for (int i = 0; i < mi; ++i)
            for (int j = 0; j < nj; ++j) a.y[(mb + i) * a.ldy + nb + j] = out[i][j] + (a.bias ? a.bias[nb + j] : 0.0f);
        }
      }
    }
  });
}

}  // namespace detail

namespace {

void validate(const MatmulArgs& a) {
  require(a.M >= 0 && a.N >= 0 && a.K >= 0, "matmul: negative shape M=", a.M, " N=", a.N, " K=", a.K);
  require(a.w_dtype == DType::F32 || a.w_dtype == DType::BF16 || a.w_dtype == DType::F16,
          "matmul: weights must be F32, BF16 or F16, got ", dtype_name(a.w_dtype));
  if (a.M == 0 || a.N == 0) return;
  require(a.y != nullptr && a.ldy >= a.N, "matmul: output needs ldy >= N (ldy=", a.ldy, ", N=", a.N, ")");
  if (a.K == 0) return;
  require(a.x != nullptr && a.ldx >= a.K, "matmul: x needs ldx >= K (ldx=", a.ldx, ", K=", a.K, ")");
  require(a.w != nullptr && a.ldw >= a.K, "matmul: w needs ldw >= K (ldw=", a.ldw, ", K=", a.K, ")");
}

}  // namespace

// Crossover measured on Zen 4 (bench matmul_path/*, Llama-3.2-1B q/o and gate/up, W cold):
// the GEMV, which reads W once in place and needs no packing, stays ahead of the packed GEMM up
// to about 32 rows for bf16 and f32 (e.g. bf16 M=32: 185 vs 131 GFLOP/s per core; M=64: GEMM
// ahead, 182 vs 135).
int64_t matmul_gemv_max_rows(DType w_dtype) {
  (void)w_dtype;
  return 32;
}

void matmul(const MatmulArgs& a, ThreadPool& pool, MatmulPath path) {
  validate(a);
  if (a.M == 0 || a.N == 0) return;
  if (a.K == 0) {  // empty sums: y is the bias (or zero)
    for (int64_t m = 0; m < a.M; ++m)
      for (int64_t n = 0; n < a.N; ++n) a.y[m * a.ldy + n] = a.bias ? a.bias[n] : 0.0f;
    return;
  }
  // Tiny products are not worth waking the other threads for (a pool round trip costs
  // microseconds, more when the machine is busy).
  constexpr int64_t kSerialMacs = int64_t{1} << 15;
  static ThreadPool serial(1);
  ThreadPool& p = a.M * a.N * a.K < kSerialMacs ? serial : pool;
  if (path == MatmulPath::Auto) path = a.M <= matmul_gemv_max_rows(a.w_dtype) ? MatmulPath::Gemv : MatmulPath::Gemm;
  switch (simd_level()) {
#if QS_HAVE_X86
    case SimdLevel::Avx512:
      if (path == MatmulPath::Gemv)
        detail::gemv_avx512(a, p, use_avx512_bf16());
      else
        detail::gemm_avx512(a, p, use_avx512_bf16());
      return;
    case SimdLevel::Avx2:
      if (path == MatmulPath::Gemv)
        detail::gemv_avx2(a, p);
      else
        detail::gemm_avx2(a, p);
      return;
#endif
    default:
      detail::matmul_generic(a, p);
  }
}

void matmul(const MatmulArgs& a, ThreadPool& pool) { matmul(a, pool, MatmulPath::Auto); }

}  // namespace qs::kernels
