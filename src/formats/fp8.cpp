#include "formats/fp8.h"

#include <array>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "formats/layout.h"

namespace qs::formats {

namespace {

// An OCP-style minifloat with 1 sign bit: `man_bits` mantissa bits, exponent bias `bias`,
// largest finite magnitude code `max_code` (E4M3: 0x7e = 448, E5M2: 0x7b = 57344).
struct MiniFloat {
  int man_bits;
  int bias;
  uint8_t max_code;
  bool has_inf;  // E5M2: exponent all ones is Inf/NaN (IEEE); E4M3fn: only 0x7f is NaN
};
constexpr MiniFloat kE4M3{3, 7, 0x7e, false};
constexpr MiniFloat kE5M2{2, 15, 0x7b, true};
constexpr uint8_t kNaNCode = 0x7f;  // both formats (PyTorch's choice for E5M2 too)
constexpr uint8_t kE5M2InfCode = 0x7c;

// Value of a code from the format definition: subnormal m * 2^(1-bias-man), normal
// (1 + m / 2^man) * 2^(e - bias).
float decode_minifloat(const MiniFloat& f, uint8_t code) {
  const int exp_bits = 7 - f.man_bits;
  const int e = (code >> f.man_bits) & ((1 << exp_bits) - 1);
  const int m = code & ((1 << f.man_bits) - 1);
  const bool negative = code & 0x80;
  float v;
  if ((code & 0x7f) == kNaNCode || (f.has_inf && e == (1 << exp_bits) - 1 && m != 0)) {
    v = std::nanf("");
  } else if (f.has_inf && e == (1 << exp_bits) - 1) {
    v = INFINITY;
  } else if (e == 0) {
    v = std::ldexp(static_cast<float>(m), 1 - f.bias - f.man_bits);
  } else {
    v = std::ldexp(static_cast<float>((1 << f.man_bits) + m), e - f.bias - f.man_bits);
  }
  return negative ? -v : v;
}

uint8_t encode_minifloat(const MiniFloat& f, float x, bool saturate) {
  const uint32_t bits = f32_bits(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t u = bits & 0x7fffffffu;
  if (u > 0x7f800000u) return sign | kNaNCode;
  uint32_t code;
  const uint32_t min_normal_bits = static_cast<uint32_t>(127 + 1 - f.bias) << 23;
  if (u < min_normal_bits) {
    // Subnormal in the target: scale so one unit is the smallest subnormal (exact, a power
    // of two), then round to an integer, nearest even. 2^man here is the smallest normal.
    const float unit = static_cast<float>(uint64_t{1} << (f.bias - 1 + f.man_bits));  // 2^9 or 2^16
    const float scaled = f32_from_bits(u) * unit;
    code = static_cast<uint32_t>(round_half_even_small(scaled));
  } else {
    // Normal: drop 23 - man mantissa bits with round-to-nearest-even (a carry moves into
    // the exponent, as it should), then rebias the exponent from 127 to `bias`.
    const int shift = 23 - f.man_bits;
    const uint64_t rounded = static_cast<uint64_t>(u) + ((1u << (shift - 1)) - 1) + ((u >> shift) & 1u);
    code = static_cast<uint32_t>((rounded >> shift) - (static_cast<uint64_t>(127 - f.bias) << f.man_bits));
  }
  if (code > f.max_code) {
    if (saturate) return sign | f.max_code;
    return sign | (f.has_inf ? kE5M2InfCode : kNaNCode);
  }
  return sign | static_cast<uint8_t>(code);
}

std::array<float, 256> make_table(const MiniFloat& f) {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = decode_minifloat(f, static_cast<uint8_t>(c));
  return t;
}
const std::array<float, 256> kE4M3Table = make_table(kE4M3);
const std::array<float, 256> kE5M2Table = make_table(kE5M2);

const std::array<float, 256>& table(Fp8Format f) { return f == Fp8Format::E4M3 ? kE4M3Table : kE5M2Table; }

// max |x| ignoring NaN; throws on +-Inf (a scale cannot be derived from it).
float finite_amax(std::span<const float> x, std::string_view name) {
  float amax = 0.0f;
  for (float v : x) {
    const float a = std::fabs(v);
    amax = a > amax ? a : amax;
  }
  require(std::isfinite(amax), "layer ", quote(name), " has an infinite value; cannot derive an FP8 scale");
  return amax;
}

float scale_from_amax(float amax, Fp8Format f) { return amax > 0.0f ? amax / fp8_max(f) : 1.0f; }

}  // namespace

float fp8_e4m3_to_f32(uint8_t code) { return kE4M3Table[code]; }
float fp8_e5m2_to_f32(uint8_t code) { return kE5M2Table[code]; }
uint8_t f32_to_fp8_e4m3(float x) { return encode_minifloat(kE4M3, x, true); }
uint8_t f32_to_fp8_e5m2(float x, bool saturate) { return encode_minifloat(kE5M2, x, saturate); }

void encode_fp8_scaled(Fp8Format f, std::span<const float> x, float scale, std::span<uint8_t> out) {
  require(x.size() == out.size(), "encode_fp8_scaled: ", x.size(), " inputs but ", out.size(), " outputs");
  require(std::isfinite(scale) && scale > 0.0f, "FP8 scale must be finite and positive, got ", scale);
  const MiniFloat& mf = f == Fp8Format::E4M3 ? kE4M3 : kE5M2;
  for (size_t i = 0; i < x.size(); ++i) out[i] = encode_minifloat(mf, x[i] / scale, true);
}

void decode_fp8_scaled(Fp8Format f, std::span<const uint8_t> codes, float scale, std::span<float> out) {
  require(codes.size() == out.size(), "decode_fp8_scaled: ", codes.size(), " codes but ", out.size(), " outputs");
  const auto& t = table(f);
  for (size_t i = 0; i < codes.size(); ++i) out[i] = t[codes[i]] * scale;
}

Fp8Matrix quantize_fp8(std::span<const float> w, int64_t n, int64_t k, Fp8Format format,
                       Fp8Granularity granularity, std::string_view name) {
  check_matrix(n, k, w.size(), name);
  Fp8Matrix q;
  q.format = format;
  q.granularity = granularity;
  q.rows = n;
  q.cols = k;
  q.codes.resize(w.size());
  if (granularity == Fp8Granularity::PerTensor) {
    const float scale = scale_from_amax(finite_amax(w, name), format);
    q.scales = {scale};
    encode_fp8_scaled(format, w, scale, q.codes);
  } else {
    q.scales.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      auto row = w.subspan(r * k, k);
      const float scale = scale_from_amax(finite_amax(row, name), format);
      q.scales[r] = scale;
      encode_fp8_scaled(format, row, scale, std::span<uint8_t>(q.codes).subspan(r * k, k));
    }
  }
  return q;
}

void dequantize_fp8(const Fp8Matrix& q, std::span<float> out) {
  require(out.size() == q.codes.size(), "dequantize_fp8: output has ", out.size(), " values, expected ",
          q.codes.size());
  for (int64_t r = 0; r < q.rows; ++r)
    decode_fp8_scaled(q.format, std::span<const uint8_t>(q.codes).subspan(r * q.cols, q.cols), q.scale_of_row(r),
                      out.subspan(r * q.cols, q.cols));
}

std::vector<float> fake_quant_fp8(std::span<const float> w, int64_t n, int64_t k, Fp8Format format,
                                  Fp8Granularity granularity, std::string_view name) {
  Fp8Matrix q = quantize_fp8(w, n, k, format, granularity, name);
  std::vector<float> out(w.size());
  dequantize_fp8(q, out);
  return out;
}

float quantize_fp8_row_dynamic(std::span<const float> row, std::span<uint8_t> codes) {
  float amax = finite_amax(row, "activation row");
  float scale = amax / kFp8E4M3Max;
  if (!(scale > kFp8MinTokenScale)) scale = kFp8MinTokenScale;
  encode_fp8_scaled(Fp8Format::E4M3, row, scale, codes);
  return scale;
}

}  // namespace qs::formats
