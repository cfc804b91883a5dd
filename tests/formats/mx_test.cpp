#include "formats/mx.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "formats/fp8.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

TEST(E2M1, ValuesTiesAndSaturation) {
  const float values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(e2m1_to_f32(static_cast<uint8_t>(c)), values[c]);
    EXPECT_EQ(e2m1_to_f32(static_cast<uint8_t>(c | 8)), -values[c]);
    EXPECT_EQ(f32_to_e2m1(values[c]), c);
    EXPECT_EQ(f32_to_e2m1(-values[c]), c | 8);
  }
  // Midpoints go to the even code (mantissa bit 0).
  EXPECT_EQ(f32_to_e2m1(0.25f), 0);
  EXPECT_EQ(f32_to_e2m1(0.75f), 2);
  EXPECT_EQ(f32_to_e2m1(1.25f), 2);
  EXPECT_EQ(f32_to_e2m1(1.75f), 4);
  EXPECT_EQ(f32_to_e2m1(2.5f), 4);
  EXPECT_EQ(f32_to_e2m1(3.5f), 6);
  EXPECT_EQ(f32_to_e2m1(5.0f), 6);
  EXPECT_EQ(f32_to_e2m1(std::nextafter(5.0f, 9.0f)), 7);
  EXPECT_EQ(f32_to_e2m1(7.9f), 7);
  EXPECT_EQ(f32_to_e2m1(-1e30f), 15);
  EXPECT_EQ(f32_to_e2m1(-0.1f), 8);  // -0
}

TEST(Mx, E8M0AndHandExamples) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(e8m0_to_f32(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(e8m0_to_f32(0xFF)));
  std::vector<float> w(4 * 32, 0.0f);
  w[0] = 6.0f;  w[1] = -2.9f;                 // block 0: amax 6 -> e = 2 - 2 = 0, X = 1
  w[32] = 7.0f; w[33] = 1.0f;                 // block 1: amax 7 -> X = 1, 7 saturates to 6
  w[64] = 0.75f; w[65] = 0.1f;                // block 2: floor(log2 0.75) = -1 -> X = 2^-3
  // block 3 all zero
  const MxFp4Matrix q = quantize_mxfp4(w, 1, 128, "l");
  EXPECT_EQ(q.scales, (std::vector<uint8_t>{127, 127, 124, 0}));
  EXPECT_EQ(q.code(0), 7);
  EXPECT_EQ(q.code(1), 8 | 5);  // -2.9 -> -3
  EXPECT_EQ(q.code(32), 7);
  EXPECT_EQ(q.code(64), 7);     // 0.75 * 8 = 6
  EXPECT_EQ(q.code(65), 2);     // 0.8 -> 1
  EXPECT_EQ(q.packed[0], 0xD7);  // element 0 in the low nibble
  std::vector<float> w_hat(128);
  dequantize_mxfp4(q, w_hat);
  EXPECT_EQ(w_hat[1], -3.0f);
  EXPECT_EQ(w_hat[32], 6.0f);
  EXPECT_EQ(w_hat[65], 0.125f);
  // A NaN makes the block's scale NaN.
  w[70] = std::nanf("");
  const MxFp4Matrix bad = quantize_mxfp4(w, 1, 128, "l");
  EXPECT_EQ(bad.scales[2], kE8M0NaN);
  dequantize_mxfp4(bad, w_hat);
  EXPECT_TRUE(std::isnan(w_hat[64]));
  EXPECT_THROW(quantize_mxfp4(std::vector<float>(48, 1.0f), 1, 48, "model.x"), Error);
}

