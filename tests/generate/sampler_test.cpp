#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "testing/testing.h"

namespace qs {
namespace {

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler s(SamplingParams{});
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(logits, {}, 0.99), 1);
  EXPECT_EQ(argmax(logits), 1);
}

TEST(Sampler, InvalidValuesAreRejectedByName) {
  auto expect_error = [](SamplingParams p, const char* flag) {
    try {
      p.validate();
      ADD_FAILURE() << "no error for " << flag;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  SamplingParams p;
  p.temperature = -0.1;
  expect_error(p, "--temperature");
  p = {};
  p.top_p = 0;
  expect_error(p, "--top-p");
  p.top_p = 1.5;
  expect_error(p, "--top-p");
  p = {};
  p.top_k = -1;
  expect_error(p, "--top-k");
  p = {};
  p.min_p = 2;
  expect_error(p, "--min-p");
  p = {};
  p.repeat_penalty = 0;
  expect_error(p, "--repeat-penalty");
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.temperature = 0.7;
  Sampler s(p);
  std::vector<float> logits = {1.0f, 0.0f, -0.5f, 2.0f, 0.3f};
  std::vector<double> expected(5);
  double z = 0;
  for (int i = 0; i < 5; ++i) z += expected[i] = std::exp(logits[i] / 0.7);
  for (auto& e : expected) e /= z;
  Rng rng(1);
  std::vector<int> counts(5);
  const int n = 200000;
  for (int i = 0; i < n; ++i) counts[s.sample(logits, {}, rng.uniform())]++;
  for (int i = 0; i < 5; ++i) {
    const double sd = std::sqrt(expected[i] * (1 - expected[i]) / n);
    EXPECT_NEAR(double(counts[i]) / n, expected[i], 5 * sd) << i;
  }
}

TEST(Sampler, SameUniformSameToken) {
  SamplingParams p;
  p.temperature = 1.0;
  p.top_p = 0.9;
  Sampler a(p), b(p);
  Rng rng(5);
  std::vector<float> logits(1000);
  for (auto& l : logits) l = static_cast<float>(rng.normal());
  for (int i = 0; i < 100; ++i) {
    const double u = rng.uniform();
    EXPECT_EQ(a.sample(logits, {}, u), b.sample(logits, {}, u));
  }
}

// The kept tokens and their probabilities equal transformers' warpers (Python reference).
TEST(Sampler, FiltersMatchTransformersWarpers) {
  Rng rng(42);
  nlohmann::json cases = nlohmann::json::array();
  struct Case {
    std::vector<float> logits;
    std::vector<int32_t> history;
    SamplingParams p;
  };
  std::vector<Case> mine;
  const double temps[] = {0.3, 0.7, 1.0, 1.5};
  const int ks[] = {0, 1, 5, 40};
  const double ps[] = {1.0, 0.5, 0.9, 0.95};
  const double mins[] = {0.0, 0.05, 0.2};
  const double pens[] = {1.0, 1.3};
  for (int c = 0; c < 96; ++c) {
    Case k;
    k.logits.resize(64);
    for (auto& l : k.logits) l = static_cast<float>(2.5 * rng.normal());
    for (int h = 0; h < 6; ++h) k.history.push_back(static_cast<int32_t>(rng.below(64)));
    k.p.temperature = temps[c % 4];
    k.p.top_k = ks[(c / 4) % 4];
    k.p.top_p = ps[(c / 16) % 4];
    k.p.min_p = mins[c % 3];
    k.p.repeat_penalty = pens[(c / 3) % 2];
    k.p.repeat_last_n = -1;
    cases.push_back({{"logits", k.logits}, {"history", k.history}, {"temperature", k.p.temperature},
                     {"top_k", k.p.top_k}, {"top_p", k.p.top_p}, {"min_p", k.p.min_p},
                     {"repeat_penalty", k.p.repeat_penalty}});
    mine.push_back(k);
  }
  const std::string dir = testing::make_temp_dir("warpers");
  std::ofstream(dir + "/in.json") << cases.dump();
  auto r = testing::run_command(testing::python() + " " + testing::source_dir() + "/tests/generate/ref/hf_warpers.py < " +
                                dir + "/in.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ref = nlohmann::json::parse(r.out);
  ASSERT_EQ(ref.size(), mine.size());
  for (size_t c = 0; c < mine.size(); ++c) {
    Sampler s(mine[c].p);
    s.sample(mine[c].logits, mine[c].history, 0.5);
    const auto& kept = s.last_distribution();
    const auto& ids = ref[c]["ids"];
    ASSERT_EQ(kept.size(), ids.size()) << "case " << c << " " << mine[c].p.describe();
    for (size_t i = 0; i < kept.size(); ++i) {
      EXPECT_EQ(kept[i].first, ids[i].get<int>()) << "case " << c;
      EXPECT_NEAR(kept[i].second, ref[c]["probs"][i].get<double>(), 1e-6) << "case " << c;
    }
  }
}

}  // namespace
}  // namespace qs
