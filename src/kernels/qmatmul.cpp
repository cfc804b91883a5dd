// Entry points of the low-bit kernels: argument checks, then dispatch on the CPU level and on
// M (GEMV for decode-sized M, blocked GEMM above), and the pieces of the contracts that every
// implementation shares (LLM.int8() outlier pass, Fp8 activation scale).
#include "kernels/qmatmul.h"

#include <algorithm>
#include <cmath>

#include "core/cpu.h"
#include "core/error.h"
#include "formats/fp8.h"
#include "kernels/qmatmul_internal.h"

namespace qs::kernels {

namespace qdetail {

std::vector<int32_t> llm_int8_outlier_columns(const Int8Args& a) {
  std::vector<int32_t> cols;
  if (!(a.outlier_threshold > 0)) return cols;
  std::vector<char> outlier(static_cast<size_t>(a.K), 0);
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    for (int64_t k = 0; k < a.K; ++k) outlier[k] |= static_cast<char>(std::fabs(x[k]) > a.outlier_threshold);
  }
  for (int64_t k = 0; k < a.K; ++k)
    if (outlier[k]) cols.push_back(static_cast<int32_t>(k));
  return cols;
}

void llm_int8_finish(const Int8Args& a, const std::vector<int32_t>& cols, int64_t m0, int64_t m1, int64_t n0,
                     int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = a.w + n * a.K;
    const float s = a.w_scale[n];
    const float b = a.bias ? a.bias[n] : 0.0f;
    for (int64_t m = m0; m < m1; ++m) {
      const float* x = a.x + m * a.K;
      float& y = a.y[m * a.N + n];
      if (a.outlier_threshold > 0) {
        float f = 0;
        for (int32_t k : cols) f = std::fma(x[k], static_cast<float>(w[k]) * s, f);
        y += f;
      }
      y += b;
    }
  }
}

float fp8_row_scale(const Fp8Args& a, const float* x_row) {
  switch (a.act) {
    case Fp8Args::Act::Bf16:
      return 1.0f;
    case Fp8Args::Act::StaticPerTensor:
      return a.static_x_scale;
    default: {
      float amax = 0;
      for (int64_t k = 0; k < a.K; ++k) amax = std::max(amax, std::fabs(x_row[k]));
      return std::max(amax / formats::kFp8E4M3Max, formats::kFp8MinTokenScale);
    }
  }
}

}  // namespace qdetail

namespace {

// Rows of x up to which the GEMV (W streamed once, decoded in registers for all rows) beats
// the GEMM (W decoded once per panel into the bf16/int8 microkernel's layout). Measured on
// Zen 4 with bench/qmatmul_bench.cpp (qmatmul_path/*, Llama-3.2-1B shapes, W cold).
constexpr int64_t kWeightOnlyGemvMaxRows = 16;
constexpr int64_t kFp8GemvMaxRows = 16;
constexpr int64_t kInt8GemvMaxRows = 16;
constexpr int64_t kGgufGemvMaxRows = 16;

// Tiny products are not worth waking the other threads for (as in matmul).
ThreadPool& pool_for(int64_t M, int64_t N, int64_t K, ThreadPool& pool) {
  constexpr int64_t kSerialMacs = int64_t{1} << 15;
  static ThreadPool serial(1);
  return M * N * K < kSerialMacs ? serial : pool;
}

bool use_gemm(MatmulPath path, int64_t M, int64_t gemv_max_rows) {
  return path == MatmulPath::Gemm || (path == MatmulPath::Auto && M > gemv_max_rows);
}

// Shapes and pointers common to every kind; returns false when there is nothing to compute
// beyond y = bias (M or N zero, or K zero).
template <class Args>
bool check_common(const Args& a, const char* what) {
  require(a.M >= 0 && a.N >= 0 && a.K >= 0, what, ": negative shape M=", a.M, " N=", a.N, " K=", a.K);
  if (a.M == 0 || a.N == 0) return false;
  require(a.y != nullptr, what, ": y is null");
  if (a.K == 0) {
    for (int64_t m = 0; m < a.M; ++m)
      for (int64_t n = 0; n < a.N; ++n) a.y[m * a.N + n] = a.bias ? a.bias[n] : 0.0f;
    return false;
  }
  require(a.x != nullptr, what, ": x is null");
  return true;
}

}  // namespace

