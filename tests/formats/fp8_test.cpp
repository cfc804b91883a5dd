#include "formats/fp8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

// The spec formula, written out independently of the implementation's table.
double spec_value(Fp8Format f, int code) {
  const int man = f == Fp8Format::E4M3 ? 3 : 2, bias = f == Fp8Format::E4M3 ? 7 : 15;
  const int e = (code >> man) & ((1 << (7 - man)) - 1), m = code & ((1 << man) - 1);
  const double sign = (code & 0x80) ? -1.0 : 1.0;
  if (e == 0) return sign * m * std::pow(2.0, 1 - bias - man);
  return sign * (1.0 + m / std::pow(2.0, man)) * std::pow(2.0, e - bias);
}

bool is_nan_code(Fp8Format f, int code) {
  if (f == Fp8Format::E4M3) return (code & 0x7f) == 0x7f;
  return (code & 0x7f) > 0x7c;
}

TEST(Fp8, AllCodesDecodePerSpec) {
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    for (int c = 0; c < 256; ++c) {
      const float v = fp8_to_f32(f, static_cast<uint8_t>(c));
      if (is_nan_code(f, c)) {
        EXPECT_TRUE(std::isnan(v)) << c;
      } else if (f == Fp8Format::E5M2 && (c & 0x7f) == 0x7c) {
        EXPECT_EQ(v, (c & 0x80) ? -INFINITY : INFINITY);
      } else {
        EXPECT_EQ(static_cast<double>(v), spec_value(f, c)) << "code " << c;
        EXPECT_EQ(std::signbit(v), (c & 0x80) != 0) << "code " << c;
      }
    }
  }
  // Landmarks of the spec tables.
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8_e5m2_to_f32(0x7b), 57344.0f);
  EXPECT_EQ(fp8_e5m2_to_f32(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(fp8_e5m2_to_f32(0x3c), 1.0f);
}

TEST(Fp8, EveryValueEncodesToItsCode) {
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    for (int c = 0; c < 256; ++c) {
      const float v = fp8_to_f32(f, static_cast<uint8_t>(c));
      if (std::isnan(v) || std::isinf(v)) continue;
      EXPECT_EQ(f32_to_fp8(f, v), c) << "code " << c;
    }
  }
}

// Midpoints between neighbours round to the even code; one f32 ulp off a midpoint picks the
// nearer neighbour.
TEST(Fp8, MidpointsTieToEvenAndNeighboursRoundToNearest) {
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    const int max_code = f == Fp8Format::E4M3 ? 0x7e : 0x7b;
    for (int sign : {0, 0x80}) {
      for (int c = 0; c < max_code; ++c) {
        const float lo = fp8_to_f32(f, static_cast<uint8_t>(c | sign));
        const float hi = fp8_to_f32(f, static_cast<uint8_t>((c + 1) | sign));
        const float mid = (lo + hi) / 2;  // exact: needs one more bit than the format has
        ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
        const int even = (c % 2 == 0) ? c : c + 1;
        EXPECT_EQ(f32_to_fp8(f, mid), even | sign) << "between codes " << c << " and " << c + 1;
        const float toward_lo = std::nextafter(mid, lo), toward_hi = std::nextafter(mid, hi);
        EXPECT_EQ(f32_to_fp8(f, toward_lo), c | sign) << c;
        EXPECT_EQ(f32_to_fp8(f, toward_hi), (c + 1) | sign) << c;
      }
    }
  }
}

TEST(Fp8, SaturatesInfinityAndNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // E4M3: everything past 448 saturates (vLLM clamps to +-448 before the cast).
  for (float v : {448.0f, 449.0f, 463.99f, 464.0f, 480.0f, 1e6f, 3e38f, inf}) {
    EXPECT_EQ(f32_to_fp8_e4m3(v), 0x7e) << v;
    EXPECT_EQ(f32_to_fp8_e4m3(-v), 0xfe) << v;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(nan), 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(-nan), 0xff);
  // E5M2 saturating, and as a plain cast (overflow to Inf; 61440 is the tie 57344|65536 -> Inf).
  EXPECT_EQ(f32_to_fp8_e5m2(inf), 0x7b);
  EXPECT_EQ(f32_to_fp8_e5m2(-1e9f), 0xfb);
  EXPECT_EQ(f32_to_fp8_e5m2(61439.0f, false), 0x7b);
  EXPECT_EQ(f32_to_fp8_e5m2(61440.0f, false), 0x7c);
  EXPECT_EQ(f32_to_fp8_e5m2(-inf, false), 0xfc);
  EXPECT_EQ(f32_to_fp8_e5m2(nan), 0x7f);
  // Subnormals and underflow: half the smallest subnormal ties to 0, a bit more rounds up.
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 ulps: tie -> even (2)
  EXPECT_EQ(f32_to_fp8_e4m3(-std::ldexp(1.0f, -12)), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(1e-40f), 0x00);                  // f32 subnormal input
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(15.5f, -10)), 0x08);  // rounds up into the normals
}

