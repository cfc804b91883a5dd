#include "formats/gguf_blocks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

std::vector<uint8_t> bytes_of(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

TEST(Gguf, BlockLayoutIsGgmls) {
  EXPECT_EQ(offsetof(BlockQ8_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ4_0, qs), 2u);
  // Q4_0 of 0.25 * (j - 8) for j = 0..15 and then 16 values of 0.25 * (j - 8 - 0.5):
  // max magnitude is the first -2 -> d = 0.25, id = 4.
  std::vector<float> x(32);
  for (int j = 0; j < 16; ++j) {
    x[j] = 0.25f * static_cast<float>(j - 8);
    x[j + 16] = 0.25f * (static_cast<float>(j - 8) + 0.5f);
  }
  BlockQ4_0 b;
  quantize_row_q4_0(x, std::span<BlockQ4_0>(&b, 1));
  EXPECT_EQ(b.d, f32_to_f16(0.25f));
  for (int j = 0; j < 16; ++j) {
    // low nibble: trunc(j - 8 + 8.5) = j; high nibble: trunc(j - 7.5 + 8.5) = j + 1, capped 15
    EXPECT_EQ(b.qs[j] & 15, j) << j;
    EXPECT_EQ(b.qs[j] >> 4, std::min(j + 1, 15)) << j;
  }
  // Q8_0 rounds half away from zero.
  std::vector<float> y(32, 0.0f);
  y[0] = 127.0f;
  y[1] = 2.5f;
  y[2] = -2.5f;
  y[3] = 0.5f;
  BlockQ8_0 c;
  quantize_row_q8_0(y, std::span<BlockQ8_0>(&c, 1));
  EXPECT_EQ(f16_to_f32(c.d), 1.0f);
  EXPECT_EQ(c.qs[0], 127);
  EXPECT_EQ(c.qs[1], 3);
  EXPECT_EQ(c.qs[2], -3);
  EXPECT_EQ(c.qs[3], 1);
  // All-zero blocks: d = 0, id = 0, Q4_0 codes all 8.
  std::vector<float> z(32, 0.0f);
  quantize_row_q4_0(z, std::span<BlockQ4_0>(&b, 1));
  EXPECT_EQ(b.d, 0x8000);  // 0 / -8 = -0, stored as f16 -0 as ggml does
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x88);
  EXPECT_THROW(quantize_q8_0(std::vector<float>(40, 1.0f), 1, 40, "blk.0.ffn_down"), Error);
}

TEST(Gguf, MatchesNumpyReference) {
  const test::RefDir dir_holder("gguf-ref");
  const std::string& dir = dir_holder.path;
  const int64_t n = 96, k = 1024;
  std::vector<float> w = test::weight_like(n, k, 77);
  // Crafted blocks: exact Q4_0 boundaries, Q8_0 .5 ties, a negative max, a first-max tie.
  for (int j = 0; j < 32; ++j) {
    w[j] = 0.25f * (static_cast<float>(j % 16) - 8.0f) + (j >= 16 ? 0.125f : 0.0f);
    w[32 + j] = (j == 0) ? 127.0f : static_cast<float>(j) + 0.5f;
    w[64 + j] = (j == 5) ? -3.0f : 0.01f * static_cast<float>(j);
    w[96 + j] = (j == 3) ? 2.0f : (j == 9 ? -2.0f : 0.1f);
  }
  // Values on Q4_0 truncation boundaries, a few ulps either side: where the two
  // evaluations of x * id + 8.5f differ.
  const float d = -7.3f / -8.0f, id = 1.0f / d;
  std::vector<float> probe;
  for (int m = 0; m < 16; ++m) {
    float x = (static_cast<float>(m) - 8.5f) / id;
    for (int s = 0; s < 8; ++s) x = std::nextafter(x, -100.0f);
    for (int s = 0; s < 16; ++s, x = std::nextafter(x, 100.0f)) probe.push_back(x);
  }
  while (probe.size() % 31) probe.push_back(0.0f);
  int differing = 0;
  for (size_t i = 0; i < probe.size(); i += 31) {
    for (size_t j = 0; j < 31; ++j) w[2 * k + i / 31 * 32 + j] = probe[i + j];
    w[2 * k + i / 31 * 32 + 31] = -7.3f;  // the block max: d = 0.9125
  }
  for (float x : probe) differing += static_cast<int8_t>(x * id + 8.5f) != static_cast<int8_t>(std::fmaf(x, id, 8.5f));
  EXPECT_GT(differing, 0) << "the probe should contain values where FMA changes the Q4_0 code";
  test::write_raw(dir + "/rows.f32", w);
  ASSERT_TRUE(test::run_ref("gguf_ref.py", dir));

  const std::vector<BlockQ8_0> q8 = quantize_q8_0(w, n, k, "layer");
  EXPECT_EQ(bytes_of(q8.data(), q8.size() * sizeof(BlockQ8_0)), test::read_raw<uint8_t>(dir + "/q8_0.bin"));
  EXPECT_EQ(fake_quant_q8_0(w, n, k, "layer"), test::read_raw<float>(dir + "/q8_0_deq.f32"));
  for (auto [mode, tag] : {std::pair{Q4_0Rounding::Separate, "separate"}, std::pair{Q4_0Rounding::Fused, "fused"}}) {
    const std::vector<BlockQ4_0> q4 = quantize_q4_0(w, n, k, "layer", mode);
    EXPECT_EQ(bytes_of(q4.data(), q4.size() * sizeof(BlockQ4_0)),
              test::read_raw<uint8_t>(dir + "/q4_0_" + tag + ".bin"))
        << tag;
    EXPECT_EQ(fake_quant_q4_0(w, n, k, "layer", mode), test::read_raw<float>(dir + "/q4_0_" + tag + "_deq.f32"))
        << tag;
  }
}

}  // namespace
}  // namespace qs::formats
