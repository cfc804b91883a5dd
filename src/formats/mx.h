// Microscaling 4-bit float formats: OCP MXFP4 and NVIDIA NVFP4. Both store FP4 E2M1 elements
// (1 sign, 2 exponent bits with bias 1, 1 mantissa bit; magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6;
// no Inf/NaN) with a shared scale per small block along K.
//
// E2M1 encoding: round to nearest even with saturation to +-6 (ties: 0.25 -> 0, 0.75 -> 1,
// 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4); the sign bit is the input's sign bit, so a
// small negative value becomes -0 (code 8), as compressed-tensors packs it. NaN encodes as 0.
// Packing (PyTorch float4_e2m1fn_x2, compressed-tensors, vLLM): two elements per byte, element
// 2i in the LOW nibble and 2i+1 in the high nibble; rows are [N, K/2] bytes.
//
// MXFP4 (OCP Microscaling Formats (MX) Specification v1.0, sections 5 and 6.3): blocks of 32,
// scale X = 2^e stored as E8M0 (code = e + 127, 0xFF = NaN), with
//     e = floor(log2(max |x|)) - 2        (2 = emax of E2M1, the exponent of 4 and 6)
// clamped to [-127, 127]; elements P_i = E2M1(x_i / X) (RNE, saturating: max/X < 8 rounds to
// 6). x_hat = P_i * X. A block whose values are all 0 gets code 0 (X = 2^-127). A block with a
// NaN or Inf gets the NaN scale 0xFF (the spec's rule) and zero elements; it decodes to NaN.
// (compressed-tensors' MXFP4 observer rounds amax up in bf16 before taking the exponent; this
// is the spec's floor rule.)
//
// NVFP4 (NVIDIA; TensorRT Model Optimizer's NVFP4QTensor, used by llm-compressor checkpoints):
// blocks of 16 along K, an FP8 E4M3 block scale and one f32 global scale per tensor:
//     g   = amax(W) / (6 * 448)                       (f32; g = 1 for an all-zero tensor)
//     s_b = E4M3(amax(block) / (6 * g))               (RNE; an all-zero block gets s_b = 1.0)
//     P_i = E2M1(x_i / (decode(s_b) * g))             x_hat = P_i * (decode(s_b) * g)
// A block so small relative to the tensor that s_b rounds to E4M3 zero (below 2^-10) gets zero
// elements (ModelOpt would divide by zero there).
// compressed-tensors stores the reciprocal global scale (weight_global_scale = 6 * 448 /
// amax); its f32 rounding can differ from 1 / g in the last bit.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qs::formats {

constexpr int64_t kMxBlock = 32;
constexpr int64_t kNvFp4Block = 16;

float e2m1_to_f32(uint8_t code);  // low 4 bits used
uint8_t f32_to_e2m1(float x);
float e8m0_to_f32(uint8_t code);  // 2^(code - 127); 0xFF is NaN
constexpr uint8_t kE8M0NaN = 0xFF;

struct MxFp4Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;  // [rows, cols / 2], low nibble first
  std::vector<uint8_t> scales;  // [rows, cols / 32] E8M0
  uint8_t code(int64_t i) const { return (i & 1) ? (packed[i >> 1] >> 4) : (packed[i >> 1] & 0x0f); }
};

struct NvFp4Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;        // [rows, cols / 2], low nibble first
  std::vector<uint8_t> block_scales;  // [rows, cols / 16] FP8 E4M3 codes
  float global_scale = 1.0f;          // g = amax / (6 * 448)
  uint8_t code(int64_t i) const { return (i & 1) ? (packed[i >> 1] >> 4) : (packed[i >> 1] & 0x0f); }
};

// K must be divisible by 32 (MXFP4) / 16 (NVFP4); the error names the layer.
MxFp4Matrix quantize_mxfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name);
void dequantize_mxfp4(const MxFp4Matrix& q, std::span<float> out);
std::vector<float> fake_quant_mxfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name);

NvFp4Matrix quantize_nvfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name);
void dequantize_nvfp4(const NvFp4Matrix& q, std::span<float> out);
std::vector<float> fake_quant_nvfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name);

}  // namespace qs::formats