TEST(Fp8, MatchesPythonReference) {
  const test::RefDir dir_holder("fp8-ref");
  const std::string& dir = dir_holder.path;
  // Values spread over the whole range of both formats, plus specials.
  Rng rng(7);
  std::vector<float> values;
  for (int i = 0; i < 200000; ++i) {
    const double mag = std::ldexp(1.0 + rng.uniform(), static_cast<int>(rng.below(48)) - 24);
    values.push_back(static_cast<float>(rng.below(2) ? -mag : mag));
  }
  for (float v : {0.0f, -0.0f, 448.0f, 464.0f, 1e30f, -1e30f}) values.push_back(v);
  values.push_back(std::numeric_limits<float>::infinity());
  test::write_raw(dir + "/values.f32", values);
  const int64_t n = 64, k = 512;
  const std::vector<float> w = test::weight_like(n, k, 11);
  test::write_raw(dir + "/matrix.f32", w);
  qs::testing::write_text(dir + "/shape.txt", std::to_string(n) + " " + std::to_string(k));
  ASSERT_TRUE(test::run_ref("fp8_ref.py", dir));

  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    const std::string tag = f == Fp8Format::E4M3 ? "e4m3" : "e5m2";
    const auto decoded = test::read_raw<float>(dir + "/decode_" + tag + ".f32");
    ASSERT_EQ(decoded.size(), 256u);
    for (int c = 0; c < 256; ++c)
      EXPECT_TRUE(test::same_bits(decoded[c], fp8_to_f32(f, static_cast<uint8_t>(c))) ||
                  (std::isnan(decoded[c]) && std::isnan(fp8_to_f32(f, static_cast<uint8_t>(c)))))
          << tag << " code " << c;
    const auto enc = test::read_raw<uint8_t>(dir + "/enc_" + tag + ".u8");
    ASSERT_EQ(enc.size(), values.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < values.size(); ++i) mismatches += enc[i] != f32_to_fp8(f, values[i]);
    EXPECT_EQ(mismatches, 0u) << tag;

    for (auto gran : {Fp8Granularity::PerTensor, Fp8Granularity::PerChannel}) {
      const std::string g = gran == Fp8Granularity::PerTensor ? "pt_" : "pc_";
      const Fp8Matrix q = quantize_fp8(w, n, k, f, gran, "layer");
      EXPECT_EQ(q.codes, test::read_raw<uint8_t>(dir + "/" + g + tag + ".u8")) << g << tag;
      EXPECT_EQ(q.scales, test::read_raw<float>(dir + "/" + g + tag + "_scale.f32")) << g << tag;
    }
  }
  const auto tok_codes = test::read_raw<uint8_t>(dir + "/tok_e4m3.u8");
  const auto tok_scales = test::read_raw<float>(dir + "/tok_e4m3_scale.f32");
  ASSERT_EQ(tok_scales.size(), static_cast<size_t>(n));
  std::vector<uint8_t> codes(k);
  for (int64_t r = 0; r < n; ++r) {
    const float s = quantize_fp8_row_dynamic(std::span<const float>(w).subspan(r * k, k), codes);
    EXPECT_EQ(s, tok_scales[r]) << r;
    EXPECT_TRUE(std::equal(codes.begin(), codes.end(), tok_codes.begin() + r * k)) << r;
  }
}

TEST(Fp8, FakeQuantErrorIsBoundedByHalfAStep) {
  const int64_t n = 16, k = 256;
  const std::vector<float> w = test::weight_like(n, k, 3);
  const Fp8Matrix q = quantize_fp8(w, n, k, Fp8Format::E4M3, Fp8Granularity::PerChannel, "l");
  std::vector<float> w_hat(w.size());
  dequantize_fp8(q, w_hat);
  EXPECT_EQ(w_hat, fake_quant_fp8(w, n, k, Fp8Format::E4M3, Fp8Granularity::PerChannel, "l"));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const float x = w[r * k + c], s = q.scales[r];
      // E4M3 has 3 mantissa bits: relative error <= 2^-4 for normals, absolute <= 2^-10 * s below.
      EXPECT_LE(std::fabs(w_hat[r * k + c] - x), std::max(std::fabs(x) / 16.0f, std::ldexp(s, -10)) * 1.0001f);
    }
  }
  // The all-zero row gets scale 1 and all-zero codes.
  EXPECT_EQ(q.scales[1], 1.0f);
  for (int64_t c = 0; c < k; ++c) EXPECT_EQ(q.codes[k + c], 0);
}

TEST(Fp8, RejectsBadShapesAndInfiniteWeights) {
  std::vector<float> w(10, 1.0f);
  EXPECT_THROW(quantize_fp8(w, 3, 4, Fp8Format::E4M3, Fp8Granularity::PerTensor, "x"), Error);
  w[3] = INFINITY;
  try {
    quantize_fp8(w, 2, 5, Fp8Format::E4M3, Fp8Granularity::PerTensor, "model.layers.0.mlp.up_proj");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qs::formats
