#include "formats/packing.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ref_runner.h"

namespace qs::formats {
namespace {

// A hand-made IntMatrix with codes[r, c] = f(r, c).
IntMatrix make(int bits, int64_t n, int64_t k, int64_t group, bool sym = false) {
  IntMatrix q;
  q.bits = bits;
  q.symmetric = sym;
  q.granularity = group == k ? IntGranularity::PerChannel : IntGranularity::PerGroup;
  q.rows = n;
  q.cols = k;
  q.group_size = group;
  q.codes.resize(n * k);
  const int maxq = (1 << bits) - 1;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) q.codes[r * k + c] = static_cast<uint8_t>((r * 7 + c * 3) % (maxq + 1));
  const int64_t groups = k / group;
  for (int64_t i = 0; i < n * groups; ++i) {
    q.scales.push_back(f16_to_f32(f32_to_f16(0.01f * static_cast<float>(i + 1))));
    q.zeros.push_back(sym ? static_cast<uint8_t>(1 << (bits - 1)) : static_cast<uint8_t>(1 + i % maxq));
  }
  return q;
}

void expect_same(const IntMatrix& a, const IntMatrix& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.bits, b.bits);
  EXPECT_EQ(a.group_size, b.group_size);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.g_idx, b.g_idx);
}

TEST(Packing, CompressedTensorsDocExample) {
  // pack_to_int32's docstring: 8-bit [1, 2] -> unsigned [129, 130] -> 33409.
  IntMatrix q = make(8, 1, 2, 2, true);
  q.codes = {129, 130};
  const CompressedTensorsPacked p = pack_compressed_tensors(q, "l");
  EXPECT_EQ(p.weight_packed, std::vector<int32_t>{33409});
  EXPECT_EQ(q.signed_code(0), 1);
  // 4-bit: element i of a word in bits 4i..4i+3; 9 columns pad the second word with zeros.
  IntMatrix q4 = make(4, 1, 9, 9, true);
  q4.codes = {0, 1, 2, 3, 4, 5, 6, 7, 15};
  const CompressedTensorsPacked p4 = pack_compressed_tensors(q4, "l");
  EXPECT_EQ(p4.weight_packed, (std::vector<int32_t>{0x76543210, 0xF}));
  EXPECT_TRUE(p4.weight_zero_point.empty());
  expect_same(unpack_compressed_tensors(p4, "l"), q4);
}

TEST(Packing, GptqAndAwqHandExamples) {
  IntMatrix q = make(4, 8, 8, 8);
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t c = 0; c < 8; ++c) q.codes[r * 8 + c] = static_cast<uint8_t>(r == 0 ? c : r);
  for (int64_t r = 0; r < 8; ++r) q.zeros[r] = static_cast<uint8_t>(r + 1);
  const GptqPacked g = pack_gptq(q, GptqFormat::V1, "l");
  EXPECT_EQ(g.qweight.size(), 8u);               // [K/8 = 1, N = 8]
  EXPECT_EQ(g.qweight[0], 0x76543210);            // output 0: inputs 0..7 along K
  EXPECT_EQ(g.qweight[3], 0x33333333);
  EXPECT_EQ(g.qzeros, std::vector<int32_t>{0x76543210});  // zeros 1..8 stored minus 1
  EXPECT_EQ(pack_gptq(q, GptqFormat::V2, "l").qzeros, std::vector<int32_t>{static_cast<int32_t>(0x87654321u)});
  EXPECT_EQ(g.g_idx, std::vector<int32_t>(8, 0));
  // AWQ packs along N in the order [0, 2, 4, 6, 1, 3, 5, 7]: input 0 holds codes n = 0..7 of
  // outputs 0..7 -> nibbles 0, 2, 4, 6, 1, 3, 5, 7.
  for (int64_t r = 0; r < 8; ++r) q.codes[r * 8 + 0] = static_cast<uint8_t>(r);
  const AwqPacked a = pack_awq_gemm(q, "l");
  EXPECT_EQ(a.qweight.size(), 8u);  // [K = 8, N/8 = 1]
  EXPECT_EQ(a.qweight[0], 0x75316420);
  EXPECT_EQ(a.qzeros, std::vector<int32_t>{static_cast<int32_t>(0x86427531u)});  // zeros 1..8
  expect_same(unpack_awq_gemm(a, "l"), q);
  // v1 cannot hold a zero point of 0.
  q.zeros[3] = 0;
  EXPECT_THROW(pack_gptq(q, GptqFormat::V1, "model.layers.3.self_attn.q_proj"), Error);
  EXPECT_NO_THROW(pack_gptq(q, GptqFormat::V2, "l"));
}

TEST(Packing, GptqActOrderRoundTrip) {
  IntMatrix q = make(4, 16, 64, 16);
  q.g_idx.resize(64);
  for (int64_t c = 0; c < 64; ++c) q.g_idx[c] = static_cast<int32_t>((c * 5) % 4);  // permuted groups
  const GptqPacked p = pack_gptq(q, GptqFormat::V1, "l");
  EXPECT_EQ(p.g_idx, q.g_idx);
  const IntMatrix back = unpack_gptq(p, "l");
  expect_same(back, q);
  std::vector<float> a(q.codes.size()), b(q.codes.size());
  dequantize_int(q, a);
  dequantize_int(back, b);
  EXPECT_EQ(a, b);
}

