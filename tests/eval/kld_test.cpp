#include "eval/kld.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "testing/testing.h"

namespace qs::eval {
namespace {

using nlohmann::json;

// LLM-like next-token logits: probabilities falling off as a power of the rank (Zipf-like,
// exponent 1.3 .. 2.5 per position) over a shuffled vocabulary, plus small jitter, sometimes
// with one dominant token.
std::vector<float> llm_like_logits(Rng& rng, size_t vocab) {
  std::vector<float> x(vocab);
  double alpha = 1.3 + 1.2 * rng.uniform();
  for (size_t r = 0; r < vocab; ++r) x[r] = static_cast<float>(-alpha * std::log(1.0 + r) + 0.3 * rng.normal());
  for (size_t r = vocab - 1; r > 0; --r) std::swap(x[r], x[rng.below(r + 1)]);
  if (rng.uniform() < 0.3) x[rng.below(vocab)] += static_cast<float>(4 + 4 * rng.uniform());
  return x;
}

// A "quantized" model: the baseline's logits plus noise, now and then a larger disturbance.
std::vector<float> perturbed(Rng& rng, const std::vector<float>& base, double noise) {
  std::vector<float> m(base.size());
  double s = rng.uniform() < 0.05 ? 5 * noise : noise;
  for (size_t i = 0; i < base.size(); ++i) m[i] = base[i] + static_cast<float>(s * rng.normal());
  return m;
}

int32_t pick_next(Rng& rng, const std::vector<float>& logits) {
  if (rng.uniform() < 0.5) return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  return static_cast<int32_t>(rng.below(logits.size()));
}

std::vector<float> log_probs(std::initializer_list<double> p) {
  std::vector<float> out;
  for (double v : p) out.push_back(static_cast<float>(std::log(v)));
  return out;
}

TEST(Kld, HandComputedDistributions) {
  KldAccumulator acc;
  // p = (1/2, 1/2), q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
  std::vector<float> base = {0.0f, 0.0f}, model = {static_cast<float>(std::log(3.0)), 0.0f};
  acc.add(base, model, 0);
  EXPECT_NEAR(acc.kld_values()[0], 0.5 * std::log(4.0 / 3.0), 1e-7);  // logit stored in float
  // p = (.7, .2, .1), q = (.5, .3, .2)
  acc.add(log_probs({0.7, 0.2, 0.1}), log_probs({0.5, 0.3, 0.2}), 2);
  double want = 0.7 * std::log(0.7 / 0.5) + 0.2 * std::log(0.2 / 0.3) + 0.1 * std::log(0.1 / 0.2);
  EXPECT_NEAR(acc.kld_values()[1], want, 1e-7);
  EXPECT_NEAR(acc.dp_values()[1], 0.2 - 0.1, 1e-7);  // q[next] - p[next]
  // -inf logits are probability 0: a masked baseline token adds nothing.
  float ninf = -std::numeric_limits<float>::infinity();
  acc.add(std::vector<float>{0.0f, 0.0f, ninf}, std::vector<float>{0.0f, 0.0f, 1.0f}, 0);
  double q0 = 1.0 / (2.0 + std::exp(1.0));
  EXPECT_NEAR(acc.kld_values()[2], std::log(0.5 / q0), 1e-7);
  // A model that gives a baseline token probability 0 has infinite divergence.
  acc.add(std::vector<float>{0.0f, 0.0f}, std::vector<float>{0.0f, ninf}, 0);
  EXPECT_TRUE(std::isinf(acc.kld_values()[3]));
}

TEST(Kld, IdenticalModelsGiveZero) {
  Rng rng(1);
  KldAccumulator exact, compact;
  CompactBaseline base(500, 16);
  for (int t = 0; t < 50; ++t) {
    auto x = llm_like_logits(rng, 500);
    int32_t next = pick_next(rng, x);
    exact.add(x, x, next);
    base.append(x, next);
    compact.add(base, base.size() - 1, x);
  }
  for (const auto* acc : {&exact, &compact}) {
    KldStats s = acc->stats();
    EXPECT_EQ(s.kld_mean, 0.0);
    EXPECT_EQ(s.kld_max, 0.0);
    EXPECT_EQ(s.kld_min, 0.0);
    EXPECT_EQ(s.dp_rms, 0.0);
    EXPECT_EQ(s.same_top_pct, 100.0);
    EXPECT_EQ(s.ln_ppl_ratio, 0.0);
    EXPECT_EQ(s.ppl_model, s.ppl_base);
    EXPECT_EQ(s.ln_ppl_ratio_err, 0.0);
  }
  EXPECT_TRUE(compact.stats().kld_is_lower_bound);
  EXPECT_FALSE(exact.stats().kld_is_lower_bound);
}

TEST(Kld, InputErrors) {
  KldAccumulator acc;
  std::vector<float> a = {0, 1, 2}, b = {0, 1};
  EXPECT_THROW(acc.add(a, b, 0), Error);
  EXPECT_THROW(acc.add(a, a, 3), Error);
  EXPECT_THROW(acc.add(a, a, -1), Error);
  std::vector<float> bad = {0, NAN, 1};
  try {
    acc.add(a, bad, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model logit 1 is nan"), std::string::npos) << e.what();
  }
  EXPECT_EQ(acc.tokens(), 0u);
}

TEST(Kld, FewTokensFollowLlamaCppErrorRules) {
  Rng rng(2);
  KldAccumulator acc;
  for (int t = 0; t < 8; ++t) {
    auto x = llm_like_logits(rng, 100);
    acc.add(x, perturbed(rng, x, 0.3), pick_next(rng, x));
  }
  KldStats s = acc.stats();
  EXPECT_GT(s.kld_mean, 0.0);
  EXPECT_EQ(s.kld_mean_err, 0.0);  // llama.cpp: no uncertainty with 10 or fewer values
  EXPECT_EQ(s.ppl_model_err, 0.0);
}

void write_floats(const std::string& path, const std::vector<float>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

TEST(Kld, AgainstTorchReference) {
  const int T = 400, V = 2000, K = 32;
  Rng rng(42);
  std::vector<float> all_base, all_model;
  std::vector<int32_t> next;
  KldAccumulator exact, compact, part1, part2;
  CompactBaseline cb(V, K);
  for (int t = 0; t < T; ++t) {
    auto x = llm_like_logits(rng, V);
    auto m = perturbed(rng, x, 0.25);
    int32_t n = pick_next(rng, x);
    exact.add(x, m, n);
    (t < T / 3 ? part1 : part2).add(x, m, n);
    cb.append(x, n);
    compact.add(cb, cb.size() - 1, m);
    all_base.insert(all_base.end(), x.begin(), x.end());
    all_model.insert(all_model.end(), m.begin(), m.end());
    next.push_back(n);
  }
  std::string dir = testing::make_temp_dir("kld-ref");
  write_floats(dir + "/base.f32", all_base);
  write_floats(dir + "/model.f32", all_model);
  std::ofstream(dir + "/next.i32", std::ios::binary)
      .write(reinterpret_cast<const char*>(next.data()), next.size() * sizeof(int32_t));
  testing::write_text(dir + "/meta.json", json{{"tokens", T}, {"vocab", V}, {"k", K}}.dump());
  auto r = testing::run_command(testing::python() + " " +
                                testing::shell_quote(testing::source_dir() + "/tests/eval/ref/kld_ref.py") + " " +
                                testing::shell_quote(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json ref = json::parse(r.out);

  auto close = [](double got, double want, double rel, double abs_floor) {
    return std::fabs(got - want) <= std::max(rel * std::fabs(want), abs_floor);
  };
  for (int t = 0; t < T; ++t) {
    double want = ref["kld"][t].get<double>();
    EXPECT_TRUE(close(exact.kld_values()[t], want, 1e-9, 1e-15)) << "token " << t << ": " << exact.kld_values()[t] << " vs " << want;
    EXPECT_TRUE(close(exact.dp_values()[t], ref["dp"][t].get<double>(), 1e-9, 1e-15)) << "dp token " << t;
    double bucket = ref["bucket_kld"][t].get<double>();
    EXPECT_TRUE(close(compact.kld_values()[t], bucket, 1e-9, 1e-15)) << "bucket token " << t;
    EXPECT_LE(compact.kld_values()[t], exact.kld_values()[t] + 1e-12) << "token " << t;
  }
  KldStats s = exact.stats();
  const json& w = ref["stats"];
  std::vector<std::pair<const char*, double>> fields = {
      {"ppl_model", s.ppl_model}, {"ppl_model_err", s.ppl_model_err}, {"ppl_base", s.ppl_base},
      {"ppl_base_err", s.ppl_base_err}, {"ln_ppl_correlation", s.ln_ppl_correlation},
      {"ln_ppl_ratio", s.ln_ppl_ratio}, {"ln_ppl_ratio_err", s.ln_ppl_ratio_err}, {"ppl_ratio", s.ppl_ratio},
      {"ppl_ratio_err", s.ppl_ratio_err}, {"ppl_diff", s.ppl_diff}, {"ppl_diff_err", s.ppl_diff_err},
      {"kld_mean", s.kld_mean}, {"kld_mean_err", s.kld_mean_err}, {"kld_max", s.kld_max}, {"kld_min", s.kld_min},
      {"kld_median", s.kld_median}, {"kld_p99_9", s.kld_p99_9}, {"kld_p99", s.kld_p99}, {"kld_p95", s.kld_p95},
      {"kld_p90", s.kld_p90}, {"kld_p10", s.kld_p10}, {"kld_p5", s.kld_p5}, {"kld_p1", s.kld_p1},
      {"kld_p0_1", s.kld_p0_1}, {"dp_mean", s.dp_mean}, {"dp_mean_err", s.dp_mean_err}, {"dp_max", s.dp_max},
      {"dp_min", s.dp_min}, {"dp_median", s.dp_median}, {"dp_p99_9", s.dp_p99_9}, {"dp_p99", s.dp_p99},
      {"dp_p95", s.dp_p95}, {"dp_p90", s.dp_p90}, {"dp_p75", s.dp_p75}, {"dp_p25", s.dp_p25}, {"dp_p10", s.dp_p10},
      {"dp_p5", s.dp_p5}, {"dp_p1", s.dp_p1}, {"dp_p0_1", s.dp_p0_1}, {"dp_rms", s.dp_rms},
      {"dp_rms_err", s.dp_rms_err}, {"same_top_pct", s.same_top_pct}, {"same_top_pct_err", s.same_top_pct_err}};
  for (auto [name, got] : fields) {
    double want = w[name].get<double>();
    EXPECT_TRUE(close(got, want, 1e-9, 1e-14)) << name << ": " << got << " vs " << want;
  }
  EXPECT_EQ(s.tokens, static_cast<size_t>(T));
  // The statistics do not depend on how tokens were split over accumulators.
  part1.merge(part2);
  KldStats m = part1.stats();
  EXPECT_NEAR(m.kld_mean, s.kld_mean, 1e-15);
  EXPECT_EQ(m.kld_p99, s.kld_p99);
  EXPECT_EQ(m.same_top_pct, s.same_top_pct);
  // The parallel row API gives the same values, in order, as adding token by token.
  KldAccumulator rows, compact_rows;
  rows.add_rows(all_base, all_model, V, next);
  CompactBaseline cb_rows(V, K);
  cb_rows.append_rows(all_base, next);
  EXPECT_EQ(cb_rows.serialize(), cb.serialize());
  compact_rows.add_rows(cb_rows, 0, all_model);
  ASSERT_EQ(rows.tokens(), exact.tokens());
  for (int t = 0; t < T; ++t) {
    EXPECT_EQ(rows.kld_values()[t], exact.kld_values()[t]);
    EXPECT_EQ(compact_rows.kld_values()[t], compact.kld_values()[t]);
  }
  EXPECT_EQ(rows.stats().ppl_ratio_err, s.ppl_ratio_err);
  EXPECT_EQ(compact_rows.stats().baseline_tail_mass_mean, compact.stats().baseline_tail_mass_mean);
  EXPECT_THROW(rows.add_rows(all_base, all_model, V + 1, next), Error);
  EXPECT_THROW(compact_rows.add_rows(cb_rows, 1, all_model), Error);  // runs past the end
  // Compact baseline: exact perplexity-side statistics, lower-bound KLD.
  KldStats c = compact.stats();
  EXPECT_NEAR(c.ppl_base, s.ppl_base, 1e-12 * s.ppl_base);
  EXPECT_NEAR(c.ppl_model, s.ppl_model, 1e-12 * s.ppl_model);
  EXPECT_NEAR(c.dp_rms, s.dp_rms, 1e-12);
  EXPECT_EQ(c.same_top_pct, s.same_top_pct);
  EXPECT_LE(c.kld_mean, s.kld_mean);
  EXPECT_TRUE(c.kld_is_lower_bound);
  double tail_mean = 0;
  for (int t = 0; t < T; ++t) tail_mean += ref["tail_mass"][t].get<double>() / T;
  EXPECT_NEAR(c.baseline_tail_mass_mean, tail_mean, 1e-12);
}

TEST(Kld, CompactWithFullVocabularyIsExact) {
  Rng rng(3);
  KldAccumulator exact, compact;
  CompactBaseline cb(64, 1000);  // k clipped to the vocabulary: no tail
  EXPECT_EQ(cb.k(), 64);
  for (int t = 0; t < 30; ++t) {
    auto x = llm_like_logits(rng, 64);
    auto m = perturbed(rng, x, 0.5);
    int32_t n = pick_next(rng, x);
    exact.add(x, m, n);
    cb.append(x, n);
    compact.add(cb, cb.size() - 1, m);
    EXPECT_EQ(cb.tail_logprob(t), -std::numeric_limits<double>::infinity());
    EXPECT_NEAR(compact.kld_values()[t], exact.kld_values()[t], 1e-12);
  }
}

// The bucketed KLD is a lower bound and close to the exact one on peaked, LLM-like
// distributions over a realistic vocabulary; prints the measured relative gap per k.
TEST(Kld, TopKLowerBoundOnRealisticDistributions) {
  const int T = 120, V = 32000;
  Rng rng(8);
  std::vector<std::vector<float>> base, model;
  std::vector<int32_t> next;
  for (int t = 0; t < T; ++t) {
    base.push_back(llm_like_logits(rng, V));
    model.push_back(perturbed(rng, base.back(), 0.15));
    next.push_back(pick_next(rng, base.back()));
  }
  KldAccumulator exact;
  for (int t = 0; t < T; ++t) exact.add(base[t], model[t], next[t]);
  double exact_mean = exact.stats().kld_mean;
  double previous_gap = 1.0;
  for (int k : {16, 64, 256, 1024}) {
    CompactBaseline cb(V, k);
    KldAccumulator acc;
    for (int t = 0; t < T; ++t) {
      cb.append(base[t], next[t]);
      acc.add(cb, t, model[t]);
      ASSERT_LE(acc.kld_values()[t], exact.kld_values()[t] + 1e-12) << "k=" << k << " token " << t;
    }
    KldStats s = acc.stats();
    double gap = (exact_mean - s.kld_mean) / exact_mean;
    std::printf("top-%d: mean KLD %.6f vs exact %.6f (%.2f%% lower), mean tail mass %.4f\n", k, s.kld_mean,
                exact_mean, 100 * gap, s.baseline_tail_mass_mean);
    EXPECT_GE(gap, 0.0);
    EXPECT_LT(gap, previous_gap);  // more ids kept, tighter bound
    previous_gap = gap;
  }
  EXPECT_LT(previous_gap, 0.03);  // k = 1024
}

TEST(Kld, CompactBaselineRoundTripAndValidation) {
  Rng rng(4);
  CompactBaseline cb(300, 8);
  for (int t = 0; t < 5; ++t) {
    auto x = llm_like_logits(rng, 300);
    cb.append(x, pick_next(rng, x));
  }
  std::string dir = testing::make_temp_dir("kld-compact");
  std::string path = dir + "/base.qskld";
  cb.save(path);
  std::string bytes = read_file(path);
  EXPECT_EQ(bytes.size(), 32u + 5u * (24u + 8u * 12u));
  CompactBaseline back = CompactBaseline::load(path);
  ASSERT_EQ(back.size(), 5u);
  EXPECT_EQ(back.serialize(), bytes);
  for (size_t t = 0; t < 5; ++t) {
    EXPECT_EQ(back.next_token(t), cb.next_token(t));
    EXPECT_EQ(back.tail_logprob(t), cb.tail_logprob(t));
    EXPECT_TRUE(std::equal(back.ids(t).begin(), back.ids(t).end(), cb.ids(t).begin()));
  }

  auto expect_error = [&](std::string data, const std::string& needle) {
    try {
      CompactBaseline::parse(data, "bad.qskld");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("bad.qskld"), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect_error(bytes.substr(0, 10), "shorter than the 32-byte header");
  expect_error("XXXXXXXX" + bytes.substr(8), "bad magic");
  expect_error(bytes.substr(0, bytes.size() - 1), "header says 5 tokens");
  std::string bad_id = bytes;
  int32_t big = 300;
  std::memcpy(&bad_id[32 + 24 + 4], &big, 4);  // record 0, ids[1]
  expect_error(bad_id, "token record 0: field 'ids' [1] is 300");
  std::string dup = bytes;
  std::memcpy(&dup[32 + 120 + 24 + 4], &dup[32 + 120 + 24], 4);  // record 1, ids[1] = ids[0]
  expect_error(dup, "token record 1: field 'ids' lists a token id twice");
  std::string mass = bytes;
  double zero = 0.0;
  std::memcpy(&mass[32 + 2 * 120 + 16], &zero, 8);  // record 2: tail mass 1 on top of the rest
  expect_error(mass, "token record 2: field 'logprobs' and tail_logprob sum to probability");
  std::string order = bytes;
  double high = -0.0001;
  std::memcpy(&order[32 + 3 * 120 + 24 + 8 * 4 + 8 * 2], &high, 8);  // record 3, logprobs[2]
  expect_error(order, "token record 3: field 'logprobs' [2] is larger than the one before");
  EXPECT_THROW(CompactBaseline::load(dir + "/missing.qskld"), Error);
}

TEST(Kld, FuzzSeedsParseOrAreRefused) {
  std::string dir = testing::source_dir() + "/fuzz/corpus/kld_baseline/";
  CompactBaseline b = CompactBaseline::load(dir + "valid_two_tokens.qskld");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.k(), 2);
  EXPECT_EQ(b.ids(0)[0], 3);
  // A model with p's head and the tail mass spread evenly matches the bucketed baseline: 0.
  std::vector<float> logits = {static_cast<float>(std::log(0.05)), static_cast<float>(std::log(0.3)),
                               static_cast<float>(std::log(0.05)), static_cast<float>(std::log(0.5)),
                               static_cast<float>(std::log(0.05)), static_cast<float>(std::log(0.05))};
  KldAccumulator acc;
  acc.add(b, 0, logits);
  EXPECT_NEAR(acc.kld_values()[0], 0.0, 1e-7);
  EXPECT_EQ(CompactBaseline::load(dir + "valid_no_tail.qskld").size(), 1u);
  EXPECT_EQ(CompactBaseline::load(dir + "empty_body.qskld").size(), 0u);
  for (const char* bad : {"truncated", "bad_magic", "duplicate_id", "nan_logprob", "huge_count", "nonzero_reserved"})
    EXPECT_THROW(CompactBaseline::load(dir + bad + ".qskld"), Error) << bad;
}

TEST(Kld, LlamaStyleReport) {
  Rng rng(5);
  KldAccumulator acc;
  for (int t = 0; t < 200; ++t) {
    auto x = llm_like_logits(rng, 200);
    acc.add(x, perturbed(rng, x, 0.2), pick_next(rng, x));
  }
  KldStats s = acc.stats();
  std::string report = llama_style_report(s);
  char want[128];
  std::snprintf(want, sizeof want, "Mean    KLD: %10.6lf ± %10.6lf\n", s.kld_mean, s.kld_mean_err);
  EXPECT_NE(report.find(want), std::string::npos) << report;
  std::snprintf(want, sizeof want, "Same top p: %6.3lf ± %5.3lf %%\n", s.same_top_pct, s.same_top_pct_err);
  EXPECT_NE(report.find(want), std::string::npos) << report;
  EXPECT_NE(report.find("Mean ln(PPL(Q)/PPL(base))     : "), std::string::npos);
  EXPECT_NE(report.find(" 0.1%   KLD: "), std::string::npos);
}

}  // namespace
}  // namespace qs::eval
