// Low-bit matrix multiplication: y = x W^T where W [N, K] is stored quantized and is never
// expanded into a full-precision copy. Each kernel decodes codes inside the dot products.
// Activations are f32 in and out; what happens to them inside is part of each contract.
//
// Storage layouts (kernel-internal; file formats are converted to these when loading):
//  - int8 codes: int8 [N, K] row-major.
//  - 4-bit codes: uint8 [N, ceil(K/2)]; byte j of a row holds k = 2j in its low nibble and
//    k = 2j + 1 in its high nibble.
//  - 3-bit codes: two planes per row: `lo` uint8 [N, ceil(K/4)] (k = 4j + i in bits 2i..2i+1)
//    and `hi` uint8 [N, ceil(K/8)] (k = 8j + i in bit i).
//    (Rows are padded to whole bytes; padding bits are zero and never read as weights.)
//  - scales f32 [N, K / group] (group = K: one per row).
//
// Arithmetic contracts ("A16" = 16-bit activations, as on GPUs with bf16 activations):
//  - WeightOnly (W8A16, W4A16, W3A16, NF4, FP4, MXFP4, NVFP4): w = value(code) * scale in f32,
//    rounded to bf16; x rounded to bf16; products exact, f32 accumulation (the dense bf16
//    path's numerics applied to the dequantized weight).
//  - Int8 (W8A8-INT8): per row m of x, s_m = max|x_m| / 127 (1 if the row is zero),
//    q = clamp(round_half_even(x / s_m), -127, 127); y = s_m * s_n * sum(q_x * q_w) with exact
//    int32 accumulation (vLLM's dynamic per-token symmetric int8). A static per-tensor
//    activation scale may be given instead.
//  - Fp8 (W8A8-FP8): per row m, s_m = max(max|x_m| / 448, 1 / (448 * 512)) (vLLM's rule),
//    q = e4m3(x / s_m) (round to nearest even, saturating at 448); y = s_m * s_n * sum of exact
//    products of the decoded e4m3 values with f32 accumulation (an FP8 tensor core's math). A
//    static per-tensor scale may be given; with no activation quantization (W8A16-FP8) x is
//    rounded to bf16 as in WeightOnly.
//  - GGUF Q8_0 / Q4_0: x is quantized to Q8_0 blocks of 32 exactly as llama.cpp's
//    quantize_row_q8_0 does; y = sum over blocks of d_w * d_x * (int dot product of the block),
//    as ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0 compute it (f32 block sums).
//  - LLM.int8(): columns k where any row of this x has |x| > threshold run in f32 against the
//    dequantized int8 weight columns (w = q * s_n); the other columns run as Int8 above.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/matmul.h"  // MatmulPath

namespace qs::kernels {

// Weight-only quantized W: codes of `bits` (3, 4 or 8) or 4-bit lookup codes.
struct WeightOnlyArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;  // [M, K]
  float* y = nullptr;        // [M, N]
  const float* bias = nullptr;
  int bits = 4;              // 3, 4 or 8
  const uint8_t* codes = nullptr;     // 8: int8 as uint8 bytes of q (unsigned code); 4: packed; 3: lo plane
  const uint8_t* codes_hi = nullptr;  // 3-bit high plane
  int64_t group = 0;                  // K, or a divisor of K
  const float* scales = nullptr;      // [N, K / group]
  // Value of a code before scaling: either an affine code (value = code - zero) with `zeros`
  // [N, K/group] (nullptr: symmetric, zero = 2^(bits-1)), or a 16-entry lookup table (4-bit).
  const uint8_t* zeros = nullptr;
  const float* lut = nullptr;  // 16 values (NF4, FP4, E2M1, ...) when not affine
  // bitsandbytes blocks run over the flattened matrix: scale of (n, k) is scales[(n*K + k) / group],
  // so a block may straddle two rows when K is not a multiple of the block size.
  bool flat_groups = false;
};
void matmul_weight_only(const WeightOnlyArgs& a, ThreadPool& pool);
void matmul_weight_only_reference(const WeightOnlyArgs& a);

struct Int8Args {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;
  float* y = nullptr;
  const float* bias = nullptr;
  const int8_t* w = nullptr;       // [N, K]
  const float* w_scale = nullptr;  // [N]
  const int32_t* w_row_sums = nullptr;  // optional [N]: sum of each row's codes (kernels may need it)
  float static_x_scale = 0;        // > 0: static per-tensor activation scale instead of per-token
  float outlier_threshold = 0;     // > 0: LLM.int8() decomposition
};
void matmul_int8(const Int8Args& a, ThreadPool& pool);
void matmul_int8_reference(const Int8Args& a);

struct Fp8Args {
  int64_t M = 0, N = 0, K = 0;
  const float* x = nullptr;
  float* y = nullptr;
  const float* bias = nullptr;
  const uint8_t* w = nullptr;      // e4m3 codes [N, K]
  const float* w_scale = nullptr;  // [N]
  enum class Act { Bf16, DynamicPerToken, StaticPerTensor } act = Act::DynamicPerToken;
  float static_x_scale = 0;
};
void matmul_fp8(const Fp8Args& a, ThreadPool& pool);
void matmul_fp8_reference(const Fp8Args& a);

struct GgufArgs {
  int64_t M = 0, N = 0, K = 0;  // K multiple of 32
  const float* x = nullptr;
  float* y = nullptr;
  const float* bias = nullptr;
  const void* blocks = nullptr;  // [N, K/32] block_q8_0 (34 bytes) or block_q4_0 (18 bytes)
  bool q4_0 = false;
};
void matmul_gguf(const GgufArgs& a, ThreadPool& pool);
void matmul_gguf_reference(const GgufArgs& a);

// The entry points above pick GEMV (few rows of x, decode) or GEMM (prefill) by M; forcing one
// (tests, benchmarks) gives the same contract with sums in another order.
void matmul_weight_only(const WeightOnlyArgs& a, ThreadPool& pool, MatmulPath path);
void matmul_int8(const Int8Args& a, ThreadPool& pool, MatmulPath path);
void matmul_fp8(const Fp8Args& a, ThreadPool& pool, MatmulPath path);
void matmul_gguf(const GgufArgs& a, ThreadPool& pool, MatmulPath path);

// Bytes per row of packed codes of `bits` (8, 4 or 3: the `lo` plane) and of the 3-bit `hi` plane.
inline int64_t code_row_bytes(int bits, int64_t K) { return bits == 8 ? K : bits == 4 ? (K + 1) / 2 : (K + 3) / 4; }
inline int64_t hi_plane_row_bytes(int64_t K) { return (K + 7) / 8; }

// Per-token int8 quantization used by Int8 (exposed for tests and for the activation studies).
float quantize_row_int8(const float* x, int64_t K, int8_t* q);

}  // namespace qs::kernels