void matmul_weight_only(const WeightOnlyArgs& a, ThreadPool& pool, MatmulPath path) {
  require(a.bits == 3 || a.bits == 4 || a.bits == 8, "matmul_weight_only: bits must be 3, 4 or 8, got ", a.bits);
  require(!a.lut || a.bits == 4, "matmul_weight_only: a lookup table needs 4-bit codes, got ", a.bits, " bits");
  if (!check_common(a, "matmul_weight_only")) return;
  require(a.codes && a.scales && (a.bits != 3 || a.codes_hi), "matmul_weight_only: codes or scales are null");
  require(a.group > 0 && (a.flat_groups || a.K % a.group == 0), "matmul_weight_only: group ", a.group,
          " does not divide K=", a.K);
  // Flat blocks equal per-row groups when the group divides K; otherwise blocks straddle rows
  // (only on odd toy shapes) and the reference runs as is.
  if (a.flat_groups && a.K % a.group != 0) return matmul_weight_only_reference(a);
  ThreadPool& p = pool_for(a.M, a.N, a.K, pool);
  const bool gemm = use_gemm(path, a.M, kWeightOnlyGemvMaxRows);
  if (use_avx512_bf16() && qdetail::weight_only_groups_per_block(a) > 0) return qdetail::weight_only_avx512(a, p, gemm);
#if QS_HAVE_X86
  if (simd_level() >= SimdLevel::Avx2 && qdetail::weight_only_avx2_supported(a))
    return qdetail::weight_only_avx2(a, p, gemm);
#endif
  qdetail::weight_only_portable(a, p, simd_level() >= SimdLevel::Avx2);
}

void matmul_int8(const Int8Args& a, ThreadPool& pool, MatmulPath path) {
  if (!check_common(a, "matmul_int8")) return;
  require(a.w && a.w_scale, "matmul_int8: w or w_scale is null");
  ThreadPool& p = pool_for(a.M, a.N, a.K, pool);
  const bool gemm = use_gemm(path, a.M, kInt8GemvMaxRows);
  if (use_avx512_vnni() && a.K <= qdetail::kInt8MaxK) return qdetail::int8_avx512(a, p, gemm);
  if (simd_level() >= SimdLevel::Avx2 && qdetail::int8_avx2_supported(a)) return qdetail::int8_avx2(a, p, gemm);
  qdetail::int8_portable(a, p, simd_level() >= SimdLevel::Avx2);
}

void matmul_fp8(const Fp8Args& a, ThreadPool& pool, MatmulPath path) {
  if (!check_common(a, "matmul_fp8")) return;
  require(a.w && a.w_scale, "matmul_fp8: w or w_scale is null");
  require(a.act != Fp8Args::Act::StaticPerTensor || (a.static_x_scale > 0 && std::isfinite(a.static_x_scale)),
          "matmul_fp8: a static activation scale must be finite and > 0, got ", a.static_x_scale);
  ThreadPool& p = pool_for(a.M, a.N, a.K, pool);
  const bool gemm = use_gemm(path, a.M, kFp8GemvMaxRows);
  if (use_avx512_bf16()) return qdetail::fp8_avx512(a, p, gemm);
  if (simd_level() >= SimdLevel::Avx2) return qdetail::fp8_avx2(a, p, gemm);
  qdetail::fp8_portable(a, p, simd_level() >= SimdLevel::Avx2);
}

void matmul_gguf(const GgufArgs& a, ThreadPool& pool, MatmulPath path) {
  if (!check_common(a, "matmul_gguf")) return;
  require(a.K % 32 == 0, "matmul_gguf: K must be a multiple of 32 (GGUF blocks), got ", a.K);
  require(a.blocks != nullptr, "matmul_gguf: blocks are null");
  ThreadPool& p = pool_for(a.M, a.N, a.K, pool);
  const bool gemm = use_gemm(path, a.M, kGgufGemvMaxRows);
  if (use_avx512_vnni()) return qdetail::gguf_avx512(a, p, gemm);
  if (simd_level() >= SimdLevel::Avx2) return qdetail::gguf_avx2(a, p, gemm);
  qdetail::gguf_portable(a, p, simd_level() >= SimdLevel::Avx2);
}

void matmul_weight_only(const WeightOnlyArgs& a, ThreadPool& pool) { matmul_weight_only(a, pool, MatmulPath::Auto); }
void matmul_int8(const Int8Args& a, ThreadPool& pool) { matmul_int8(a, pool, MatmulPath::Auto); }
void matmul_fp8(const Fp8Args& a, ThreadPool& pool) { matmul_fp8(a, pool, MatmulPath::Auto); }
void matmul_gguf(const GgufArgs& a, ThreadPool& pool) { matmul_gguf(a, pool, MatmulPath::Auto); }

}  // namespace qs::kernels
