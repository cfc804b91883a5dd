#include "quantize/algorithms/awq.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "quantize/algorithms/scale_fold.h"
#include "quantize_test_util.h"

namespace qs::quant {
namespace {

using formats::IntGranularity;
using formats::IntQuantConfig;

IntQuantConfig awq_config(int bits, bool sym, int64_t group) {
  IntQuantConfig c;
  c.bits = bits;
  c.symmetric = sym;
  c.granularity = IntGranularity::PerGroup;
  c.group_size = group;
  return c;
}

// Largest distance in units in the last place between two float vectors.
int64_t max_ulp_distance(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int32_t ia, ib;
    std::memcpy(&ia, &a[i], 4);
    std::memcpy(&ib, &b[i], 4);
    worst = std::max<int64_t>(worst, std::abs(static_cast<int64_t>(ia) - ib));
  }
  return worst;
}

struct AwqCase {
  int bits;
  bool sym;
  int64_t group;
  bool duo;
  std::vector<int64_t> rows_of_linears;
  bool clip;
};

TEST(Awq, MatchesTorchReference) {
  const int64_t rows = 1024, k = 256;
  const std::vector<AwqCase> cases = {
      {4, false, 128, true, {128, 128}, true},  // AutoAWQ's default config, two linears (gate/up)
      {3, true, 64, false, {96}, true},
      {4, false, 64, true, {64, 32, 32}, false},  // q/k/v-like
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const AwqCase& c = cases[ci];
    const test::RefDir dir("awq-ref");
    const std::vector<float> x = test::correlated_activations(rows, k, 200 + ci, 8, 10.0f);
    std::vector<std::vector<float>> ws;
    std::vector<LinearWeight> linears;
    std::ostringstream cfg;
    cfg << rows << " " << k << " " << c.bits << " " << c.sym << " " << c.group << " 20 " << c.duo << " "
        << c.rows_of_linears.size() << "\n";
    for (size_t l = 0; l < c.rows_of_linears.size(); ++l) {
      ws.push_back(test::random_weight(c.rows_of_linears[l], k, 300 + 10 * ci + l));
      cfg << c.rows_of_linears[l] << "\n";
      test::write_raw(dir.path + "/w_" + std::to_string(l) + ".f32", ws.back());
    }
    for (size_t l = 0; l < ws.size(); ++l) linears.push_back({ws[l], c.rows_of_linears[l]});
    const std::vector<float> x_scale = awq_activation_scale(x, rows, k);
    const std::vector<float> w_scale = awq_weight_scale(linears, k, c.group);
    test::write_raw(dir.path + "/x.f32", x);
    test::write_raw(dir.path + "/x_scale.f32", x_scale);
    test::write_raw(dir.path + "/w_scale.f32", w_scale);
    std::vector<float> candidates;
    for (int i = 0; i < 20; ++i) {
      const std::vector<float> cand = awq_candidate_scales(x_scale, w_scale, i / 20.0, c.duo);
      candidates.insert(candidates.end(), cand.begin(), cand.end());
    }
    test::write_raw(dir.path + "/candidates.f32", candidates);
    qs::testing::write_text(dir.path + "/config.txt", cfg.str());
    AwqClipOptions clip_opt;
    if (c.clip) qs::testing::write_text(dir.path + "/clip.txt", "20 0.5 512");
    ASSERT_TRUE(test::run_ref("awq_ref.py", dir.path));

    // Statistics: f64 sums here, f32 in torch.
    const auto x_scale_ref = test::read_raw<float>(dir.path + "/x_scale_ref.f32");
    const auto w_scale_ref = test::read_raw<float>(dir.path + "/w_scale_ref.f32");
    ASSERT_EQ(x_scale_ref.size(), static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_NEAR(x_scale[j], x_scale_ref[j], 2e-6 * x_scale_ref[j]) << j;
      EXPECT_NEAR(w_scale[j], w_scale_ref[j], 2e-6 * w_scale_ref[j]) << j;
    }

    // Scale search from identical statistics.
    const AwqLinearsLoss loss(x, rows, k, linears, awq_config(c.bits, c.sym, c.group), "mlp");
    AwqScaleOptions opt;
    opt.duo_scaling = c.duo;
    const AwqScaleResult r = awq_search_scales(x_scale, w_scale, loss, opt);
    const auto losses_ref = test::read_raw<double>(dir.path + "/losses_ref.f64");
    const int best_ref = std::stoi(test::read_text(dir.path + "/best_ref.txt"));
    const auto scales_ref = test::read_raw<float>(dir.path + "/scales_ref.f32");
    ASSERT_EQ(losses_ref.size(), r.losses.size());
    // Candidate scales: torch's pow (Sleef / std::pow) and powf may differ in the last bit for
    // exponents other than 0, 0.5, 1. Where a ratio's scales are bit-identical the losses may
    // differ only by summation order; where they differ, a weight can land on the other side
    // of a rounding tie and the loss moves by one code's worth.
    const auto candidates_ref = test::read_raw<float>(dir.path + "/candidates_ref.f32");
    ASSERT_EQ(candidates_ref.size(), 20u * k);
    double worst_loss = 0.0;
    int same_ratios = 0;
    int64_t worst_ulps = 0;
    for (size_t i = 0; i < losses_ref.size(); ++i) {
      const std::vector<float> cand = awq_candidate_scales(x_scale, w_scale, i / 20.0, c.duo);
      const int64_t ulps = max_ulp_distance(cand, std::vector<float>(candidates_ref.begin() + i * k,
                                                                     candidates_ref.begin() + (i + 1) * k));
      EXPECT_LE(ulps, 4) << ci << " ratio " << i;
      worst_ulps = std::max(worst_ulps, ulps);
      const double rel = std::fabs(r.losses[i] - losses_ref[i]) / losses_ref[i];
      EXPECT_LT(rel, ulps == 0 ? 1e-5 : 2e-3) << ci << " ratio " << i;
      same_ratios += ulps == 0;
    }
    // torch's loss of our own candidates: the same to summation order for every ratio.
    const auto losses_of_ours = test::read_raw<double>(dir.path + "/losses_of_candidates.f64");
    ASSERT_EQ(losses_of_ours.size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      const double rel = std::fabs(r.losses[i] - losses_of_ours[i]) / losses_of_ours[i];
      EXPECT_LT(rel, 1e-5) << ci << " ratio " << i;
      worst_loss = std::max(worst_loss, rel);
    }
    EXPECT_EQ(r.best_index, best_ref) << ci;
    EXPECT_DOUBLE_EQ(r.ratio, best_ref / 20.0);
    EXPECT_LE(max_ulp_distance(r.scales, scales_ref), 4) << ci;
    std::printf("  case %zu: %d-bit %s g%lld duo %d: best ratio %.2f (torch %.2f); candidate scales bit-identical "
                "for %d of 20 ratios, else within %lld ulp; torch's loss of our candidates within %.1e (ratio 0 loss "
                "%.4e, best %.4e)\n",
                ci, c.bits, c.sym ? "sym" : "asym", static_cast<long long>(c.group), c.duo, r.ratio, best_ref / 20.0,
                same_ratios, static_cast<long long>(worst_ulps), worst_loss, r.losses[0], r.losses[r.best_index]);

    if (c.clip) {
      const std::vector<float> mv = awq_search_clip(ws[0], c.rows_of_linears[0], k, x, rows,
                                                    awq_config(c.bits, c.sym, c.group), clip_opt, "mlp.up");
      const auto mv_ref = test::read_raw<float>(dir.path + "/max_val_ref.f32");
      ASSERT_EQ(mv.size(), mv_ref.size());
      size_t same = 0;
      for (size_t i = 0; i < mv.size(); ++i) same += mv[i] == mv_ref[i];
      std::printf("          clip: %zu of %zu max_val identical\n", same, mv.size());
      // A different choice needs two shrink steps whose errors tie to f32 rounding.
      EXPECT_GE(same, mv.size() - mv.size() / 100) << ci;
    }
  }
}

TEST(Awq, LowersBlockErrorVersusRoundToNearest) {
  // Inputs with salient channels (a few channels ~10-30x the rest, on every token).
  const int64_t rows = 2048, k = 512;
  for (int bits : {3, 4}) {
    const std::vector<float> x = test::correlated_activations(rows, k, 900 + bits, 12, 20.0f);
    const std::vector<float> w0 = test::random_weight(256, k, 910), w1 = test::random_weight(256, k, 911);
    const std::vector<LinearWeight> linears = {{w0, 256}, {w1, 256}};
    const IntQuantConfig cfg = awq_config(bits, false, 128);
    const AwqLinearsLoss loss(x, rows, k, linears, cfg, "mlp");
    const std::vector<float> ones(k, 1.0f);
    const double rtn = loss(ones);
    const AwqScaleResult r = awq_search_scales(awq_activation_scale(x, rows, k), awq_weight_scale(linears, k, 128), loss);
    // Scales folded into the weights, then the clip search on the scaled weights.
    std::vector<float> s0 = w0, s1 = w1;
    scale_input_columns(s0, 256, k, r.scales);
    scale_input_columns(s1, 256, k, r.scales);
    std::vector<float> xs = x;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < k; ++j) xs[i * k + j] /= r.scales[j];
    for (auto* w : {&s0, &s1}) awq_apply_clip(*w, 256, k, awq_search_clip(*w, 256, k, xs, rows, cfg, {}, "mlp"), 128);
    std::vector<float> q0 = formats::fake_quant_int(s0, 256, k, cfg, "a"), q1 = formats::fake_quant_int(s1, 256, k, cfg, "b");
    for (auto* q : {&q0, &q1})
      for (int64_t i = 0; i < 256; ++i)
        for (int64_t j = 0; j < k; ++j) (*q)[i * k + j] /= r.scales[j];
    // Block output error of scale + clip, on the original (unscaled) input.
    const double e0 = test::relative_output_error(x, rows, k, w0, q0, 256);
    const double e1 = test::relative_output_error(x, rows, k, w1, q1, 256);
    const double rtn0 = test::relative_output_error(x, rows, k, w0, formats::fake_quant_int(w0, 256, k, cfg, "a"), 256);
    const double rtn1 = test::relative_output_error(x, rows, k, w1, formats::fake_quant_int(w1, 256, k, cfg, "b"), 256);
    std::printf("  %d-bit g128: block MSE RTN %.4e, AWQ scales (ratio %.2f) %.4e (%.2fx lower); relative output "
                "error RTN %.4f / %.4f, AWQ scales + clip %.4f / %.4f\n",
                bits, rtn, r.ratio, r.losses[r.best_index], rtn / r.losses[r.best_index], rtn0, rtn1, e0, e1);
    EXPECT_GT(rtn / r.losses[r.best_index], 1.2);
    EXPECT_LT(e0, rtn0);
    EXPECT_LT(e1, rtn1);
  }
}

