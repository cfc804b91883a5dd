// Packed layouts of integer-quantized weights in real checkpoints. Pure functions between an
// IntMatrix (codes [N, K] unsigned, scales and zeros [N, G], optional g_idx [K]; see
// int_quant.h) and the tensors each format stores. int32 words hold bit patterns (a word
// whose top field is >= 2^(b-1) reads as a negative int32, as in the PyTorch tensors).
//
// compressed-tensors "pack-quantized" (PackedQuantizationCompressor, pack_to_int32):
//   weight_packed      int32 [N, ceil(K / f)], f = 32 / b (integer division): value j of a
//                      word sits in bits b*j .. b*j+b-1; values are the signed codes plus
//                      2^(b-1) (= our unsigned codes); a partial last word is zero-padded.
//   weight_scale       [N, G] (G = 1 per channel; [1] per tensor).
//   weight_zero_point  asymmetric per-group/per-channel only: packed the same way along N,
//                      int32 [ceil(N / f), G], holding z (= signed zero + 2^(b-1)). For an
//                      asymmetric per-tensor scheme it is one unpacked signed value z - 2^(b-1).
//                      Symmetric schemes store none.
//   weight_shape       [N, K].
//
// AutoGPTQ (QuantLinear.pack for bits 2, 4, 8):
//   qweight  int32 [K * b / 32, N]: word (r, n) holds inputs k = r*f .. r*f+f-1 of output n,
//            input r*f + j in bits b*j .. b*j+b-1 (packed along K).
//   qzeros   int32 [G, N * b / 32]: packed along N the same way.
//            GptqFormat::V1 ("gptq", AutoGPTQ's historical checkpoints): the stored value is
//            z - 1 and readers add 1 back; a zero point of 0 cannot be stored (it would wrap to
//            2^b - 1 and read back as 2^b), so packing rejects it. GptqFormat::V2 ("gptq_v2",
//            GPTQModel) stores z itself.
//   scales   f16 [G, N];  g_idx int32 [K]: group of each input (act-order permutes it).
//
// AutoAWQ GEMM (WQLinear_GEMM, 4-bit only):
//   qweight  int32 [K, N / 8]: packed along N; word (k, c) holds outputs n = 8c .. 8c+7 in
//            AWQ's interleaved order: nibble i (bits 4i..4i+3) holds output 8c + order[i],
//            order = [0, 2, 4, 6, 1, 3, 5, 7].
//   qzeros   int32 [G, N / 8]: the zero points z, same packing and order.
//   scales   f16 [G, N].
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "formats/int_quant.h"

namespace qs::formats {

// Generic helpers: pack unsigned b-bit values of each row of [rows, cols] into int32 words
// (f = 32 / b values per word, value j of a word in bits b*j..), and back.
std::vector<int32_t> pack_rows_int32(std::span<const uint8_t> values, int64_t rows, int64_t cols, int bits);
std::vector<uint8_t> unpack_rows_int32(std::span<const int32_t> packed, int64_t rows, int64_t cols, int bits);

struct CompressedTensorsPacked {
  int bits = 4;
  bool symmetric = true;
  IntGranularity granularity = IntGranularity::PerGroup;
  int64_t group_size = 0;
  std::array<int64_t, 2> weight_shape{};   // [N, K]
  std::vector<int32_t> weight_packed;      // [N, ceil(K / f)]
  std::vector<float> weight_scale;         // [N, G] or [1]
  std::vector<int32_t> weight_zero_point;  // see above; empty when symmetric
};
CompressedTensorsPacked pack_compressed_tensors(const IntMatrix& q, std::string_view name);
IntMatrix unpack_compressed_tensors(const CompressedTensorsPacked& p, std::string_view name);

enum class GptqFormat : uint8_t { V1, V2 };

struct GptqPacked {
  int bits = 4;
  GptqFormat format = GptqFormat::V1;
  int64_t in_features = 0, out_features = 0, group_size = 0;  // K, N, g
  std::vector<int32_t> qweight;  // [K * bits / 32, N]
  std::vector<int32_t> qzeros;   // [G, N * bits / 32]
  std::vector<uint16_t> scales;  // f16 bits [G, N]
  std::vector<int32_t> g_idx;    // [K]
};
// Scales are rounded to f16 (quantize with ScaleDType::F16 to keep codes and scales exact).
GptqPacked pack_gptq(const IntMatrix& q, GptqFormat format, std::string_view name);
IntMatrix unpack_gptq(const GptqPacked& p, std::string_view name);

constexpr std::array<int, 8> kAwqPackOrder = {0, 2, 4, 6, 1, 3, 5, 7};

struct AwqPacked {
  int64_t in_features = 0, out_features = 0, group_size = 0;  // K, N, g
  std::vector<int32_t> qweight;  // [K, N / 8]
  std::vector<int32_t> qzeros;   // [G, N / 8]
  std::vector<uint16_t> scales;  // f16 bits [G, N]
};
AwqPacked pack_awq_gemm(const IntMatrix& q, std::string_view name);
IntMatrix unpack_awq_gemm(const AwqPacked& p, std::string_view name);

}  // namespace qs::formats
