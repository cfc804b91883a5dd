// Element types of tensors as files store them, and exact scalar conversions between the
// 16-bit float formats and f32. Bulk, vectorized conversions live in kernels/convert.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace qs {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I8,
  U8,
  I16,
  I32,
  I64,
  U32,
  F8_E4M3,
  F8_E5M2,
  Bool,
};

// Size of one element in bytes.
size_t dtype_size(DType t);
// Canonical name as safetensors spells it ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype string; nullopt when unknown.
std::optional<DType> parse_dtype(std::string_view s);
// True for the dtypes qstudy runs a model from directly (F32, F16, BF16).
inline bool is_float_weight_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16 is the upper half of an IEEE f32.
inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// Round to nearest even, as PyTorch and vcvtneps2bf16 do; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE binary16 <-> f32, exact (round to nearest even on the way down, subnormals kept).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace qs