TEST(Awq, SameResultOnAnyThreadCount) {
  const int64_t rows = 700, k = 256, n = 300;  // partial tiles everywhere
  const std::vector<float> x = test::correlated_activations(rows, k, 5);
  const std::vector<float> w = test::random_weight(n, k, 6);
  const IntQuantConfig cfg = awq_config(4, false, 64);
  ThreadPool one(1), two(2);
  AwqClipOptions opt;
  opt.oc_batch = 64;
  const std::vector<float> a = awq_search_clip(w, n, k, x, rows, cfg, opt, "l", one);
  EXPECT_EQ(a, awq_search_clip(w, n, k, x, rows, cfg, opt, "l", two));
  opt.oc_batch = 512;  // memory batching does not change results
  EXPECT_EQ(a, awq_search_clip(w, n, k, x, rows, cfg, opt, "l", two));
  const std::vector<LinearWeight> lin = {{w, n}};
  const std::vector<float> s = awq_candidate_scales(awq_activation_scale(x, rows, k), awq_weight_scale(lin, k, 64), 0.35, true);
  EXPECT_EQ(AwqLinearsLoss(x, rows, k, lin, cfg, "l", one)(s), AwqLinearsLoss(x, rows, k, lin, cfg, "l", two)(s));
}

TEST(Awq, CandidateScalesFollowAutoAwq) {
  const std::vector<float> xs = {1.0f, 4.0f, 0.0f, 9.0f}, wsc = {0.5f, 0.25f, 1.0f, 0.0f};
  // ratio 0.5, duo: sqrt(x) / (sqrt(w) + 1e-4), clamp 1e-4, then / sqrt(max * min).
  std::vector<float> s = awq_candidate_scales(xs, wsc, 0.5, true);
  std::vector<float> raw = {1.0f / (std::sqrt(0.5f) + 1e-4f), 2.0f / (0.5f + 1e-4f), 1e-4f, 3.0f / 1e-4f};
  const float norm = std::sqrt(raw[3] * raw[2]);
  for (size_t j = 0; j < 4; ++j) EXPECT_EQ(s[j], raw[j] / norm) << j;
  // ratio 0 without duo scaling: all ones.
  EXPECT_EQ(awq_candidate_scales(xs, wsc, 0.0, false), std::vector<float>(4, 1.0f));
  // A loss that prefers ratio 0.35 exactly.
  const AwqScaleResult r = awq_search_scales(xs, wsc, [&](std::span<const float> c) {
    const std::vector<float> want = awq_candidate_scales(xs, wsc, 0.35, true);
    double d = 0;
    for (size_t j = 0; j < c.size(); ++j) d += std::fabs(c[j] - want[j]);
    return d;
  });
  EXPECT_EQ(r.best_index, 7);
  EXPECT_DOUBLE_EQ(r.ratio, 0.35);
  EXPECT_EQ(r.losses.size(), 20u);
  EXPECT_EQ(r.losses[7], 0.0);
  EXPECT_THROW(awq_search_scales(xs, wsc, [](std::span<const float>) { return NAN; }), Error);
}

