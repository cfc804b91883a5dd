#include "formats/int_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

TEST(IntQuant, HandExampleSymmetricInt4) {
  // amax 7.5 -> scale 7.5 / 7.5 = 1: codes are round-half-even(x) + 8, clamped to [0, 15].
  const std::vector<float> w = {1.5f, -0.5f, 2.5f, 7.5f, -7.5f, 0.49f, -3.5f, 0.0f};
  IntQuantConfig cfg;
  cfg.bits = 4;
  cfg.granularity = IntGranularity::PerGroup;
  cfg.group_size = 8;
  const IntMatrix q = quantize_int(w, 1, 8, cfg, "l");
  EXPECT_EQ(q.scales, std::vector<float>{1.0f});
  EXPECT_EQ(q.zeros, std::vector<uint8_t>{8});
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{10, 8, 10, 15, 0, 8, 4, 8}));
  EXPECT_EQ(q.signed_code(3), 7);
  EXPECT_EQ(q.signed_code(4), -8);
  std::vector<float> w_hat(8);
  dequantize_int(q, w_hat);
  EXPECT_EQ(w_hat, (std::vector<float>{2, 0, 2, 7, -8, 0, -4, 0}));
}

TEST(IntQuant, HandExampleAsymmetricAndRestricted) {
  // Asymmetric 2-bit, range [min(0, -1), 3] -> scale 4/3, zero round(0.75) = 1.
  const std::vector<float> w = {-1.0f, 0.0f, 1.0f, 3.0f};
  IntQuantConfig asym;
  asym.bits = 2;
  asym.symmetric = false;
  asym.granularity = IntGranularity::PerChannel;
  const IntMatrix q = quantize_int(w, 1, 4, asym, "l");
  EXPECT_EQ(q.scales[0], 4.0f / 3.0f);
  EXPECT_EQ(q.zeros[0], 1);
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 1, 2, 3}));  // -0.75->-1+1, 0, 0.75->1+1, 2.25->2+1
  // Restricted symmetric int8 (SmoothQuant / per-token int8): scale = amax / 127, codes >= 1.
  IntQuantConfig restricted;
  restricted.bits = 8;
  restricted.range = SymmetricRange::Restricted;
  restricted.granularity = IntGranularity::PerChannel;
  const std::vector<float> x = {-127.0f, 127.0f, 63.5f, -200.0f / 2};
  const IntMatrix r = quantize_int(x, 1, 4, restricted, "act");
  EXPECT_EQ(r.scales[0], 1.0f);
  EXPECT_EQ(r.signed_code(0), -127);
  EXPECT_EQ(r.signed_code(1), 127);
  EXPECT_EQ(r.signed_code(2), 64);  // 63.5 -> 64 (even)
  EXPECT_EQ(r.signed_code(3), -100);
}

TEST(IntQuant, AllZeroGroupDequantizesToZero) {
  const std::vector<float> w(64, 0.0f);
  for (bool sym : {true, false}) {
    IntQuantConfig cfg;
    cfg.symmetric = sym;
    cfg.group_size = 32;
    const std::vector<float> w_hat = fake_quant_int(w, 2, 32, cfg, "zeros");
    for (float v : w_hat) EXPECT_EQ(v, 0.0f);
  }
}

TEST(IntQuant, ErrorsNameTheLayer) {
  std::vector<float> w(2 * 300, 1.0f);
  IntQuantConfig cfg;
  cfg.group_size = 128;
  try {
    quantize_int(w, 2, 300, cfg, "model.layers.0.mlp.down_proj");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "group size 128 does not divide input size 300 of layer 'model.layers.0.mlp.down_proj'");
  }
  cfg.group_size = 100;
  cfg.bits = 9;
  EXPECT_THROW(quantize_int(w, 2, 300, cfg, "x"), Error);
  cfg.bits = 4;
  EXPECT_THROW(quantize_int(w, 3, 300, cfg, "x"), Error);  // wrong value count
}

TEST(IntQuant, ClipRatioReturnsItsSquaredError) {
  const std::vector<float> w = test::weight_like(1, 128, 5);
  IntQuantConfig cfg;
  cfg.bits = 4;
  cfg.symmetric = false;
  cfg.granularity = IntGranularity::PerChannel;
  for (float ratio : {1.0f, 0.9f, 0.75f, 0.5f}) {
    std::vector<uint8_t> codes(w.size());
    const GroupFit fit = quantize_group_with_clip(w, cfg, ratio, codes);
    double err = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const double e = w[i] - (static_cast<float>(codes[i]) - static_cast<float>(fit.zero)) * fit.scale;
      err += e * e;
    }
    EXPECT_DOUBLE_EQ(fit.error, err) << ratio;
    EXPECT_EQ(fit.clip_ratio, ratio);
  }
  EXPECT_THROW(quantize_group_with_clip(w, cfg, 0.0f), Error);
  // The search never does worse than no clipping, and picks a ratio from its grid.
  const GroupFit none = quantize_group_with_clip(w, cfg, 1.0f);
  const GroupFit best = search_group_clip(w, cfg, MseSearch{});
  EXPECT_LE(best.error, none.error);
  EXPECT_GE(best.clip_ratio, 0.5f);
  EXPECT_LE(best.clip_ratio, 1.0f);
  const double steps = (1.0 - best.clip_ratio) * 200;
  EXPECT_NEAR(steps, std::round(steps), 1e-3);
}

