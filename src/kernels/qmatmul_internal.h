// Internals of the low-bit kernels (src/kernels only): the implementations qmatmul.cpp
// dispatches to, and the pieces of the contracts they share.
//  - portable: plain C++ that keeps the exact numerics of the contracts (compiled twice: as is,
//    and for AVX2+FMA, where the compiler vectorizes the lane-parallel loops);
//  - avx2: AVX2+FMA kernels for Int8, GGUF and Fp8 (register tiles over W rows and x rows);
//  - avx512: AVX512-BF16 (WeightOnly, Fp8) and AVX512-VNNI (Int8, GGUF) kernels, GEMV for few
//    rows of x and blocked GEMM for many.
// All entry points take validated arguments with M, N, K > 0.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/qmatmul.h"

namespace qs::kernels::qdetail {

void weight_only_portable(const WeightOnlyArgs& a, ThreadPool& pool, bool avx2);
void int8_portable(const Int8Args& a, ThreadPool& pool, bool avx2);
void fp8_portable(const Fp8Args& a, ThreadPool& pool, bool avx2);
void gguf_portable(const GgufArgs& a, ThreadPool& pool, bool avx2);

// Groups of scales a 4-bit (64 weights), 3-bit (128) or 8-bit (32) decode block of the AVX-512
// WeightOnly kernels spans: 1, 2 or 4; 0 when the group size has no fast path (for example 48).
int weight_only_groups_per_block(const WeightOnlyArgs& a);
void weight_only_avx512(const WeightOnlyArgs& a, ThreadPool& pool, bool gemm);
void fp8_avx512(const Fp8Args& a, ThreadPool& pool, bool gemm);
// Int8 needs K <= kInt8MaxK: sums of (q_x + 128) * q_w stay within int32.
constexpr int64_t kInt8MaxK = 66000;
void int8_avx512(const Int8Args& a, ThreadPool& pool, bool gemm);
void gguf_avx512(const GgufArgs& a, ThreadPool& pool, bool gemm);
// AVX2 + FMA (no AVX-512): Int8 (sign trick into VPMADDUBSW), GGUF, Fp8 (e4m3 decoded in registers).
bool int8_avx2_supported(const Int8Args& a);  // K small enough for exact int32 sums
void int8_avx2(const Int8Args& a, ThreadPool& pool, bool gemm);
void gguf_avx2(const GgufArgs& a, ThreadPool& pool, bool gemm);
void fp8_avx2(const Fp8Args& a, ThreadPool& pool, bool gemm);

// AVX2 + FMA WeightOnly kernels (qweight_avx2.cpp): groups that span whole 32-weight units or
// the whole row, and 4-bit groups of 16.
bool weight_only_avx2_supported(const WeightOnlyArgs& a);
void weight_only_avx2(const WeightOnlyArgs& a, ThreadPool& pool, bool gemm);

// ---- Pieces of the contracts shared by the implementations ---------------------------------

// LLM.int8(): the columns k where some row of x has |x| > threshold, ascending (empty when the
// decomposition is off).
std::vector<int32_t> llm_int8_outlier_columns(const Int8Args& a);

// LLM.int8() f32 pass, then the bias, for outputs [m0, m1) x [n0, n1) that already hold the
// int8 part: y += sum over outlier columns k (ascending) of x[m, k] * (q_w[n, k] * s_n) (FMA
// chain, as the reference), then y += bias (or + 0).
void llm_int8_finish(const Int8Args& a, const std::vector<int32_t>& cols, int64_t m0, int64_t m1, int64_t n0,
                     int64_t n1);

// Per-row activation scale of Fp8 (1 for Act::Bf16).
float fp8_row_scale(const Fp8Args& a, const float* x_row);

}  // namespace qs::kernels::qdetail
