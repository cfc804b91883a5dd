#include "eval/perplexity.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "generate/generator.h"
#include "model/loader.h"
#include "testing/testing.h"

namespace qs {
namespace {

std::unique_ptr<Model> stories() { return load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin"); }

// Text the model finds plausible: its own samples at temperature 1.
std::vector<int32_t> sampled_tokens(const Model& m, int64_t n) {
  std::vector<int32_t> out;
  uint64_t seed = 1;
  while (static_cast<int64_t>(out.size()) < n) {
    GenerateOptions o;
    o.max_new_tokens = 400;
    o.sampling.temperature = 1.0;
    GenerationRequest r{{1}, seed++};
    auto g = generate(m, {&r, 1}, o);
    out.push_back(1);
    out.insert(out.end(), g[0].tokens.begin(), g[0].tokens.end());
  }
  out.resize(n);
  return out;
}

TEST(Perplexity, MatchesLlamaCppConventionInPyTorch) {
  auto model = stories();
  const auto tokens = sampled_tokens(*model, 3 * 128 + 17);  // 3 chunks, a partial one dropped
  PerplexityOptions o;
  o.ctx = 128;
  o.bos = 1;
  const PerplexityResult r = compute_perplexity(*model, tokens, o);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(r.tokens_scored, 3 * (128 - 1 - 64));

  const std::string dir = testing::make_temp_dir("ppl");
  std::ofstream(dir + "/t.json") << nlohmann::json(tokens).dump();
  auto cmd = testing::python() + " " + testing::source_dir() + "/tests/eval/ref/ppl_ref.py --model " +
             testing::shared_dir() + "/models/stories260K/stories260K.bin --tokens-file " + dir + "/t.json --ctx 128 --bos 1";
  auto res = testing::run_command(cmd);
  ASSERT_EQ(res.exit_code, 0) << res.err;
  auto ref = nlohmann::json::parse(res.out);
  EXPECT_EQ(r.tokens_scored, ref["tokens_scored"].get<int64_t>());
  EXPECT_NEAR(r.ppl, ref["ppl"].get<double>(), 1e-5 * r.ppl);
  EXPECT_NEAR(r.ppl_stderr, ref["ppl_stderr"].get<double>(), 1e-4 * r.ppl_stderr);
  // Its own samples at T=1 should look like in-distribution text: single-digit perplexity.
  EXPECT_GT(r.ppl, 1.5);
  EXPECT_LT(r.ppl, 15);
}

TEST(Perplexity, TooShortTextIsAClearError) {
  auto model = stories();
  std::vector<int32_t> tokens(100, 5);
  PerplexityOptions o;
  o.ctx = 128;
  try {
    compute_perplexity(*model, tokens, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fewer than one chunk"), std::string::npos) << e.what();
  }
  o.ctx = 4096;
  EXPECT_THROW(compute_perplexity(*model, tokens, o), Error);  // beyond the model's 512 context
}

}  // namespace
}  // namespace qs
