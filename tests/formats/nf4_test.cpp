#include "formats/nf4.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

int32_t ordered_bits(float f) {  // monotonic integer image of a float, for ulp distances
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i < 0 ? std::numeric_limits<int32_t>::min() - i : i;
}

TEST(Bnb4, CodebooksAndTrees) {
  const auto& nf4 = bnb4_codebook(Bnb4Type::NF4);
  EXPECT_EQ(nf4[0], -1.0f);
  EXPECT_EQ(nf4[7], 0.0f);
  EXPECT_EQ(nf4[15], 1.0f);
  for (int c = 0; c < 16; ++c) EXPECT_EQ(bnb_nf4_code(nf4[c]), c) << c;
  const auto& fp4 = bnb4_codebook(Bnb4Type::FP4);
  EXPECT_EQ(fp4[3], 1.0f);            // 12 / 12
  EXPECT_EQ(fp4[2], 8.0f / 12.0f);    // 0b010 = 8
  EXPECT_EQ(fp4[1], 0.0625f / 12.0f); // the subnormal
  EXPECT_EQ(fp4[9], -fp4[1]);
  for (int c = 0; c < 16; ++c)
    if (c != 8) {
      EXPECT_EQ(bnb_fp4_code(fp4[c]), c) << c;  // -0 encodes as +0 (x < 0 is false)
    }
  EXPECT_EQ(bnb_fp4_code(-0.0f), 0);
  // Ties: a value exactly on a threshold takes the lower code (strict >).
  const auto& t = bnb_nf4_thresholds();
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(bnb_nf4_code(t[i]), i);
    EXPECT_EQ(bnb_nf4_code(std::nextafter(t[i], 2.0f)), i + 1);
  }
  // NaN (an all-zero block normalizes to 0 * inf) takes code 0 in both trees.
  EXPECT_EQ(bnb_nf4_code(std::nanf("")), 0);
  EXPECT_EQ(bnb_fp4_code(std::nanf("")), 0);
}

TEST(Bnb4, DynamicMapShape) {
  const auto& map = bnb_dynamic_map();
  for (int i = 1; i < 256; ++i) EXPECT_LT(map[i - 1], map[i]) << i;
  EXPECT_EQ(map[255], 1.0f);
  int zeros = 0;
  for (float v : map) zeros += v == 0.0f;
  EXPECT_EQ(zeros, 1);
  // Largest magnitude below 1: mean of the last two of linspace(0.1, 1, 65) = 0.99296875.
  // The map holds +1 but not -1: its most negative value is -0.99296875.
  EXPECT_EQ(map[254], 0.99296875f);
  EXPECT_EQ(map[0], -0.99296875f);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(bnb_dynamic_code(map[i], map), i) << i;
}

TEST(Bnb4, PackingIsHighNibbleFirstAndDoubleQuantRoundTrips) {
  std::vector<float> w(128);
  for (int i = 0; i < 128; ++i) w[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i + 1);
  const Bnb4Matrix q = quantize_bnb4(w, 2, 64, Bnb4Type::NF4, false, "l");
  EXPECT_EQ(q.absmax, (std::vector<float>{64.0f, 128.0f}));
  EXPECT_EQ(q.packed.size(), 64u);
  EXPECT_EQ(q.code(0), q.packed[0] >> 4);
  EXPECT_EQ(q.code(1), q.packed[0] & 15);
  EXPECT_EQ(q.code(63), 0);   // -64 / 64 = -1
  EXPECT_EQ(q.code(126), 15); // +127 / 128 rounds to 1.0
  const Bnb4Matrix dq = quantize_bnb4(w, 2, 64, Bnb4Type::NF4, true, "l");
  EXPECT_TRUE(dq.nested);
  EXPECT_EQ(dq.nested_offset, 96.0f);
  EXPECT_EQ(dq.packed, q.packed);  // codes come from the exact absmax
  // absmax - offset = [-32, 32] -> normalized [-1, 1]: +1 is in the map, -1 is not.
  EXPECT_EQ(dq.nested_absmax.absmax, std::vector<float>{32.0f});
  EXPECT_EQ(dq.nested_absmax.codes, (std::vector<uint8_t>{0, 255}));
  const std::vector<float> absmax_hat = bnb4_block_absmax(dq);
  EXPECT_EQ(absmax_hat[0], -0.99296875f * 32.0f + 96.0f);
  EXPECT_EQ(absmax_hat[1], 128.0f);
  EXPECT_THROW(quantize_bnb4(w, 2, 64, Bnb4Type::NF4, false, "l", 48), Error);
}

