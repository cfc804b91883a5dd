#include "formats/nf4.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "formats/layout.h"

namespace qs::formats {

namespace {

// QLoRA's NF4 values as bitsandbytes lists them (get_4bit_type("nf4")), f32.
constexpr std::array<float, 16> kNf4 = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

std::array<float, 16> make_fp4_codebook() {
  // bitsandbytes' FP4 (sign, 2 exponent bits, 1 mantissa bit, its own bias): magnitudes of
  // codes 0..7 are 0, 0.0625, 8, 12, 4, 6, 2, 3; the table is divided by its max (12) in f32.
  constexpr float kMagnitudes[8] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f};
  std::array<float, 16> t{};
  for (int c = 0; c < 8; ++c) {
    t[c] = kMagnitudes[c] / 12.0f;
    t[c + 8] = -t[c];
  }
  return t;
}
const std::array<float, 16> kFp4 = make_fp4_codebook();

std::array<float, 15> make_nf4_thresholds() {
  // The f32 midpoints of adjacent NF4 values (the sums are exact in double).
  std::array<float, 15> t{};
  for (int i = 0; i < 15; ++i) t[i] = static_cast<float>((static_cast<double>(kNf4[i]) + kNf4[i + 1]) * 0.5);
  return t;
}
const std::array<float, 15> kNf4Thresholds = make_nf4_thresholds();

// dQuantizeFP4's magnitude thresholds in ascending order, as published (not all exact
// midpoints), and the magnitude code for each count of thresholds exceeded.
constexpr std::array<float, 7> kFp4Thresholds = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                                                 0.4166667f,  0.583333f,  0.8333333f};
constexpr uint8_t kFp4CodeByRank[8] = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

std::array<float, 256> make_dynamic_map() {
  // For i = 0..6 and n = 2^i + 1 boundaries b_k = 0.1 + 0.9 k / (n - 1): the mean of b_k and
  // b_{k+1} times 10^(i-6) equals (2(n-1) + 9(2k+1)) / (20 (n-1) 10^(6-i)), a ratio of
  // integers below 2^53, so one double division and one rounding to f32 give the exactly
  // rounded value.
  std::vector<double> values;
  for (int i = 0; i < 7; ++i) {
    const int64_t segments = int64_t{1} << i;
    int64_t pow10 = 1;
    for (int e = 0; e < 6 - i; ++e) pow10 *= 10;
    for (int64_t k = 0; k < segments; ++k) {
      const double num = static_cast<double>(2 * segments + 9 * (2 * k + 1));
      const double den = static_cast<double>(20 * segments * pow10);
      const double v = static_cast<double>(static_cast<float>(num / den));
      values.push_back(v);
      values.push_back(-v);
    }
  }
  values.push_back(0.0);
  values.push_back(1.0);
  std::sort(values.begin(), values.end());
  std::array<float, 256> map{};
  for (int i = 0; i < 256; ++i) map[i] = static_cast<float>(values[i]);
  return map;
}
const std::array<float, 256> kDynamicMap = make_dynamic_map();

void check_blocksize(int64_t blocksize, std::string_view name) {
  const bool pow2 = blocksize > 0 && (blocksize & (blocksize - 1)) == 0;
  require(pow2 && blocksize >= 32 && blocksize <= 4096, "bitsandbytes block size must be a power of two in [32, 4096], got ",
          blocksize, " for layer ", quote(name));
}

float block_absmax(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

}  // namespace

const std::array<float, 16>& bnb4_codebook(Bnb4Type type) { return type == Bnb4Type::NF4 ? kNf4 : kFp4; }
const std::array<float, 15>& bnb_nf4_thresholds() { return kNf4Thresholds; }
const std::array<float, 7>& bnb_fp4_magnitude_thresholds() { return kFp4Thresholds; }
const std::array<float, 256>& bnb_dynamic_map() { return kDynamicMap; }

uint8_t bnb_nf4_code(float x) {
  // dQuantizeNF4 is a binary tree over the sorted thresholds with `x > t` at each node, so
  // its leaf is the number of thresholds strictly below x (NaN compares false: code 0).
  int code = 0;
  for (float t : kNf4Thresholds) code += x > t;
  return static_cast<uint8_t>(code);
}

uint8_t bnb_fp4_code(float x) {
  const uint8_t sign = x < 0.0f ? 0b1000 : 0;
  const float a = std::fabs(x);
  int rank = 0;
  for (float t : kFp4Thresholds) rank += a > t;
  return sign | kFp4CodeByRank[rank];
}

uint8_t bnb_dynamic_code(float x, const std::array<float, 256>& map) {
  // bitsandbytes' dQuantize: a 7-step binary search from the middle of the sorted map that
  // remembers the last value seen above and below x, then rounds to the nearer of the final
  // pivot and that neighbour by comparing with their f32 midpoint; exactly on the midpoint
  // the pivot wins.
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = map[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = map[pivot];
  }
  if (upper_pivot == 255) upper = map[255];
  if (lower_pivot == 0) lower = map[0];
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    return static_cast<uint8_t>(x > midpoint ? upper_pivot : pivot);
  }
  const float midpoint = (lower + val) * 0.5f;
  return static_cast<uint8_t>(x < midpoint ? lower_pivot : pivot);
}

