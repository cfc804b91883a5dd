// ggml block types: the type table against gguf-py's published GGML_QUANT_SIZES, and every
// dequantizer bit for bit against the independent numpy implementation in
// tests/formats/ref/ggml_dequant_ref.py on random bytes (random bytes are valid blocks), plus
// hand-built blocks whose values are known.
#include "formats/ggml_quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "formats/gguf_blocks.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

TEST(GgmlTypes, TableMatchesGgufPy) {
  // gguf-py constants.py GGML_QUANT_SIZES: (block size, type size).
  struct Row {
    uint32_t id;
    const char* name;
    int64_t block;
    size_t bytes;
  };
  const Row rows[] = {{0, "F32", 1, 4},        {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},
                      {3, "Q4_1", 32, 20},     {6, "Q5_0", 32, 22},       {7, "Q5_1", 32, 24},
                      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},       {10, "Q2_K", 256, 84},
                      {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144},    {13, "Q5_K", 256, 176},
                      {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66},
                      {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98},  {19, "IQ1_S", 256, 50},
                      {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},   {22, "IQ2_S", 256, 82},
                      {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
                      {26, "I32", 1, 4},       {27, "I64", 1, 8},         {28, "F64", 1, 8},
                      {29, "IQ1_M", 256, 56},  {30, "BF16", 1, 2},        {34, "TQ1_0", 256, 54},
                      {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17}};
  for (const Row& r : rows) {
    auto t = ggml_type_from_id(r.id);
    ASSERT_TRUE(t.has_value()) << r.name;
    EXPECT_EQ(ggml_type_name(*t), r.name);
    EXPECT_EQ(ggml_block_size(*t), r.block) << r.name;
    EXPECT_EQ(ggml_type_size(*t), r.bytes) << r.name;
    EXPECT_EQ(ggml_type_from_name(r.name), t);
  }
  for (uint32_t retired : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u})
    EXPECT_FALSE(ggml_type_from_id(retired).has_value()) << retired;
  EXPECT_EQ(ggml_type_from_name("q6_k"), GgmlType::Q6_K);
  EXPECT_FALSE(ggml_type_from_name("Q7_K").has_value());
  EXPECT_EQ(ggml_row_size(GgmlType::Q6_K, 4096), 16u * 210u);
  EXPECT_EQ(ggml_row_size(GgmlType::BF16, 10), 20u);
}

// Byte offsets (within a block) of the high byte of each float field: f16/bf16 scales, or the
// value itself for the plain types. Clearing bit 6 of that byte keeps the exponent below its
// maximum, so the field is finite.
std::vector<size_t> float_fields(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {3};
    case GgmlType::F16: case GgmlType::BF16: return {1};
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {1};
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K: return {1, 3};
    case GgmlType::Q2_K: return {81, 83};
    case GgmlType::Q3_K: return {109};
    case GgmlType::Q6_K: return {209};
    default: return {};
  }
}

bool same_or_both_nan(float a, float b) { return test::same_bits(a, b) || (std::isnan(a) && std::isnan(b)); }

TEST(GgmlDequant, MatchesNumpyReferenceBitForBit) {
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                            GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                            GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  test::RefDir dir("ggml-dequant");
  Rng rng(20240611);
  std::string args;
  std::vector<std::vector<float>> ours;
  const int64_t n = 256 * 48;  // 48 super-blocks, 384 legacy blocks
  for (GgmlType t : types) {
    std::vector<uint8_t> raw(ggml_row_size(t, n));
    for (auto& b : raw) b = static_cast<uint8_t>(rng.below(256));
    // Most blocks get finite, moderate scales (the top exponent bit of each f16 / bf16 / f32
    // field cleared) so most values are ordinary; the last 8 blocks keep raw random bytes,
    // inf/NaN scales included, which both sides must handle the same way.
    const size_t block_bytes = ggml_type_size(t);
    const size_t blocks = raw.size() / block_bytes;
    for (size_t b = 0; b + 8 < blocks; ++b)
      for (size_t at : float_fields(t)) raw[b * block_bytes + at] &= 0xBF;
    test::write_raw(dir.path + "/" + std::string(ggml_type_name(t)) + ".bin", raw);
    std::vector<float> y(n);
    dequantize_row(t, raw.data(), y.data(), n);
    ours.push_back(std::move(y));
    args += " " + std::string(ggml_type_name(t)) + " " + std::to_string(n);
  }
  ASSERT_TRUE(test::run_ref("ggml_dequant_ref.py", dir.path, args));
  for (size_t i = 0; i < std::size(types); ++i) {
    const std::string name(ggml_type_name(types[i]));
    auto ref = test::read_raw<float>(dir.path + "/" + name + ".f32");
    ASSERT_EQ(ref.size(), ours[i].size()) << name;
    int64_t mismatches = 0, finite = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
      if (!same_or_both_nan(ours[i][k], ref[k]) && mismatches++ < 5)
        ADD_FAILURE() << name << " value " << k << ": ours " << ours[i][k] << ", numpy " << ref[k];
      finite += std::isfinite(ref[k]);
    }
    EXPECT_EQ(mismatches, 0) << name;
    EXPECT_GT(finite, static_cast<int64_t>(ref.size()) * 9 / 10) << name << ": too few ordinary values were compared";
  }
}

