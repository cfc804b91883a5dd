#include "quantize/algorithms/smoothquant.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "quantize/algorithms/calib_stats.h"
#include "quantize/algorithms/gptq.h"
#include "quantize/algorithms/hessian.h"
#include "quantize/algorithms/scale_fold.h"
#include "quantize_test_util.h"

namespace qs::quant {
namespace {

using formats::IntGranularity;
using formats::IntQuantConfig;

// A layer whose input (a norm's output x * g) carries outlier channels as LLM hidden states do:
// six channels about `gain` times larger than the rest on every token (with a per-channel
// sign). `outlier_weight` scales the weight columns that read them: in LLMs those columns are
// typically small, so that the outlier channels carry a minority of the output.
struct OutlierLayer {
  int64_t rows = 1024, k = 512, n = 256;
  std::vector<float> x, g, w;
};

OutlierLayer outlier_layer(uint64_t seed, float gain, float outlier_weight) {
  OutlierLayer l;
  Rng rng(seed);
  l.x.resize(l.rows * l.k);
  l.g.resize(l.k);
  for (auto& v : l.g) v = static_cast<float>(0.5 + rng.uniform());
  std::vector<int64_t> outliers;
  while (outliers.size() < 6) {
    const int64_t c = static_cast<int64_t>(rng.below(l.k));
    if (std::find(outliers.begin(), outliers.end(), c) == outliers.end()) outliers.push_back(c);
  }
  for (int64_t r = 0; r < l.rows; ++r)
    for (int64_t c = 0; c < l.k; ++c) l.x[r * l.k + c] = static_cast<float>(rng.normal());
  for (size_t i = 0; i < outliers.size(); ++i) {
    const double sign = i % 2 ? -1.0 : 1.0;
    for (int64_t r = 0; r < l.rows; ++r)
      l.x[r * l.k + outliers[i]] = static_cast<float>(sign * gain * (1.0 + 0.3 * rng.normal()));
  }
  l.w = test::random_weight(l.n, l.k, seed + 1);
  for (int64_t c : outliers)
    for (int64_t r = 0; r < l.n; ++r) l.w[r * l.k + c] *= outlier_weight;
  return l;
}

std::vector<float> times_norm(const OutlierLayer& l, const std::vector<float>& g) {
  std::vector<float> a(l.x.size());
  for (int64_t r = 0; r < l.rows; ++r)
    for (int64_t c = 0; c < l.k; ++c) a[r * l.k + c] = l.x[r * l.k + c] * g[c];
  return a;
}

IntQuantConfig int8(IntGranularity gran, formats::SymmetricRange range) {
  IntQuantConfig c;
  c.bits = 8;
  c.symmetric = true;
  c.granularity = gran;
  c.range = range;
  return c;
}

// Per-token int8 activations (restricted range, amax / 127), fake-quantized.
std::vector<float> per_token_int8(const std::vector<float>& a, int64_t rows, int64_t k) {
  return formats::fake_quant_int(a, rows, k, int8(IntGranularity::PerChannel, formats::SymmetricRange::Restricted), "act");
}
const IntQuantConfig kWeightInt8 = int8(IntGranularity::PerChannel, formats::SymmetricRange::Full);

// ||A_q W_q^T - A W^T|| / ||A W^T|| with A_q, W_q already fake-quantized.
double w8a8_error(const std::vector<float>& a_q, const std::vector<float>& w_q, const std::vector<float>& a,
                  const std::vector<float>& w, int64_t rows, int64_t k, int64_t n) {
  std::vector<float> y(rows * n), y_q(rows * n);
  sgemm(false, true, rows, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, y.data(), n);
  sgemm(false, true, rows, n, k, 1.0f, a_q.data(), k, w_q.data(), k, 0.0f, y_q.data(), n);
  double err = 0, ref = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err += (static_cast<double>(y_q[i]) - y[i]) * (static_cast<double>(y_q[i]) - y[i]);
    ref += static_cast<double>(y[i]) * y[i];
  }
  return std::sqrt(err / ref);
}

TEST(SmoothQuant, W8A8ErrorFallsAndMatchesTorch) {
  struct Case {
    float gain, outlier_weight, min_factor;
  };
  // Outlier channels ~100x with small weight columns (as in LLMs), then with ordinary ones.
  for (const Case& c : {Case{100.0f, 0.3f, 5.0f}, Case{60.0f, 1.0f, 2.5f}}) {
    const OutlierLayer l = outlier_layer(7, c.gain, c.outlier_weight);
    const std::vector<float> a = times_norm(l, l.g);
    ChannelStats stats(l.k, "layer.input");
    stats.add(a, l.rows);
    const std::vector<LinearWeight> lin = {{l.w, l.n}};
    const std::vector<float> s = smoothquant_scales(stats.absmax(), weight_column_absmax(lin, l.k));
    std::vector<float> g_s = l.g, w_s = l.w;
    fold_scales_into_norm(g_s, s);
    scale_input_columns(w_s, l.n, l.k, s);
    const std::vector<float> a_s = times_norm(l, g_s);

    const double before = w8a8_error(per_token_int8(a, l.rows, l.k), formats::fake_quant_int(l.w, l.n, l.k, kWeightInt8, "w"), a,
                                     l.w, l.rows, l.k, l.n);
    const double after = w8a8_error(per_token_int8(a_s, l.rows, l.k), formats::fake_quant_int(w_s, l.n, l.k, kWeightInt8, "w"),
                                    a, l.w, l.rows, l.k, l.n);
    const double equivalence = w8a8_error(a_s, w_s, a, l.w, l.rows, l.k, l.n);  // smoothed float layer

    // SmoothQuant, then GPTQ (8-bit per-channel) on the smoothed layer, vs RTN.
    HessianAccumulator hess(l.k, "layer");
    hess.add(a_s, l.rows);
    GptqOptions opt;
    opt.quant = kWeightInt8;
    const GptqResult gq = gptq_quantize(w_s, l.n, l.k, hess.take(), opt, "layer");
    std::vector<float> w_gptq(w_s.size());
    formats::dequantize_int(gq.q, w_gptq);
    const double after_gptq = w8a8_error(per_token_int8(a_s, l.rows, l.k), w_gptq, a, l.w, l.rows, l.k, l.n);

    const test::RefDir dir("smoothquant-ref");
    test::write_raw(dir.path + "/x.f32", l.x);
    test::write_raw(dir.path + "/g.f32", l.g);
    test::write_raw(dir.path + "/w.f32", l.w);
    qs::testing::write_text(dir.path + "/config.txt", std::to_string(l.rows) + " " + std::to_string(l.k) + " " +
                                                          std::to_string(l.n) + " 0.5");
    ASSERT_TRUE(test::run_ref("smoothquant_ref.py", dir.path));
    EXPECT_EQ(s, test::read_raw<float>(dir.path + "/scales_ref.f32"));  // alpha 0.5: sqrt both sides
    std::istringstream ref(test::read_text(dir.path + "/errors_ref.txt"));
    double before_ref = 0, after_ref = 0, equivalence_ref = 0;
    ref >> before_ref >> after_ref >> equivalence_ref;

    std::printf("  outliers %.0fx, their weight columns x%.1f: W8A8 output error %.5f -> %.5f after smoothing "
                "(%.2fx lower; torch %.5f -> %.5f, %.2fx); smoothed float layer %.1e from the original (torch "
                "%.1e); SmoothQuant + GPTQ %.5f vs + RTN %.5f\n",
                c.gain, c.outlier_weight, before, after, before / after, before_ref, after_ref, before_ref / after_ref,
                equivalence, equivalence_ref, after_gptq, after);
    EXPECT_GT(before / after, c.min_factor);
    EXPECT_NEAR(before, before_ref, 1e-4 * before_ref);
    EXPECT_NEAR(after, after_ref, 1e-4 * after_ref);
    EXPECT_LT(equivalence, 1e-6);
    EXPECT_LE(after_gptq, after);
  }
}

TEST(SmoothQuant, ScalesAndClamps) {
  // s = act^a / max(w, 1e-5)^(1 - a), clamped to >= 1e-5.
  const std::vector<float> act = {4.0f, 0.0f, 100.0f, 1.0f}, w = {1.0f, 0.5f, 0.0f, 4.0f};
  const std::vector<float> s = smoothquant_scales(act, w);
  EXPECT_EQ(s[0], 2.0f);
  EXPECT_EQ(s[1], 1e-5f);  // a channel never active
  EXPECT_EQ(s[2], 10.0f / std::sqrt(1e-5f));
  EXPECT_EQ(s[3], 0.5f);
  SmoothQuantOptions opt;
  opt.alpha = 1.0f;  // all difficulty to the weights: s = act
  EXPECT_EQ(smoothquant_scales(act, w, opt), (std::vector<float>{4.0f, 1e-5f, 100.0f, 1.0f}));
  opt.alpha = 0.0f;  // s = 1 / w
  EXPECT_EQ(smoothquant_scales(act, w, opt)[3], 0.25f);
  opt.alpha = 1.5f;
  EXPECT_THROW(smoothquant_scales(act, w, opt), Error);
  EXPECT_THROW(smoothquant_scales(act, std::vector<float>{1.0f}), Error);
  const std::vector<float> w2 = {1, -5, 2, 3, -4, 0.5f};  // two linears [1, 3] and [1, 3]
  const std::vector<LinearWeight> lin = {{std::span<const float>(w2).subspan(0, 3), 1},
                                         {std::span<const float>(w2).subspan(3, 3), 1}};
  EXPECT_EQ(weight_column_absmax(lin, 3), (std::vector<float>{3, 5, 2}));
}

TEST(ChannelStats, AccumulatesAndRejectsNonFinite) {
  const int64_t k = 200;
  const std::vector<float> x1 = test::correlated_activations(300, k, 1), x2 = test::correlated_activations(77, k, 2);
  ThreadPool one(1), two(2);
  ChannelStats a(k, "l"), b(k, "l");
  a.add(x1, 300, one);
  a.add(x2, 77, one);
  b.add(x1, 300, two);
  b.add(x2, 77, two);
  EXPECT_EQ(a.count(), 377);
  EXPECT_EQ(a.mean_abs(), b.mean_abs());
  for (int64_t c = 0; c < k; ++c) {
    float amax = 0, mn = INFINITY, mx = -INFINITY;
    double sum = 0;
    for (const auto* x : {&x1, &x2})
      for (size_t r = 0; r < x->size() / k; ++r) {
        const float v = (*x)[r * k + c];
        amax = std::max(amax, std::fabs(v));
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += std::fabs(v);
      }
    EXPECT_EQ(a.absmax()[c], amax);
    EXPECT_EQ(a.min()[c], mn);
    EXPECT_EQ(a.max()[c], mx);
    EXPECT_EQ(a.mean_abs()[c], static_cast<float>(sum / 377));
  }
  EXPECT_EQ(a.tensor_absmax(), *std::max_element(a.absmax().begin(), a.absmax().end()));
  std::vector<float> bad = x2;
  bad[3 * k + 150] = -INFINITY;
  try {
    a.add(bad, 77);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "activations of layer 'l' have a non-finite value at row 3, channel 150");
  }
  EXPECT_EQ(a.count(), 377);
  EXPECT_EQ(a.mean_abs(), b.mean_abs());
}

}  // namespace
}  // namespace qs::quant