TEST(Bnb4, MatchesPythonReference) {
  const test::RefDir dir_holder("bnb-ref");
  const std::string& dir = dir_holder.path;
  // Probe values: every threshold and its neighbours, every code value, dynamic-map midpoints.
  std::vector<float> probe;
  auto add_around = [&](float v) {
    probe.push_back(v);
    probe.push_back(std::nextafter(v, 2.0f));
    probe.push_back(std::nextafter(v, -2.0f));
  };
  for (float t : bnb_nf4_thresholds()) add_around(t);
  for (float t : bnb_fp4_magnitude_thresholds()) {
    add_around(t);
    add_around(-t);
  }
  const auto& map = bnb_dynamic_map();
  for (int i = 0; i < 256; ++i) {
    add_around(map[i]);
    if (i < 255) add_around((map[i] + map[i + 1]) * 0.5f);
  }
  Rng rng(3);
  for (int i = 0; i < 20000; ++i) probe.push_back(static_cast<float>(rng.uniform() * 2.4 - 1.2));
  for (int i = 0; i < 5000; ++i) probe.push_back(static_cast<float>((rng.uniform() * 2 - 1) * 1e-3));
  probe.push_back(std::nanf(""));
  probe.push_back(0.0f);
  probe.push_back(-0.0f);
  test::write_raw(dir + "/probe.f32", probe);

  const std::vector<std::pair<int64_t, int64_t>> cases = {{96, 512}, {3, 50}, {3, 51}, {7, 64}};
  std::ostringstream text;
  std::vector<std::vector<float>> mats;
  for (size_t c = 0; c < cases.size(); ++c) {
    auto [n, k] = cases[c];
    mats.push_back(test::weight_like(n, k, 100 + c));
    if (c == 3)  // several all-zero blocks, one block of a single outlier
      for (int64_t i = 128; i < 320; ++i) mats[c][i] = i == 300 ? 5.0f : 0.0f;
    test::write_raw(dir + "/matrix_" + std::to_string(c) + ".f32", mats[c]);
    text << n << " " << k << "\n";
  }
  qs::testing::write_text(dir + "/cases.txt", text.str());
  ASSERT_TRUE(test::run_ref("bnb_ref.py", dir));

  // The map equals the exactly rounded definition, and bitsandbytes' torch evaluation to 2 ulp.
  const auto exact = test::read_raw<float>(dir + "/map_exact.f32");
  const auto torch_map = test::read_raw<float>(dir + "/map_torch.f32");
  ASSERT_EQ(exact.size(), 256u);
  ASSERT_EQ(torch_map.size(), 256u);
  int max_ulp = 0;
  for (int i = 0; i < 256; ++i) {
    EXPECT_TRUE(test::same_bits(exact[i], map[i])) << i << ": " << exact[i] << " vs " << map[i];
    max_ulp = std::max(max_ulp, std::abs(ordered_bits(torch_map[i]) - ordered_bits(map[i])));
  }
  EXPECT_LE(max_ulp, 2);
  std::vector<float> book(bnb4_codebook(Bnb4Type::NF4).begin(), bnb4_codebook(Bnb4Type::NF4).end());
  EXPECT_EQ(book, test::read_raw<float>(dir + "/nf4_book.f32"));
  book.assign(bnb4_codebook(Bnb4Type::FP4).begin(), bnb4_codebook(Bnb4Type::FP4).end());
  EXPECT_EQ(book, test::read_raw<float>(dir + "/fp4_book.f32"));

  const auto p_nf4 = test::read_raw<uint8_t>(dir + "/probe_nf4.u8");
  const auto p_fp4 = test::read_raw<uint8_t>(dir + "/probe_fp4.u8");
  const auto p_dyn = test::read_raw<uint8_t>(dir + "/probe_dynamic.u8");
  ASSERT_EQ(p_nf4.size(), probe.size());
  ASSERT_EQ(p_fp4.size(), probe.size());
  ASSERT_EQ(p_dyn.size(), probe.size());
  for (size_t i = 0; i < probe.size(); ++i) {
    EXPECT_EQ(bnb_nf4_code(probe[i]), p_nf4[i]) << "nf4 " << probe[i];
    EXPECT_EQ(bnb_fp4_code(probe[i]), p_fp4[i]) << "fp4 " << probe[i];
    EXPECT_EQ(bnb_dynamic_code(probe[i], map), p_dyn[i]) << "dynamic " << probe[i];
  }

  for (size_t c = 0; c < cases.size(); ++c) {
    auto [n, k] = cases[c];
    for (Bnb4Type type : {Bnb4Type::NF4, Bnb4Type::FP4}) {
      const std::string p = dir + "/" + (type == Bnb4Type::NF4 ? "nf4_" : "fp4_") + std::to_string(c) + "_";
      const Bnb4Matrix q = quantize_bnb4(mats[c], n, k, type, false, "layer");
      EXPECT_EQ(q.packed, test::read_raw<uint8_t>(p + "packed.u8")) << p;
      EXPECT_EQ(q.absmax, test::read_raw<float>(p + "absmax.f32")) << p;
      std::vector<float> deq(n * k);
      dequantize_bnb4(q, deq);
      EXPECT_EQ(deq, test::read_raw<float>(p + "deq.f32")) << p;

      const Bnb4Matrix dq = quantize_bnb4(mats[c], n, k, type, true, "layer");
      EXPECT_EQ(dq.packed, q.packed) << p;
      EXPECT_EQ(dq.nested_offset, test::read_raw<float>(p + "offset.f32").at(0)) << p;
      EXPECT_EQ(dq.nested_absmax.codes, test::read_raw<uint8_t>(p + "codes2.u8")) << p;
      EXPECT_EQ(dq.nested_absmax.absmax, test::read_raw<float>(p + "absmax2.f32")) << p;
      dequantize_bnb4(dq, deq);
      EXPECT_EQ(deq, test::read_raw<float>(p + "deq2.f32")) << p;
      EXPECT_EQ(deq, fake_quant_bnb4(mats[c], n, k, type, true, "layer"));
    }
  }
}

}  // namespace
}  // namespace qs::formats
