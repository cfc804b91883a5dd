// FP8 number formats as used for LLM weights and activations (OCP 8-bit floating point spec
// v1.0, "OFP8"; PyTorch torch.float8_e4m3fn / torch.float8_e5m2):
//
//   E4M3 ("e4m3fn"): 1 sign, 4 exponent bits (bias 7), 3 mantissa bits. No infinities; only
//     S.1111.111 (0x7f / 0xff) is NaN, so the largest finite value is 1.75 * 2^8 = 448.
//     Subnormals: exponent field 0, value = m/8 * 2^-6 (smallest 2^-9).
//   E5M2: 1 sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like: exponent 31 is
//     Inf (mantissa 0) or NaN; largest finite 1.75 * 2^15 = 57344; smallest subnormal 2^-16.
//
// Encoding is exact round-to-nearest-even. Finite values beyond the largest finite number
// saturate to +-max (vLLM / llm-compressor clamp to +-448 before casting, which is the same);
// for E5M2 saturation is optional (without it, overflow gives Inf as a plain cast does).
// NaN encodes as the format's NaN with the input's sign.
//
// Scaled FP8 tensors (what compressed-tensors "float-quantized" checkpoints hold and vLLM
// runs): W ~= decode(code) * scale, with scale = amax / 448 (E4M3) or amax / 57344 (E5M2),
// per tensor or per output channel (row). Codes are computed as clamp(w / scale) -> encode,
// scales kept in f32. An all-zero tensor/row gets scale 1 (its codes are all 0 either way).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qs::formats {

enum class Fp8Format : uint8_t { E4M3, E5M2 };

constexpr float kFp8E4M3Max = 448.0f;
constexpr float kFp8E5M2Max = 57344.0f;
inline float fp8_max(Fp8Format f) { return f == Fp8Format::E4M3 ? kFp8E4M3Max : kFp8E5M2Max; }

float fp8_e4m3_to_f32(uint8_t code);
float fp8_e5m2_to_f32(uint8_t code);
// Round to nearest even; finite overflow and +-Inf saturate to +-448; NaN -> 0x7f | sign.
uint8_t f32_to_fp8_e4m3(float x);
// Round to nearest even; with `saturate`, finite overflow and +-Inf give +-57344, else
// values that round past 57344 give +-Inf (a plain cast). NaN -> 0x7f | sign.
uint8_t f32_to_fp8_e5m2(float x, bool saturate = true);

inline float fp8_to_f32(Fp8Format f, uint8_t code) {
  return f == Fp8Format::E4M3 ? fp8_e4m3_to_f32(code) : fp8_e5m2_to_f32(code);
}
inline uint8_t f32_to_fp8(Fp8Format f, float x) {
  return f == Fp8Format::E4M3 ? f32_to_fp8_e4m3(x) : f32_to_fp8_e5m2(x, true);
}

// Bulk: out[i] = encode(x[i] / scale), saturating. `scale` must be finite and > 0.
void encode_fp8_scaled(Fp8Format f, std::span<const float> x, float scale, std::span<uint8_t> out);
// Bulk: out[i] = decode(code[i]) * scale.
void decode_fp8_scaled(Fp8Format f, std::span<const uint8_t> codes, float scale, std::span<float> out);

enum class Fp8Granularity : uint8_t {
  PerTensor,   // one scale for the whole matrix
  PerChannel,  // one scale per output channel (row of W); for activations: per token
};

// An FP8-quantized matrix [rows, cols]: W[r, c] ~= decode(codes[r * cols + c]) * scale(r).
struct Fp8Matrix {
  Fp8Format format = Fp8Format::E4M3;
  Fp8Granularity granularity = Fp8Granularity::PerTensor;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;  // [rows, cols]
  std::vector<float> scales;   // [1] per tensor, [rows] per channel
  float scale_of_row(int64_t r) const { return granularity == Fp8Granularity::PerTensor ? scales[0] : scales[r]; }
};

// Quantizes W [n, k] with scale = amax / fp8_max (amax over the tensor or over each row).
Fp8Matrix quantize_fp8(std::span<const float> w, int64_t n, int64_t k, Fp8Format format,
                       Fp8Granularity granularity, std::string_view name);
// W_hat [rows, cols] = decode(codes) * scale.
void dequantize_fp8(const Fp8Matrix& q, std::span<float> out);
// Fake quantization (the reference path of the FP8 scheme): dequantize(quantize(W)).
std::vector<float> fake_quant_fp8(std::span<const float> w, int64_t n, int64_t k, Fp8Format format,
                                  Fp8Granularity granularity, std::string_view name);

// Dynamic per-token activation quantization (vLLM's dynamic_per_token_scaled_fp8_quant):
// scale = max(amax(row) / 448, 1 / (448 * 512)), codes = encode(x / scale). Returns the scale.
float quantize_fp8_row_dynamic(std::span<const float> row, std::span<uint8_t> codes);
// Minimum per-token scale vLLM uses so that an all-zero (or tiny) row stays finite.
constexpr float kFp8MinTokenScale = 1.0f / (448.0f * 512.0f);

}  // namespace qs::formats