TEST(Packing, ShapeErrorsNameTheLayer) {
  IntMatrix q = make(4, 12, 64, 32);
  try {
    pack_awq_gemm(q, "model.layers.0.mlp.gate_proj");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.gate_proj"), std::string::npos);
  }
  EXPECT_THROW(pack_gptq(make(3, 32, 64, 32), GptqFormat::V2, "l"), Error);
  EXPECT_THROW(pack_gptq(make(4, 16, 60, 60), GptqFormat::V2, "l"), Error);  // K % 8
  GptqPacked p = pack_gptq(make(4, 16, 64, 32), GptqFormat::V2, "l");
  p.qzeros.pop_back();
  EXPECT_THROW(unpack_gptq(p, "l"), Error);
}

TEST(Packing, MatchesPythonReference) {
  struct Case {
    int bits;
    int64_t n, k, group;
  };
  const std::vector<Case> cases = {Case{4, 64, 512, 128}, Case{8, 32, 256, 256}, Case{2, 32, 256, 64},
                                   Case{4, 24, 100, 100}, Case{3, 20, 90, 30}};
  const test::RefDir root_holder("pack-ref");
  const std::string& root = root_holder.path;
  std::vector<IntMatrix> mats;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    // Real quantized weights (asymmetric, f16 scales) rather than synthetic codes.
    std::vector<float> w = test::weight_like(c.n, c.k, 1000 + i);
    IntQuantConfig cfg;
    cfg.bits = c.bits;
    cfg.symmetric = false;
    cfg.granularity = c.group == c.k ? IntGranularity::PerChannel : IntGranularity::PerGroup;
    cfg.group_size = c.group;
    cfg.scale_dtype = ScaleDType::F16;
    mats.push_back(quantize_int(w, c.n, c.k, cfg, "layer"));
    const IntMatrix& q = mats.back();
    const std::string dir = root + "/case_" + std::to_string(i);
    std::filesystem::create_directories(dir);
    test::write_raw(dir + "/codes.u8", q.codes);
    test::write_raw(dir + "/zeros.u8", q.zeros);
    test::write_raw(dir + "/scales.f32", q.scales);
    std::ostringstream meta;
    meta << c.n << " " << c.k << " " << c.bits << " " << c.group;
    qs::testing::write_text(dir + "/meta.txt", meta.str());
  }
  ASSERT_TRUE(test::run_ref("packing_ref.py", root));

  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const IntMatrix& q = mats[i];
    const std::string dir = root + "/case_" + std::to_string(i);
    SCOPED_TRACE(::testing::Message() << c.bits << " bits [" << c.n << ", " << c.k << "] group " << c.group);
    const CompressedTensorsPacked ct = pack_compressed_tensors(q, "layer");
    EXPECT_EQ(ct.weight_packed, test::read_raw<int32_t>(dir + "/ct_packed.i32"));
    EXPECT_EQ(ct.weight_zero_point, test::read_raw<int32_t>(dir + "/ct_zp.i32"));
    expect_same(unpack_compressed_tensors(ct, "layer"), q);
    const int64_t per_word = 32 / c.bits;
    if ((c.bits == 2 || c.bits == 4 || c.bits == 8) && c.k % per_word == 0 && c.n % per_word == 0) {
      std::vector<uint16_t> f16_scales = test::read_raw<uint16_t>(dir + "/f16_scales.f16");
      for (GptqFormat fmt : {GptqFormat::V1, GptqFormat::V2}) {
        const GptqPacked g = pack_gptq(q, fmt, "layer");
        EXPECT_EQ(g.qweight, test::read_raw<int32_t>(dir + "/gptq_qweight.i32"));
        EXPECT_EQ(g.qzeros, test::read_raw<int32_t>(dir + (fmt == GptqFormat::V1 ? "/gptq_qzeros_v1.i32"
                                                                                   : "/gptq_qzeros_v2.i32")));
        EXPECT_EQ(g.scales, f16_scales);
        IntMatrix back = unpack_gptq(g, "layer");
        back.symmetric = q.symmetric;
        expect_same(back, q);
      }
    } else if (c.bits == 4) {
      EXPECT_THROW(pack_gptq(q, GptqFormat::V2, "layer"), Error);
    }
    if (c.bits == 4 && c.n % 8 == 0) {
      const AwqPacked a = pack_awq_gemm(q, "layer");
      EXPECT_EQ(a.qweight, test::read_raw<int32_t>(dir + "/awq_qweight.i32"));
      EXPECT_EQ(a.qzeros, test::read_raw<int32_t>(dir + "/awq_qzeros.i32"));
      EXPECT_EQ(a.scales, test::read_raw<uint16_t>(dir + "/f16_scales.f16"));
      expect_same(unpack_awq_gemm(a, "layer"), q);
    }
  }
}

}  // namespace
}  // namespace qs::formats