TEST(IntQuant, MatchesTorchReference) {
  const test::RefDir dir_holder("int-ref");
  const std::string& dir = dir_holder.path;
  const int64_t n = 48, k = 512;
  std::vector<float> w = test::weight_like(n, k, 21);
  // A row with only positive values and one with only negative values (range edges).
  for (int64_t c = 0; c < k; ++c) {
    w[2 * k + c] = std::fabs(w[2 * k + c]);
    w[3 * k + c] = -std::fabs(w[3 * k + c]);
  }
  test::write_raw(dir + "/matrix.f32", w);
  qs::testing::write_text(dir + "/shape.txt", std::to_string(n) + " " + std::to_string(k));
  struct Case {
    int bits;
    bool sym;
    IntGranularity gran;
    int64_t group;
    SymmetricRange range;
    ScaleDType sdt;
    const char* mse;
  };
  const std::vector<Case> cases = {
      {4, true, IntGranularity::PerGroup, 128, SymmetricRange::Full, ScaleDType::F32, "none"},
      {4, false, IntGranularity::PerGroup, 128, SymmetricRange::Full, ScaleDType::F16, "none"},
      {8, true, IntGranularity::PerChannel, 0, SymmetricRange::Full, ScaleDType::BF16, "none"},
      {8, true, IntGranularity::PerChannel, 0, SymmetricRange::Restricted, ScaleDType::F32, "none"},
      {2, false, IntGranularity::PerGroup, 32, SymmetricRange::Full, ScaleDType::F32, "none"},
      {3, true, IntGranularity::PerGroup, 64, SymmetricRange::Full, ScaleDType::F16, "none"},
      {5, false, IntGranularity::PerTensor, 0, SymmetricRange::Full, ScaleDType::F32, "none"},
      {4, true, IntGranularity::PerGroup, 64, SymmetricRange::Full, ScaleDType::F32, "default"},
      {4, false, IntGranularity::PerGroup, 128, SymmetricRange::Full, ScaleDType::F16, "gptq"},
      {4, true, IntGranularity::PerChannel, 0, SymmetricRange::Full, ScaleDType::F32, "llmc"},
  };
  std::ostringstream cfg_text;
  for (const Case& c : cases) {
    const char* gran = c.gran == IntGranularity::PerTensor ? "tensor" : c.gran == IntGranularity::PerChannel ? "channel" : "group";
    const char* sdt = c.sdt == ScaleDType::F32 ? "f32" : c.sdt == ScaleDType::F16 ? "f16" : "bf16";
    cfg_text << c.bits << " " << c.sym << " " << gran << " " << c.group << " "
             << (c.range == SymmetricRange::Full ? "full" : "restricted") << " " << sdt << " " << c.mse << "\n";
  }
  qs::testing::write_text(dir + "/configs.txt", cfg_text.str());
  ASSERT_TRUE(test::run_ref("int_quant_ref.py", dir));
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    IntQuantConfig cfg{c.bits, c.sym, c.gran, c.group, c.range, c.sdt};
    MseSearch search = std::string(c.mse) == "gptq" ? MseSearch::gptq()
                       : std::string(c.mse) == "llmc" ? MseSearch::llm_compressor()
                                                      : MseSearch{};
    const IntMatrix q = quantize_int(w, n, k, cfg, "layer", std::string(c.mse) == "none" ? nullptr : &search);
    const auto codes = test::read_raw<uint8_t>(dir + "/codes_" + std::to_string(i) + ".u8");
    ASSERT_EQ(codes.size(), q.codes.size()) << i;
    size_t mismatches = 0;
    for (size_t j = 0; j < codes.size(); ++j) mismatches += codes[j] != q.codes[j];
    EXPECT_EQ(mismatches, 0u) << "case " << i;
    EXPECT_EQ(q.scales, test::read_raw<float>(dir + "/scales_" + std::to_string(i) + ".f32")) << "case " << i;
    EXPECT_EQ(q.zeros, test::read_raw<uint8_t>(dir + "/zeros_" + std::to_string(i) + ".u8")) << "case " << i;
  }
}

TEST(IntQuant, GIdxDequantizesByGroupOfColumn) {
  // Act-order: column c uses the scale of group g_idx[c].
  IntMatrix q;
  q.bits = 4;
  q.granularity = IntGranularity::PerGroup;
  q.rows = 1;
  q.cols = 4;
  q.group_size = 2;
  q.codes = {9, 9, 9, 9};
  q.scales = {1.0f, 10.0f};
  q.zeros = {8, 8};
  q.g_idx = {1, 0, 0, 1};
  std::vector<float> out(4);
  dequantize_int(q, out);
  EXPECT_EQ(out, (std::vector<float>{10, 1, 1, 10}));
  q.g_idx = {0, 2, 0, 1};
  EXPECT_THROW(dequantize_int(q, out), Error);
}

}  // namespace
}  // namespace qs::formats
