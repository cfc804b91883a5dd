// Every scheme's low-bit kernel path against its fake-quant reference (quantize, dequantize,
// f32 math) on random shapes, including sizes that are not multiples of any vector width.
#include "quantize/qlinear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"

namespace qs::quant {
namespace {

std::vector<float> random_matrix(int64_t n, int64_t k, uint64_t seed, double outlier_scale = 0) {
  Rng rng(seed);
  std::vector<float> w(n * k);
  for (auto& v : w) v = static_cast<float>(0.05 * rng.normal());
  if (outlier_scale > 0)
    for (int64_t i = 0; i < n * k; i += 37) w[i] *= static_cast<float>(outlier_scale);
  return w;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Shape {
  int64_t M, N, K;
};

class SchemeKernels : public ::testing::TestWithParam<std::string> {};

TEST_P(SchemeKernels, KernelMatchesFakeQuantReference) {
  const Scheme s = find_scheme(GetParam());
  ThreadPool pool(2);
  const std::vector<Shape> shapes = {{1, 1, 64}, {3, 7, 64}, {17, 64, 128}, {5, 33, 96}, {2, 19, 160}, {1, 48, 256}};
  int ran = 0;
  for (const Shape& sh : shapes) {
    if (!fits(s, sh.K)) continue;
    ++ran;
    auto w = random_matrix(sh.N, sh.K, 1 + sh.N * 131 + sh.K, 8.0);
    std::vector<float> bias(sh.N);
    for (int64_t i = 0; i < sh.N; ++i) bias[i] = 0.01f * static_cast<float>(i);
    RtnOptions o;
    o.static_act_scale = 0.02f;
    auto lin = quantize_rtn("layer", w, sh.N, sh.K, s, o, bias);
    // Activations with a few large channels (LLM.int8() outliers live there).
    auto x = random_matrix(sh.M, sh.K, 99 + sh.M, 0);
    for (auto& v : x) v *= 20.0f;
    for (int64_t m = 0; m < sh.M; ++m) x[m * sh.K + 3] = 9.0f;  // above the 6.0 threshold
    std::vector<float> fast(sh.M * sh.N), ref(sh.M * sh.N);
    lin->forward(x.data(), sh.M, fast.data(), pool);
    lin->reference_forward(x.data(), sh.M, ref.data());
    // Same arithmetic up to f32 summation order (and, for the fp8/int8 per-token scales, the
    // division x / s done once per element either way).
    EXPECT_LT(rel_diff(fast, ref), 2e-5) << s.name << " M=" << sh.M << " N=" << sh.N << " K=" << sh.K;
  }
  EXPECT_GT(ran, 2) << "too few shapes fit " << s.name;
}

// The quantized layer stays as close to the f32 layer as its format's step size allows: for
// Gaussian weights and activations the output error relative to the output is about the RMS
// relative rounding error of a weight (8-bit: ~1%, fp8 e4m3 ~3.5% per operand, 4-bit ~10-20%,
// 3-bit ~25-40%).
TEST_P(SchemeKernels, QuantizationErrorMatchesItsBitWidth) {
  const Scheme s = find_scheme(GetParam());
  ThreadPool pool(2);
  const int64_t M = 8, N = 64, K = 256;
  auto w = random_matrix(N, K, 7);
  auto x = random_matrix(M, K, 8);
  RtnOptions o;
  o.static_act_scale = 0.2f / 448;
  auto lin = quantize_rtn("layer", w, N, K, s, o);
  std::vector<float> y(M * N), exact(M * N);
  lin->forward(x.data(), M, y.data(), pool);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * w[n * K + k];
      exact[m * N + n] = static_cast<float>(acc);
    }
  const double err = rel_diff(y, exact);
  const double bound = s.weight == WeightFormat::Fp8E4M3 ? 0.08 : s.bits >= 8 ? 0.03 : s.bits == 4 ? 0.25 : 0.5;
  EXPECT_LT(err, bound) << s.name;
  EXPECT_GT(err, 1e-4) << s.name << ": suspiciously exact";
}

INSTANTIATE_TEST_SUITE_P(All, SchemeKernels,
                         ::testing::Values("w8a8-fp8", "w8a8-fp8-static", "w8a8-int8", "w8a16-int8", "w4a16", "w3a16",
                                           "nf4", "nf4-dq", "fp4", "fp4-dq", "llm-int8", "mxfp4", "nvfp4", "q8_0",
                                           "q4_0"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(SchemeKernels, AsymmetricGroupsAndActOrder) {
  ThreadPool pool(2);
  Scheme s = with_overrides(find_scheme("w4a16"), 32, 0);
  auto w = random_matrix(24, 128, 5, 4.0);
  formats::IntMatrix q = formats::quantize_int(w, 24, 128, int_config(s, 128), "l");
  // A permuted group assignment as GPTQ act-order produces (groups still of 32 columns).
  Rng rng(3);
  std::vector<int32_t> perm(128);
  std::iota(perm.begin(), perm.end(), 0);
  for (int i = 127; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  q.g_idx.resize(128);
  for (int c = 0; c < 128; ++c) q.g_idx[perm[c]] = c / 32;
  auto lin = make_int_linear("l", q, s);
  auto x = random_matrix(4, 128, 8);
  std::vector<float> fast(4 * 24), ref(4 * 24);
  lin->forward(x.data(), 4, fast.data(), pool);
  lin->reference_forward(x.data(), 4, ref.data());
  EXPECT_LT(rel_diff(fast, ref), 2e-5);
}

TEST(SchemeKernels, LayerThatDoesNotFitIsNamed) {
  auto w = random_matrix(4, 172, 1);
  try {
    quantize_rtn("model.layers.0.mlp.down_proj", w, 4, 172, find_scheme("w4a16"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.layers.0.mlp.down_proj': group size 128 does not divide input size 172"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(quantize_rtn("l", w, 4, 172, find_scheme("q4_0")), Error);
  EXPECT_NO_THROW(quantize_rtn("l", w, 4, 172, find_scheme("nf4")));  // bitsandbytes blocks straddle rows
}

TEST(Schemes, UnknownNamesListTheValidOnes) {
  try {
    find_scheme("int4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: w8a8-fp8"), std::string::npos);
  }
  try {
    check_algorithm(find_scheme("nf4"), "gptq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not apply to scheme nf4"), std::string::npos);
  }
  EXPECT_THROW(check_algorithm(find_scheme("w4a16"), "hqq"), Error);
  EXPECT_THROW(with_overrides(find_scheme("w8a8-fp8"), 64, -1), Error);
  EXPECT_THROW(with_overrides(find_scheme("w4a16"), 12, -1), Error);
  EXPECT_EQ(with_overrides(find_scheme("w4a16"), 64, 0).full_name(), "w4a16-g64-asym");
}

}  // namespace
}  // namespace qs::quant
