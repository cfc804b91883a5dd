#include "formats/mx.h"

#include <cmath>

#include "core/error.h"
#include "formats/fp8.h"
#include "formats/layout.h"

namespace qs::formats {

namespace {

constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Decodes `count` packed elements (low nibble first) times `scale`.
void decode_packed(const uint8_t* packed, int64_t count, float scale, float* out) {
  for (int64_t j = 0; j < count / 2; ++j) {
    out[2 * j] = kE2M1Values[packed[j] & 15] * scale;
    out[2 * j + 1] = kE2M1Values[packed[j] >> 4] * scale;
  }
}

// Packs codes[0..count) two per byte, low nibble first.
void pack_low_first(const uint8_t* codes, int64_t count, uint8_t* out) {
  for (int64_t i = 0; i < count; i += 2) out[i >> 1] = static_cast<uint8_t>(codes[i] | (codes[i + 1] << 4));
}

float block_amax(const float* x, int64_t n, bool* non_finite) {
  float amax = 0.0f;
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    bad |= !std::isfinite(a);
    amax = a > amax ? a : amax;
  }
  if (non_finite) *non_finite = bad;
  return amax;
}

}  // namespace

float e2m1_to_f32(uint8_t code) { return kE2M1Values[code & 15]; }

uint8_t f32_to_e2m1(float x) {
  const float a = std::fabs(x);
  // Rank among the 8 magnitudes with ties to the even code (codes 0, 2, 4, 6 are even).
  const int rank = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  return static_cast<uint8_t>((std::signbit(x) ? 8 : 0) | rank);  // NaN: all comparisons false
}

float e8m0_to_f32(uint8_t code) {
  if (code == kE8M0NaN) return std::nanf("");
  return std::ldexp(1.0f, static_cast<int>(code) - 127);
}

MxFp4Matrix quantize_mxfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  check_matrix(n, k, w.size(), name);
  const int64_t blocks = groups_per_row(k, kMxBlock, name, "MXFP4 block size");
  MxFp4Matrix q;
  q.rows = n;
  q.cols = k;
  q.packed.resize(w.size() / 2);
  q.scales.resize(n * blocks);
  uint8_t codes[kMxBlock];
  for (int64_t b = 0; b < n * blocks; ++b) {
    const float* x = w.data() + b * kMxBlock;
    bool non_finite = false;
    const float amax = block_amax(x, kMxBlock, &non_finite);
    if (non_finite) {
      q.scales[b] = kE8M0NaN;
      for (int64_t i = 0; i < kMxBlock; ++i) codes[i] = 0;
    } else if (amax == 0.0f) {
      q.scales[b] = 0;
      for (int64_t i = 0; i < kMxBlock; ++i) codes[i] = f32_to_e2m1(x[i]);  // keeps the sign of -0
    } else {
      int exp;
      std::frexp(amax, &exp);  // amax = m * 2^exp with m in [0.5, 1): floor(log2(amax)) = exp - 1
      int shared = exp - 1 - 2;
      shared = shared < -127 ? -127 : (shared > 127 ? 127 : shared);
      q.scales[b] = static_cast<uint8_t>(shared + 127);
      // x / 2^shared as a product with 2^-shared (a normal f32 for shared in [-127, 125]):
      // exact whenever the result is normal; smaller results round to 0 anyway.
      const float inv = std::ldexp(1.0f, -shared);
      for (int64_t i = 0; i < kMxBlock; ++i) codes[i] = f32_to_e2m1(x[i] * inv);
    }
    pack_low_first(codes, kMxBlock, q.packed.data() + b * (kMxBlock / 2));
  }
  return q;
}

void dequantize_mxfp4(const MxFp4Matrix& q, std::span<float> out) {
  require(static_cast<int64_t>(out.size()) == q.rows * q.cols, "dequantize_mxfp4: output has ", out.size(),
          " values, expected ", q.rows * q.cols);
  const int64_t total = q.rows * q.cols;
  for (int64_t b = 0; b < total / kMxBlock; ++b) {
    decode_packed(q.packed.data() + b * (kMxBlock / 2), kMxBlock, e8m0_to_f32(q.scales[b]), out.data() + b * kMxBlock);
  }
}

std::vector<float> fake_quant_mxfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  MxFp4Matrix q = quantize_mxfp4(w, n, k, name);
  std::vector<float> out(w.size());
  dequantize_mxfp4(q, out);
  return out;
}

NvFp4Matrix quantize_nvfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  check_matrix(n, k, w.size(), name);
  const int64_t blocks = groups_per_row(k, kNvFp4Block, name, "NVFP4 block size");
  NvFp4Matrix q;
  q.rows = n;
  q.cols = k;
  q.packed.resize(w.size() / 2);
  q.block_scales.resize(n * blocks);
  bool non_finite = false;
  const float amax = block_amax(w.data(), static_cast<int64_t>(w.size()), &non_finite);
  require(!non_finite, "layer ", quote(name), " has a non-finite value; cannot derive an NVFP4 global scale");
  const float g = amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f;
  q.global_scale = g;
  const float six_g = 6.0f * g;
  uint8_t codes[kNvFp4Block];
  for (int64_t b = 0; b < n * blocks; ++b) {
    const float* x = w.data() + b * kNvFp4Block;
    float s = block_amax(x, kNvFp4Block, nullptr) / six_g;
    if (s == 0.0f) s = 1.0f;  // ModelOpt: an all-zero block gets scale 1
    const uint8_t s8 = f32_to_fp8_e4m3(s);
    q.block_scales[b] = s8;
    const float divisor = fp8_e4m3_to_f32(s8) * g;
    for (int64_t i = 0; i < kNvFp4Block; ++i) codes[i] = divisor > 0.0f ? f32_to_e2m1(x[i] / divisor) : 0;
    pack_low_first(codes, kNvFp4Block, q.packed.data() + b * (kNvFp4Block / 2));
  }
  return q;
}

void dequantize_nvfp4(const NvFp4Matrix& q, std::span<float> out) {
  require(static_cast<int64_t>(out.size()) == q.rows * q.cols, "dequantize_nvfp4: output has ", out.size(),
          " values, expected ", q.rows * q.cols);
  const int64_t total = q.rows * q.cols;
  for (int64_t b = 0; b < total / kNvFp4Block; ++b) {
    const float scale = fp8_e4m3_to_f32(q.block_scales[b]) * q.global_scale;
    decode_packed(q.packed.data() + b * (kNvFp4Block / 2), kNvFp4Block, scale, out.data() + b * kNvFp4Block);
  }
}

std::vector<float> fake_quant_nvfp4(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  NvFp4Matrix q = quantize_nvfp4(w, n, k, name);
  std::vector<float> out(w.size());
  dequantize_nvfp4(q, out);
  return out;
}

}  // namespace qs::formats
