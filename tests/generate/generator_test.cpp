#include "generate/generator.h"

#include <gtest/gtest.h>

#include "model/loader.h"
#include "testing/testing.h"

namespace qs {
namespace {

std::unique_ptr<Model> stories() { return load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin"); }

TEST(Generate, GreedyEqualsArgmaxOfFullRecompute) {
  auto model = stories();
  std::vector<int32_t> prompt = {1, 403, 407, 261, 378};  // BOS + a few tokens
  GenerateOptions o;
  o.max_new_tokens = 20;
  GenerationRequest req{prompt, 0};
  auto gen = generate(*model, {&req, 1}, o);
  ASSERT_EQ(gen.size(), 1u);
  // Recompute every step from scratch (no KV reuse) and take the argmax.
  std::vector<int32_t> seq = prompt;
  for (int32_t tok : gen[0].tokens) {
    KVCache cache(model->config(), 1);
    ForwardOutput out;
    SeqInput in{0, seq, Outputs::Last};
    model->forward({&in, 1}, cache, out);
    EXPECT_EQ(argmax({out.logits.data(), static_cast<size_t>(out.vocab)}), tok);
    seq.push_back(tok);
  }
  EXPECT_EQ(gen[0].stop_reason, gen[0].tokens.size() == 20 ? "length" : "eos");
}

TEST(Generate, BatchedEqualsOneAtATime) {
  auto model = stories();
  std::vector<GenerationRequest> reqs = {{{1, 403, 407}, 1}, {{1, 311, 280, 300, 266, 391, 272}, 2}, {{1}, 3}};
  for (double temperature : {0.0, 0.8}) {
    GenerateOptions o;
    o.max_new_tokens = 24;
    o.sampling.temperature = temperature;
    o.sampling.top_k = temperature > 0 ? 40 : 0;
    o.stop_tokens = {2};
    auto together = generate(*model, reqs, o);
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto alone = generate(*model, {&reqs[i], 1}, o);
      EXPECT_EQ(together[i].tokens, alone[0].tokens) << "request " << i << " T=" << temperature;
    }
  }
}

TEST(Generate, SameSeedSameOutputOtherSeedOtherOutput) {
  auto model = stories();
  GenerateOptions o;
  o.max_new_tokens = 40;
  o.sampling.temperature = 1.0;
  GenerationRequest a{{1, 403}, 123}, b{{1, 403}, 123}, c{{1, 403}, 124};
  auto ga = generate(*model, {&a, 1}, o), gb = generate(*model, {&b, 1}, o), gc = generate(*model, {&c, 1}, o);
  EXPECT_EQ(ga[0].tokens, gb[0].tokens);
  EXPECT_NE(ga[0].tokens, gc[0].tokens);
}

TEST(Generate, StopsAtCallbackAndContext) {
  auto model = stories();
  GenerateOptions o;
  o.max_new_tokens = 1000;
  GenerationRequest r{{1, 403}, 0};
  auto g = generate(*model, {&r, 1}, o, [](size_t, int32_t) { return false; });
  EXPECT_EQ(g[0].tokens.size(), 1u);
  EXPECT_EQ(g[0].stop_reason, "stop");
  auto full = generate(*model, {&r, 1}, o);  // context of 512 ends it
  EXPECT_EQ(full[0].stop_reason, "context");
  EXPECT_EQ(full[0].tokens.size() + 2, 512u);
}

}  // namespace
}  // namespace qs
