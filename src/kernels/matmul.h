// Dense matrix multiplication in the layout of a Linear layer:
//   y[m, n] = sum_k x[m, k] * w[n, k]        (y = x W^T, W stored [N, K] row-major as in HF)
// Activations are f32; weights are f32, bf16 or f16 and are read in place (never repacked
// into a persistent copy, so memory-mapped weights stay shared with the page cache).
//
// Numerics contract:
//  - f32: f32 products and f32 accumulation (order unspecified).
//  - bf16: activations rounded to bf16 (round to nearest even), products exact, f32
//    accumulation: the semantics of AVX512_BF16 VDPBF16PS, which is used where the CPU has it;
//    elsewhere the same arithmetic is done with f32 FMA (exact products of bf16 values).
//  - f16: weights widened exactly to f32, f32 products and accumulation.
// M == 1 (decode) and small M run as memory-bound GEMV; larger M as blocked GEMM.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace qs::kernels {

struct MatmulArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;  // [M, ldx]
  int64_t ldx = 0;
  const void* w = nullptr;  // [N, ldw] in w_dtype
  int64_t ldw = 0;
  DType w_dtype = DType::F32;
  float* y = nullptr;  // [M, ldy], overwritten
  int64_t ldy = 0;
  const float* bias = nullptr;  // optional [N], added to every row
};

// Fast path (dispatches on CPU features and M). Parallel over `pool`.
void matmul(const MatmulArgs& a, ThreadPool& pool);

// Which algorithm runs: Auto picks GEMV for M <= matmul_gemv_max_rows() and GEMM above.
// Forcing one (tests, benchmarks) gives the same numbers up to f32 accumulation order.
enum class MatmulPath { Auto, Gemv, Gemm };
void matmul(const MatmulArgs& a, ThreadPool& pool, MatmulPath path);
int64_t matmul_gemv_max_rows(DType w_dtype);

// Straightforward single-threaded reference with the same numerics contract (tests).
void matmul_reference(const MatmulArgs& a);

}  // namespace qs::kernels