Bnb8Blockwise bnb_quantize_blockwise8(std::span<const float> x, int64_t blocksize) {
  check_blocksize(blocksize, "blockwise statistics");
  Bnb8Blockwise q;
  q.blocksize = blocksize;
  const int64_t n = static_cast<int64_t>(x.size());
  q.codes.resize(n);
  q.absmax.resize((n + blocksize - 1) / blocksize);
  for (int64_t b = 0; b < static_cast<int64_t>(q.absmax.size()); ++b) {
    const int64_t begin = b * blocksize, len = std::min(blocksize, n - begin);
    const float amax = block_absmax(x.data() + begin, len);
    q.absmax[b] = amax;
    const float inv = 1.0f / amax;
    for (int64_t i = begin; i < begin + len; ++i) q.codes[i] = bnb_dynamic_code(x[i] * inv, kDynamicMap);
  }
  return q;
}

void bnb_dequantize_blockwise8(const Bnb8Blockwise& q, std::span<float> out) {
  require(out.size() == q.codes.size(), "bnb_dequantize_blockwise8: output has ", out.size(), " values, expected ",
          q.codes.size());
  const int64_t n = static_cast<int64_t>(q.codes.size());
  for (int64_t begin = 0; begin < n; begin += q.blocksize) {
    const float amax = q.absmax[begin / q.blocksize];
    for (int64_t i = begin; i < std::min(begin + q.blocksize, n); ++i) out[i] = kDynamicMap[q.codes[i]] * amax;
  }
}

Bnb4Matrix quantize_bnb4(std::span<const float> w, int64_t n, int64_t k, Bnb4Type type, bool compress_statistics,
                         std::string_view name, int64_t blocksize) {
  check_matrix(n, k, w.size(), name);
  check_blocksize(blocksize, name);
  Bnb4Matrix q;
  q.type = type;
  q.rows = n;
  q.cols = k;
  q.blocksize = blocksize;
  const int64_t total = n * k;
  q.packed.assign((total + 1) / 2, 0);
  std::vector<float> absmax(q.n_blocks());
  const float* x = w.data();
  for (int64_t b = 0; b < q.n_blocks(); ++b) {
    const int64_t begin = b * blocksize, len = std::min(blocksize, total - begin);
    const float amax = block_absmax(x + begin, len);
    absmax[b] = amax;
    const float inv = 1.0f / amax;  // inf for an all-zero block: 0 * inf = NaN -> code 0
    for (int64_t i = begin; i < begin + len; i += 2) {
      const uint8_t hi = bnb4_code(type, x[i] * inv);
      // An odd total pads the last low nibble with the code of 0 (bitsandbytes loads 0 there).
      const uint8_t lo = i + 1 < total ? bnb4_code(type, x[i + 1] * inv) : bnb4_code(type, 0.0f * inv);
      q.packed[i >> 1] = static_cast<uint8_t>((hi << 4) | lo);
    }
  }
  if (!compress_statistics) {
    q.absmax = std::move(absmax);
    return q;
  }
  q.nested = true;
  double sum = 0.0;
  for (float a : absmax) sum += a;
  q.nested_offset = static_cast<float>(sum / static_cast<double>(absmax.size()));
  for (float& a : absmax) a -= q.nested_offset;
  q.nested_absmax = bnb_quantize_blockwise8(absmax, 256);
  return q;
}

std::vector<float> bnb4_block_absmax(const Bnb4Matrix& q) {
  if (!q.nested) return q.absmax;
  std::vector<float> absmax(q.nested_absmax.codes.size());
  bnb_dequantize_blockwise8(q.nested_absmax, absmax);
  for (float& a : absmax) a += q.nested_offset;
  return absmax;
}

void dequantize_bnb4(const Bnb4Matrix& q, std::span<float> out) {
  require(static_cast<int64_t>(out.size()) == q.numel(), "dequantize_bnb4: output has ", out.size(),
          " values, expected ", q.numel());
  const std::vector<float> absmax = bnb4_block_absmax(q);
  require(static_cast<int64_t>(absmax.size()) == q.n_blocks(), "bitsandbytes state has ", absmax.size(),
          " block scales, expected ", q.n_blocks());
  const auto& book = bnb4_codebook(q.type);
  const int64_t total = q.numel();
  for (int64_t b = 0; b < q.n_blocks(); ++b) {
    const int64_t begin = b * q.blocksize, end = std::min(begin + q.blocksize, total);
    const float amax = absmax[b];
    for (int64_t i = begin; i < end; ++i) out[i] = book[q.code(i)] * amax;
  }
}

std::vector<float> fake_quant_bnb4(std::span<const float> w, int64_t n, int64_t k, Bnb4Type type,
                                   bool compress_statistics, std::string_view name, int64_t blocksize) {
  Bnb4Matrix q = quantize_bnb4(w, n, k, type, compress_statistics, name, blocksize);
  std::vector<float> out(w.size());
  dequantize_bnb4(q, out);
  return out;
}

}  // namespace qs::formats
