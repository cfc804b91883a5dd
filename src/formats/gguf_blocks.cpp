#include "formats/gguf_blocks.h"

#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "formats/layout.h"

namespace qs::formats {

namespace {

// C roundf (half away from zero) for |v| < 2^31, without a libm call: truncate, then step
// away from zero when the exact remainder is at least one half.
inline int round_half_away(float v) {
  int q = static_cast<int>(v);
  const float rest = v - static_cast<float>(q);  // exact for |v| < 2^24; 0 beyond
  q += (rest >= 0.5f) - (rest <= -0.5f);
  return q;
}

void check_row(size_t values, size_t blocks, const char* what) {
  require(values % kGgmlBlock == 0, what, ": row length ", values, " is not a multiple of ", kGgmlBlock);
  require(values / kGgmlBlock == blocks, what, ": ", values, " values need ", values / kGgmlBlock,
          " blocks, got ", blocks);
}

void check_gguf_matrix(std::span<const float> w, int64_t n, int64_t k, std::string_view name, const char* type) {
  check_matrix(n, k, w.size(), name);
  require(k % kGgmlBlock == 0, type, " needs rows that are a multiple of ", kGgmlBlock, " values; input size ", k,
          " of layer ", quote(name), " is not");
}

}  // namespace

void quantize_row_q8_0(std::span<const float> x, std::span<BlockQ8_0> y) {
  check_row(x.size(), y.size(), "quantize_row_q8_0");
  for (size_t b = 0; b < y.size(); ++b) {
    const float* v = x.data() + b * kGgmlBlock;
    float amax = 0.0f;
    for (int j = 0; j < kGgmlBlock; ++j) amax = std::fmax(amax, std::fabs(v[j]));  // ggml's MAX
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kGgmlBlock; ++j) y[b].qs[j] = static_cast<int8_t>(round_half_away(v[j] * id));
  }
}

void dequantize_row_q8_0(std::span<const BlockQ8_0> x, std::span<float> y) {
  check_row(y.size(), x.size(), "dequantize_row_q8_0");
  for (size_t b = 0; b < x.size(); ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kGgmlBlock; ++j) y[b * kGgmlBlock + j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void quantize_row_q4_0(std::span<const float> x, std::span<BlockQ4_0> y, Q4_0Rounding rounding) {
  check_row(x.size(), y.size(), "quantize_row_q4_0");
  constexpr int half = kGgmlBlock / 2;
  for (size_t b = 0; b < y.size(); ++b) {
    const float* v = x.data() + b * kGgmlBlock;
    float amax = 0.0f, max = 0.0f;  // the first value of largest magnitude, with its sign
    for (int j = 0; j < kGgmlBlock; ++j) {
      if (amax < std::fabs(v[j])) {
        amax = std::fabs(v[j]);
        max = v[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    auto code = [&](float value) {
      const float shifted = rounding == Q4_0Rounding::Fused ? std::fmaf(value, id, 8.5f) : value * id + 8.5f;
      const int q = static_cast<int8_t>(shifted);  // truncation toward zero, as the C cast
      return static_cast<uint8_t>(q < 15 ? q : 15);
    };
    for (int j = 0; j < half; ++j) y[b].qs[j] = static_cast<uint8_t>(code(v[j]) | (code(v[j + half]) << 4));
  }
}

void dequantize_row_q4_0(std::span<const BlockQ4_0> x, std::span<float> y) {
  check_row(y.size(), x.size(), "dequantize_row_q4_0");
  constexpr int half = kGgmlBlock / 2;
  for (size_t b = 0; b < x.size(); ++b) {
    const float d = f16_to_f32(x[b].d);
    float* out = y.data() + b * kGgmlBlock;
    for (int j = 0; j < half; ++j) {
      out[j] = static_cast<float>((x[b].qs[j] & 0x0f) - 8) * d;
      out[j + half] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

std::vector<BlockQ8_0> quantize_q8_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  check_gguf_matrix(w, n, k, name, "Q8_0");
  std::vector<BlockQ8_0> blocks(w.size() / kGgmlBlock);
  quantize_row_q8_0(w, blocks);  // rows are whole blocks, so the matrix is one long row
  return blocks;
}

std::vector<BlockQ4_0> quantize_q4_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name,
                                     Q4_0Rounding rounding) {
  check_gguf_matrix(w, n, k, name, "Q4_0");
  std::vector<BlockQ4_0> blocks(w.size() / kGgmlBlock);
  quantize_row_q4_0(w, blocks, rounding);
  return blocks;
}

std::vector<float> fake_quant_q8_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name) {
  std::vector<BlockQ8_0> blocks = quantize_q8_0(w, n, k, name);
  std::vector<float> out(w.size());
  dequantize_row_q8_0(blocks, out);
  return out;
}

std::vector<float> fake_quant_q4_0(std::span<const float> w, int64_t n, int64_t k, std::string_view name,
                                   Q4_0Rounding rounding) {
  std::vector<BlockQ4_0> blocks = quantize_q4_0(w, n, k, name, rounding);
  std::vector<float> out(w.size());
  dequantize_row_q4_0(blocks, out);
  return out;
}

}  // namespace qs::formats
