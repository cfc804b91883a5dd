// bitsandbytes 4-bit weights (QLoRA's NF4 and bitsandbytes' FP4), as bitsandbytes'
// quantize_4bit / dequantize_4bit compute them on CUDA (functional.py, kQuantizeBlockwise,
// dQuantizeNF4, dQuantizeFP4 in csrc/kernels.cu).
//
// Layout. The weight W [N, K] is flattened row-major and cut into blocks of `blocksize`
// (default 64) consecutive values (the last block may be partial). Per block:
//   absmax = max |x| (f32);  codes = tree(x * (1.0f / absmax))  (f32 product)
// `tree` compares the normalized value against fixed f32 thresholds with strict `>`, so a
// value exactly on a threshold takes the lower code (bitsandbytes' ties), and NaN (an
// all-zero block gives 0 * inf) takes code 0. Two codes per byte: element 2i in the HIGH
// nibble, element 2i+1 in the low nibble (bitsandbytes' order). Dequantization:
//   x_hat = codebook[code] * absmax  (f32)
//  - NF4 codebook: QLoRA's 16 normal-float values (functional.get_4bit_type("nf4")); the
//    thresholds are the f32 midpoints of adjacent values (the constants of dQuantizeNF4).
//  - FP4 codebook: bitsandbytes' E2M1 variant {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 with a sign
//    bit (code 8..15 negative); the thresholds are dQuantizeFP4's literal constants, which
//    are not all exact midpoints (0.583333f, 0.00260417f): they are kept as published.
//
// Double quantization (compress_statistics=True, bitsandbytes' "nested" state):
//   offset = mean(absmax) (f32; computed here in double then rounded, bitsandbytes' CUDA
//   reduction may differ in the last bit), then absmax - offset is quantized blockwise to 8
//   bits with blocksize 256 and the signed dynamic map (create_dynamic_map(signed=True)):
//   per 256-block absmax2 = max |y|, code = dynamic_quantize(y * (1.0f / absmax2)), a binary
//   search with midpoint rounding as in bitsandbytes' dQuantize. The 4-bit codes are computed
//   from the exact absmax; the dequantizer uses absmax_hat = map[code] * absmax2 + offset.
//
// Fidelity to bitsandbytes: this follows its CUDA kernels, which produced nearly all published
// bnb checkpoints, read with IEEE f32 arithmetic. bitsandbytes compiles them with
// --use_fast_math, so its 1.0f / absmax is the hardware's approximate reciprocal (within 1
// ulp); a normalized value within an ulp or so of a threshold can get the neighbouring code
// on a GPU. Its newer pure-PyTorch CPU path divides instead and picks the nearest codebook
// entry by argmin, which differs at FP4's off-midpoint thresholds and at exact ties.
//
// The dynamic map: for i = 0..6, the 2^i means of adjacent points of
// linspace(0.1, 1, 2^i + 1) times 10^(i-6), with both signs, plus 0 and 1, sorted (256
// values). bitsandbytes evaluates it with torch f32 linspace, whose last bit depends on
// torch's vectorization; here every entry is the exactly rounded f32 of the defining formula
// (within 2 ulp of torch's, see tests). Checkpoints carry the map used ("nested_quant_map").
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qs::formats {

enum class Bnb4Type : uint8_t { NF4, FP4 };

const std::array<float, 16>& bnb4_codebook(Bnb4Type type);
// Code of a normalized value (x / absmax, nominally in [-1, 1]).
uint8_t bnb_nf4_code(float normalized);
uint8_t bnb_fp4_code(float normalized);
inline uint8_t bnb4_code(Bnb4Type t, float normalized) {
  return t == Bnb4Type::NF4 ? bnb_nf4_code(normalized) : bnb_fp4_code(normalized);
}
// The 15 sorted thresholds of the NF4 tree / the 7 magnitude thresholds of the FP4 tree.
const std::array<float, 15>& bnb_nf4_thresholds();
const std::array<float, 7>& bnb_fp4_magnitude_thresholds();

// bitsandbytes' signed dynamic 8-bit map (256 sorted values in [-1, 1]).
const std::array<float, 256>& bnb_dynamic_map();
// Nearest code of a normalized value under `map` as bitsandbytes' dQuantize decides.
uint8_t bnb_dynamic_code(float normalized, const std::array<float, 256>& map);

// 8-bit blockwise quantization (bitsandbytes quantize_blockwise with the dynamic map).
struct Bnb8Blockwise {
  int64_t blocksize = 256;
  std::vector<uint8_t> codes;  // one per input value
  std::vector<float> absmax;   // [ceil(n / blocksize)]
};
Bnb8Blockwise bnb_quantize_blockwise8(std::span<const float> x, int64_t blocksize);
void bnb_dequantize_blockwise8(const Bnb8Blockwise& q, std::span<float> out);

struct Bnb4Matrix {
  Bnb4Type type = Bnb4Type::NF4;
  int64_t rows = 0, cols = 0;
  int64_t blocksize = 64;
  std::vector<uint8_t> packed;  // [ceil(rows * cols / 2)], high nibble first
  std::vector<float> absmax;    // [n_blocks] when not nested
  bool nested = false;          // compress_statistics
  float nested_offset = 0.0f;
  Bnb8Blockwise nested_absmax;  // codes [n_blocks], absmax [ceil(n_blocks / 256)]

  int64_t numel() const { return rows * cols; }
  int64_t n_blocks() const { return (numel() + blocksize - 1) / blocksize; }
  uint8_t code(int64_t i) const { return (i & 1) ? (packed[i >> 1] & 0x0f) : (packed[i >> 1] >> 4); }
};

// blocksize: a power of two in [32, 4096] (bitsandbytes uses 64 for weights).
Bnb4Matrix quantize_bnb4(std::span<const float> w, int64_t n, int64_t k, Bnb4Type type, bool compress_statistics,
                         std::string_view name, int64_t blocksize = 64);
// The per-block absmax the dequantizer uses (decoded from the nested state when nested).
std::vector<float> bnb4_block_absmax(const Bnb4Matrix& q);
void dequantize_bnb4(const Bnb4Matrix& q, std::span<float> out);
std::vector<float> fake_quant_bnb4(std::span<const float> w, int64_t n, int64_t k, Bnb4Type type,
                                   bool compress_statistics, std::string_view name, int64_t blocksize = 64);

}  // namespace qs::formats