TEST(GgmlDequant, LegacyTypesAgreeWithGgufBlocks) {
  // Q8_0 / Q4_0 through dequantize_row equal gguf_blocks.h's dequantizers on real quantized data.
  auto w = test::weight_like(4, 64, 5);
  auto q8 = quantize_q8_0(w, 4, 64, "w");
  auto q4 = quantize_q4_0(w, 4, 64, "w");
  std::vector<float> a(64), b(64);
  for (int r = 0; r < 4; ++r) {
    dequantize_row(GgmlType::Q8_0, q8.data() + r * 2, a.data(), 64);
    dequantize_row_q8_0({q8.data() + r * 2, 2}, b);
    for (int k = 0; k < 64; ++k) EXPECT_TRUE(test::same_bits(a[k], b[k]));
    dequantize_row(GgmlType::Q4_0, q4.data() + r * 2, a.data(), 64);
    dequantize_row_q4_0({q4.data() + r * 2, 2}, b);
    for (int k = 0; k < 64; ++k) EXPECT_TRUE(test::same_bits(a[k], b[k]));
  }
}

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

TEST(GgmlDequant, HandBuiltQ4KAndQ6K) {
  // Q4_K: d = 0.5, dmin = 0.25; group g has scale g + 1 and min 2g + 40 (6 bits, so groups
  // 4-7 exercise the split high bits); every code is its position mod 16.
  std::vector<uint8_t> b(144, 0);
  put_half(&b[0], 0.5f);
  put_half(&b[2], 0.25f);
  uint8_t* s = &b[4];
  for (int g = 0; g < 8; ++g) {
    const int sc = g + 1 + (g >= 4 ? 40 : 0), mn = 2 * g + 40;
    if (g < 4) {
      s[g] = static_cast<uint8_t>(sc);
      s[g + 4] = static_cast<uint8_t>(mn);
    } else {
      s[g + 4] = static_cast<uint8_t>((sc & 0xF) | ((mn & 0xF) << 4));
      s[g - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      s[g] |= static_cast<uint8_t>((mn >> 4) << 6);
    }
  }
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = static_cast<uint8_t>((l % 16) | (((l + 3) % 16) << 4));
  std::vector<float> y(256);
  dequantize_row(GgmlType::Q4_K, b.data(), y.data(), 256);
  for (int i = 0; i < 256; ++i) {
    const int g = i / 32, l = i % 32;
    const int q = g % 2 == 0 ? l % 16 : (l + 3) % 16;
    const int sc = g + 1 + (g >= 4 ? 40 : 0), mn = 2 * g + 40;
    EXPECT_EQ(y[i], 0.5f * static_cast<float>(sc) * static_cast<float>(q) - 0.25f * static_cast<float>(mn)) << i;
  }
  // Q6_K: d = 2, scale of group j (16 values) = j - 8; value i has code (i * 7) % 64.
  std::vector<uint8_t> c(210, 0);
  put_half(&c[208], 2.0f);
  for (int j = 0; j < 16; ++j) c[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 8));
  for (int i = 0; i < 256; ++i) {
    const int q = (i * 7) % 64, h = i / 128, quarter = (i % 128) / 32, l = i % 32;
    uint8_t& lo = c[64 * h + 32 * (quarter % 2) + l];
    lo |= static_cast<uint8_t>((q & 0xF) << (4 * (quarter / 2)));
    c[128 + 32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
  }
  dequantize_row(GgmlType::Q6_K, c.data(), y.data(), 256);
  for (int i = 0; i < 256; ++i)
    EXPECT_EQ(y[i], 2.0f * static_cast<float>(i / 16 - 8) * static_cast<float>((i * 7) % 64 - 32)) << i;
}

TEST(GgmlDequant, RefusesWhatItCannotDecode) {
  std::vector<uint8_t> raw(1024, 0);
  std::vector<float> y(256);
  EXPECT_THROW(dequantize_row(GgmlType::IQ2_XXS, raw.data(), y.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_K, raw.data(), y.data(), 100), Error);
  EXPECT_FALSE(ggml_can_dequantize(GgmlType::MXFP4));
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::Q3_K));
}

}  // namespace
}  // namespace qs::formats