TEST(NvFp4, HandExample) {
  // amax 2688 -> g = 1; a block with amax 6 gets scale 1.0 (E4M3 0x38), one with amax 2688
  // gets 448 (0x7e).
  std::vector<float> w(32, 0.0f);
  w[0] = 6.0f;
  w[1] = 2.4f;
  w[16] = 2688.0f;
  w[17] = -1344.0f;
  const NvFp4Matrix q = quantize_nvfp4(w, 1, 32, "l");
  EXPECT_EQ(q.global_scale, 1.0f);
  EXPECT_EQ(q.block_scales, (std::vector<uint8_t>{0x38, 0x7e}));
  EXPECT_EQ(q.code(0), 7);
  EXPECT_EQ(q.code(1), 4);  // 2.4 -> 2
  EXPECT_EQ(q.code(16), 7);
  EXPECT_EQ(q.code(17), 8 | 5);  // -1344 / 448 = -3
  std::vector<float> w_hat(32);
  dequantize_nvfp4(q, w_hat);
  EXPECT_EQ(w_hat[17], -1344.0f);
  EXPECT_THROW(quantize_nvfp4(std::vector<float>(24, 1.0f), 1, 24, "l"), Error);
}

TEST(Mx, MatchesPythonReference) {
  const test::RefDir dir_holder("mx-ref");
  const std::string& dir = dir_holder.path;
  const int64_t n = 64, k = 512;
  std::vector<float> w = test::weight_like(n, k, 41);
  for (int64_t c = 0; c < 32; ++c) w[5 * k + c] = 1e-39f * static_cast<float>(c % 5);  // scale clamps at 2^-127
  for (int64_t c = 32; c < 64; ++c) w[5 * k + c] = static_cast<float>(c - 48) / 4.0f;    // exact E2M1 ties
  test::write_raw(dir + "/matrix.f32", w);
  qs::testing::write_text(dir + "/shape.txt", std::to_string(n) + " " + std::to_string(k));
  std::vector<float> probe;
  for (int i = -2000; i <= 2000; ++i) probe.push_back(static_cast<float>(i) / 256.0f);
  Rng rng(5);
  for (int i = 0; i < 20000; ++i) probe.push_back(static_cast<float>((rng.uniform() * 2 - 1) * 8));
  probe.push_back(-0.0f);
  test::write_raw(dir + "/probe.f32", probe);
  ASSERT_TRUE(test::run_ref("mx_ref.py", dir));

  const auto probe_codes = test::read_raw<uint8_t>(dir + "/probe_e2m1.u8");
  ASSERT_EQ(probe_codes.size(), probe.size());
  for (size_t i = 0; i < probe.size(); ++i) EXPECT_EQ(f32_to_e2m1(probe[i]), probe_codes[i]) << probe[i];

  const MxFp4Matrix mx = quantize_mxfp4(w, n, k, "layer");
  EXPECT_EQ(mx.packed, test::read_raw<uint8_t>(dir + "/mx_packed.u8"));
  EXPECT_EQ(mx.scales, test::read_raw<uint8_t>(dir + "/mx_scales.u8"));
  EXPECT_EQ(mx.scales[5 * k / 32], 0);

  const NvFp4Matrix nv = quantize_nvfp4(w, n, k, "layer");
  EXPECT_EQ(nv.packed, test::read_raw<uint8_t>(dir + "/nv_packed.u8"));
  EXPECT_EQ(nv.block_scales, test::read_raw<uint8_t>(dir + "/nv_scales.u8"));
  EXPECT_EQ(nv.global_scale, test::read_raw<float>(dir + "/nv_global.f32").at(0));

  // Fake quantization: each value is one of the 8 magnitudes times its block scale.
  const std::vector<float> mx_hat = fake_quant_mxfp4(w, n, k, "layer");
  const std::vector<float> nv_hat = fake_quant_nvfp4(w, n, k, "layer");
  for (int64_t i = 0; i < n * k; ++i) {
    EXPECT_EQ(mx_hat[i], e2m1_to_f32(mx.code(i)) * e8m0_to_f32(mx.scales[i / 32]));
    EXPECT_EQ(nv_hat[i], e2m1_to_f32(nv.code(i)) * (fp8_e4m3_to_f32(nv.block_scales[i / 16]) * nv.global_scale));
  }
}

}  // namespace
}  // namespace qs::formats
