// ggml tensor types as GGUF files store them: the type ids, their block sizes and byte sizes
// (ggml.h / ggml-common.h), and row dequantizers exact to ggml's reference C
// (ggml-quants.c dequantize_row_*; ggml_fp16_to_fp32 / ggml_bf16_to_fp32 for F16 / BF16).
//
// A row of n values (n a multiple of the type's block size) is n / block_size blocks. Layouts
// (little-endian; "half" = IEEE binary16 bits, decoded exactly):
//   Q4_1  (32, 20 B): half d, half m, u8 qs[16]          x = nibble * d + m
//   Q5_0  (32, 22 B): half d, u8 qh[4], u8 qs[16]        x = (nibble | high bit << 4) - 16) * d
//   Q5_1  (32, 24 B): half d, half m, u8 qh[4], u8 qs[16] x = (nibble | high bit << 4) * d + m
//       (element j < 16: low nibble of qs[j], high bit = bit j of qh; element j + 16: high
//        nibble of qs[j], high bit = bit j + 16)
//   Q2_K (256, 84 B): u8 scales[16], u8 qs[64], half d, half dmin
//       16 groups of 16; group scale = d * (scales & 15), group min = dmin * (scales >> 4);
//       x = scale * q - min with 2-bit q
//   Q3_K (256, 110 B): u8 hmask[32], u8 qs[64], u8 scales[12], half d
//       16 signed 6-bit scales (packed 4 + 2 bits, minus 32); x = d * scale * (q - 4 if the
//       hmask bit is clear else q) with 2-bit q
//   Q4_K (256, 144 B): half d, half dmin, u8 scales[12], u8 qs[128]
//       8 groups of 32 with 6-bit scale and min (packed, get_scale_min_k4); x = d*sc * q - dmin*m
//   Q5_K (256, 176 B): half d, half dmin, u8 scales[12], u8 qh[32], u8 qs[128]  (as Q4_K, 5-bit q)
//   Q6_K (256, 210 B): u8 ql[128], u8 qh[64], i8 scales[16], half d
//       x = d * scale * (6-bit q - 32), evaluated as (d * scale) * q like the C code
// Q8_0 and Q4_0 are in gguf_blocks.h (with ggml's quantizers). Products and sums are f32 and
// rounded one operation at a time, as the C code compiles without FMA contraction on x86-64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qs::formats {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

// The type of a ggml type id; nullopt for ids ggml never assigned or has retired (4, 5, 31-33,
// 36-38) and ids past MXFP4 (39).
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
// ggml's name: "F32", "Q4_K", "IQ2_XXS", "BF16", ...
std::string_view ggml_type_name(GgmlType t);
// Case-insensitive name lookup ("q6_k" -> Q6_K).
std::optional<GgmlType> ggml_type_from_name(std::string_view name);
// Values per block (1 for plain types) and bytes per block.
int64_t ggml_block_size(GgmlType t);
size_t ggml_type_size(GgmlType t);
// Bytes of a row of n values; n must be a multiple of the block size.
size_t ggml_row_size(GgmlType t, int64_t n);
// True for the types dequantize_row handles: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool ggml_can_dequantize(GgmlType t);

// Dequantizes one row of n values (ggml_row_size(t, n) bytes at src, any alignment) into
// y[0..n). Throws qs::Error for a type it cannot decode or n not a multiple of the block size.
void dequantize_row(GgmlType t, const void* src, float* y, int64_t n);

// The per-type rows (n a multiple of the block size; not checked).
void dequantize_row_q4_1(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q5_0(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q5_1(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q2_k(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q3_k(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q4_k(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q5_k(const uint8_t* blocks, float* y, int64_t n);
void dequantize_row_q6_k(const uint8_t* blocks, float* y, int64_t n);

}  // namespace qs::formats
