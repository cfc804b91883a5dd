// Row-wise and element-wise operations of a transformer block, all on f32 activations.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace qs::kernels {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w[:]  for r < rows. y may alias x.
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);

// Rotary position embedding applied in place to x[t, h, :] (rows of head_dim values, n_heads
// per token). cos/sin: [n_tokens, head_dim/2] tables for each token's position.
// Two pairings exist in the wild: HF "rotate_half" pairs (i, i + d/2); Meta/llama2.c pairs
// (2i, 2i + 1). Both are supported so checkpoints run as shipped.
enum class RopeStyle { Half, Interleaved };
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin, RopeStyle style);

// Numerically stable in-place softmax of x[0..n) (the sum of exponentials is kept in double, so
// every probability is within a few f32 ulps even over a 150k vocabulary).
void softmax(float* x, int64_t n);
// log(sum(exp(x))) computed stably (sum in double); -inf for n == 0.
float log_sum_exp(const float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]   (SwiGLU), n elements. out may alias gate.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

// Bulk conversions (vectorized where possible, exact as core/dtype.h defines them).
void bf16_to_f32(const uint16_t* in, float* out, int64_t n);
void f32_to_bf16(const float* in, uint16_t* out, int64_t n);
void f16_to_f32(const uint16_t* in, float* out, int64_t n);

// Causal attention of new tokens of one sequence against its KV cache.
//  q:   [n_new, n_heads, head_dim], tokens at positions pos0 .. pos0 + n_new - 1
//  k,v: [n_kv_heads, kv_stride] per layer: position p of kv head g is at k + g*kv_stride + p*head_dim;
//       positions 0 .. pos0 + n_new - 1 are filled
//  out: [n_new, n_heads * head_dim]
// Query head h reads kv head h / (n_heads / n_kv_heads) (grouped-query attention).
struct AttentionArgs {
  const float* q = nullptr;
  int64_t n_new = 0, pos0 = 0;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t kv_stride = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0;
  float* out = nullptr;
};
// Blocked (flash-attention style, online softmax) and parallel over KV heads, query blocks and,
// for decode, key chunks; equal to the reference up to f32 rounding.
void attention(const AttentionArgs& a, ThreadPool& pool);
void attention_reference(const AttentionArgs& a);

}  // namespace qs::kernels
