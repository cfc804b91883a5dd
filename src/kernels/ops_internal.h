// Internals of ops (src/kernels only): the per-instruction-set versions ops.cpp dispatches to.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace qs::kernels::detail {

// Portable versions (ops.cpp): the references of the tests, and what runs below AVX2.
void rmsnorm_generic(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);
void rope_generic(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin,
                  RopeStyle style);
void softmax_generic(float* x, int64_t n);
float log_sum_exp_generic(const float* x, int64_t n);
void silu_mul_generic(const float* gate, const float* up, float* out, int64_t n);
void add_inplace_generic(float* x, const float* y, int64_t n);
void bf16_to_f32_generic(const uint16_t* in, float* out, int64_t n);
void f32_to_bf16_generic(const float* in, uint16_t* out, int64_t n);
void f16_to_f32_generic(const uint16_t* in, float* out, int64_t n);

// Attention rows [row0, row1) (row = t * n_heads + h) exactly as attention_reference does them.
void attention_rows_generic(const AttentionArgs& a, int64_t row0, int64_t row1);
// The blocked AVX-512 attention (attention_avx512.cpp).
void attention_avx512(const AttentionArgs& a, ThreadPool& pool);
// The same blocked attention for AVX2 + FMA (attention_avx2.cpp).
void attention_avx2(const AttentionArgs& a, ThreadPool& pool);

// AVX-512 versions (ops_avx512.cpp).
void rmsnorm_avx512(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);
void rope_avx512(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin,
                 RopeStyle style);
float max_avx512(const float* x, int64_t n);
void softmax_avx512(float* x, int64_t n);
float log_sum_exp_avx512(const float* x, int64_t n);
void silu_mul_avx512(const float* gate, const float* up, float* out, int64_t n);
void add_inplace_avx512(float* x, const float* y, int64_t n);
void bf16_to_f32_avx512(const uint16_t* in, float* out, int64_t n);
void f32_to_bf16_avx512(const float* in, uint16_t* out, int64_t n);
void f16_to_f32_avx512(const uint16_t* in, float* out, int64_t n);
// out[i] = exp(in[i]) with the vector exp the kernels use (for accuracy tests).
void exp_avx512(const float* in, float* out, int64_t n);

// AVX2 versions (ops_avx2.cpp).
void rmsnorm_avx2(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);
void rope_avx2(float* x, int64_t n_tokens, int n_heads, int head_dim, const float* cos, const float* sin,
               RopeStyle style);
float max_avx2(const float* x, int64_t n);
void softmax_avx2(float* x, int64_t n);
float log_sum_exp_avx2(const float* x, int64_t n);
void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t n);
void add_inplace_avx2(float* x, const float* y, int64_t n);
void bf16_to_f32_avx2(const uint16_t* in, float* out, int64_t n);
void f32_to_bf16_avx2(const float* in, uint16_t* out, int64_t n);
void f16_to_f32_avx2(const uint16_t* in, float* out, int64_t n);
void exp_avx2(const float* in, float* out, int64_t n);

}  // namespace qs::kernels::detail
