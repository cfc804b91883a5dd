// GGUF / ggml block quantization types Q8_0 and Q4_0, byte-compatible with ggml
// (ggml-common.h) and bit-identical to ggml's reference quantizers quantize_row_q8_0_ref and
// quantize_row_q4_0_ref (ggml-quants.c), which llama-quantize uses for these types.
//
// A row of K values (K % 32 == 0) is a sequence of K / 32 blocks:
//   block_q8_0 { ggml_half d; int8_t  qs[32]; }  34 bytes, x[j] ~= qs[j] * d
//   block_q4_0 { ggml_half d; uint8_t qs[16]; }  18 bytes, qs[j] low nibble = element j,
//                                                high nibble = element j + 16,
//                                                x ~= (nibble - 8) * d
// ggml_half is IEEE binary16, little-endian (stored here as its uint16_t bits).
//
// Q8_0: amax = max |x|; d = amax / 127; id = d ? 1 / d : 0; qs = roundf(x * id) (half away from
//   zero); d is stored rounded to f16 (RNE) but the codes use the f32 d.
// Q4_0: max = the value with the largest |x| (the first one on ties, keeping its sign);
//   d = max / -8; id = d ? 1 / d : 0; q = min(15, (int8_t)(x * id + 8.5f)) (truncation).
//   ggml evaluates x * id + 8.5f either as two f32 roundings (x86-64 builds of ggml-base, which
//   get no FMA flags; Q4_0Rounding::Separate, the default) or as one fused multiply-add
//   (compilers that contract it, e.g. aarch64 builds; Q4_0Rounding::Fused). gguf-py's
//   quants.py notes the same ("Q4_0's reference rounding is cursed and depends on FMA").
// Dequantization: x = qs * f16_to_f32(d) (Q8_0), (nibble - 8) * f16_to_f32(d) (Q4_0), in f32.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qs::formats {

constexpr int64_t kGgmlBlock = 32;

struct BlockQ8_0 {
  uint16_t d;  // f16 bits
  int8_t qs[kGgmlBlock];
};
struct BlockQ4_0 {
  uint16_t d;  // f16 bits
  uint8_t qs[kGgmlBlock / 2];
};
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 is 34 bytes in ggml");
static_assert(sizeof(BlockQ4_0) == 18, "block_q4_0 is 18 bytes in ggml");

enum class Q4_0Rounding : uint8_t { Separate, Fused };

// One row of k values (k % 32 == 0) into k / 32 blocks.
void quantize_row_q8_0(std::span<const float> x, std::span<BlockQ8_0> y);
void dequantize_row_q8_0(std::span<const BlockQ8_0> x, std::span<float> y);
void quantize_row_q4_0(std::span<const float> x, std::span<BlockQ4_0> y, Q4_0Rounding rounding = Q4_0Rounding::Separate);
void dequantize_row_q4_0(std::span<const BlockQ4_0> x, std::span<float> y);

// Whole matrices W [n, k]: n * k / 32 blocks, row after row (the GGUF tensor data layout).
std::vector<BlockQ8_0> quantize_q8_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name);
std::vector<BlockQ4_0> quantize_q4_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name,
                                     Q4_0Rounding rounding = Q4_0Rounding::Separate);
std::vector<float> fake_quant_q8_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name);
std::vector<float> fake_quant_q4_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name,
                                   Q4_0Rounding rounding = Q4_0Rounding::Separate);

}  // namespace qs::formats