TEST(Awq, ClipAppliesPerGroup) {
  std::vector<float> w = {1, -2, 3, -4, 5, -6, 7, -8};
  awq_apply_clip(w, 2, 4, std::vector<float>{1.5f, 3.5f, 10.0f, 6.5f}, 2);
  EXPECT_EQ(w, (std::vector<float>{1, -1.5f, 3, -3.5f, 5, -6, 6.5f, -6.5f}));
  EXPECT_THROW(awq_apply_clip(w, 2, 4, std::vector<float>{1, 2, 3}, 2), Error);
}

TEST(ScaleFold, FoldedNetworkComputesTheSame) {
  const int64_t rows = 64, k = 96, n = 80, n2 = 48;
  const std::vector<float> x = test::correlated_activations(rows, k, 1);
  std::vector<float> norm(k), s(k), s_mid(n);
  Rng rng(2);
  for (auto& v : norm) v = static_cast<float>(0.5 + rng.uniform());
  for (auto& v : s) v = static_cast<float>(0.1 + 4 * rng.uniform());
  for (auto& v : s_mid) v = static_cast<float>(0.1 + 4 * rng.uniform());
  std::vector<float> w1 = test::random_weight(n, k, 3), w2 = test::random_weight(n2, n, 4), b1(n);
  for (auto& v : b1) v = static_cast<float>(rng.normal());
  // y = W2 (W1 (x * norm) + b1): fold s into norm -> W1 and s_mid into W1 -> W2.
  auto forward = [&](const std::vector<float>& g, const std::vector<float>& a, const std::vector<float>& bias,
                     const std::vector<float>& b) {
    std::vector<float> xn(x.size()), h(rows * n), y(rows * n2);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < k; ++j) xn[i * k + j] = x[i * k + j] * g[j];
    sgemm(false, true, rows, n, k, 1.0f, xn.data(), k, a.data(), k, 0.0f, h.data(), n);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) h[i * n + j] += bias[j];
    sgemm(false, true, rows, n2, n, 1.0f, h.data(), n, b.data(), n, 0.0f, y.data(), n2);
    return y;
  };
  const std::vector<float> y = forward(norm, w1, b1, w2);
  std::vector<float> norm_f = norm, w1_f = w1, b1_f = b1, w2_f = w2;
  fold_scales_into_norm(norm_f, s);
  scale_input_columns(w1_f, n, k, s);
  fold_scales_into_output_rows(w1_f, n, k, s_mid, b1_f);
  scale_input_columns(w2_f, n2, n, s_mid);
  const std::vector<float> y_f = forward(norm_f, w1_f, b1_f, w2_f);
  double err = 0, ref = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err += (y[i] - y_f[i]) * (y[i] - y_f[i]);
    ref += y[i] * y[i];
  }
  EXPECT_LT(std::sqrt(err / ref), 1e-6);
  EXPECT_NE(w1, w1_f);

  std::vector<float> zero_s = s;
  zero_s[5] = 0.0f;
  try {
    fold_scales_into_norm(norm_f, zero_s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "folding scales into a norm: scale 5 is 0, expected a positive number");
  }
  EXPECT_THROW(scale_input_columns(w1_f, n, k, s_mid), Error);
  EXPECT_THROW(fold_scales_into_output_rows(w1_f, n, k, s, b1_f), Error);
}

}  // namespace
}  // namespace qs::quant
