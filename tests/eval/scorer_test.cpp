// The batched, prefix-sharing scorer against the plainest computation: each request run alone
// through Model::forward from an empty cache, log-softmax in double, greedy by argmax.
#include "eval/scorer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "model/loader.h"
#include "testing/testing.h"

namespace qs::eval {
namespace {

const Model& stories() {
  static auto m = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  return *m;
}

ScoreResult reference(const Model& m, const LLRequest& r, int64_t max_length) {
  std::vector<int32_t> all = r.context;
  all.insert(all.end(), r.continuation.begin(), r.continuation.end());
  if (static_cast<int64_t>(all.size()) > max_length + 1) all.erase(all.begin(), all.end() - (max_length + 1));
  std::vector<int32_t> input(all.begin(), all.end() - 1);
  KVCache cache(m.config(), 1, static_cast<int64_t>(input.size()));
  ForwardOutput out;
  SeqInput in{0, input, Outputs::All};
  m.forward({&in, 1}, cache, out);
  ScoreResult s;
  const int64_t V = m.config().vocab_size, n = static_cast<int64_t>(r.continuation.size());
  for (int64_t k = 0; k < n; ++k) {
    const int64_t row = static_cast<int64_t>(input.size()) - n + k;
    const float* x = out.logits_row(row);
    double mx = x[0];
    int32_t arg = 0;
    for (int64_t i = 1; i < V; ++i)
      if (x[i] > mx) mx = x[i], arg = static_cast<int32_t>(i);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(x[i] - mx);
    const int32_t target = r.continuation[k];
    s.logprob += x[target] - (mx + std::log(sum));
    s.greedy = s.greedy && arg == target;
    ++s.tokens;
  }
  return s;
}

std::vector<int32_t> random_tokens(Rng& rng, int n) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = 3 + static_cast<int32_t>(rng.below(500));
  return t;
}

TEST(Scorer, SharedPrefixesAndBatchingGiveTheSameScoresAsSingleRuns) {
  const Model& m = stories();
  Rng rng(7);
  std::vector<LLRequest> reqs;
  // Documents with 2-5 choices sharing a context, a few-shot-like prefix shared across documents,
  // single-token continuations (MMLU-like), identical requests, and inputs longer than
  // max_length (left-truncated).
  const std::vector<int32_t> shared = random_tokens(rng, 40);
  for (int d = 0; d < 24; ++d) {
    std::vector<int32_t> ctx = d % 3 == 0 ? shared : std::vector<int32_t>{1};
    auto q = random_tokens(rng, 5 + static_cast<int>(rng.below(60)));
    ctx.insert(ctx.end(), q.begin(), q.end());
    const int choices = 2 + static_cast<int>(rng.below(4));
    for (int c = 0; c < choices; ++c) {
      LLRequest r;
      r.context = ctx;
      r.continuation = d % 4 == 1 ? std::vector<int32_t>{static_cast<int32_t>(3 + c)} : random_tokens(rng, 1 + static_cast<int>(rng.below(12)));
      if (d == 5 && c == 1) r.continuation = reqs.back().continuation;  // a duplicate request
      r.doc = d;
      r.choice = c;
      reqs.push_back(r);
    }
  }
  LLRequest longer;
  longer.context = random_tokens(rng, 150);
  longer.continuation = random_tokens(rng, 20);
  longer.doc = 99;
  reqs.push_back(longer);

  const int64_t max_length = 128;
  ScoreOptions o;
  o.max_length = max_length;
  ScoreStats st;
  const auto got = score_requests(m, reqs, o, &st);
  ASSERT_EQ(got.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const ScoreResult want = reference(m, reqs[i], max_length);
    EXPECT_NEAR(got[i].logprob, want.logprob, 1e-4 * std::max(1.0, std::fabs(want.logprob))) << "request " << i;
    EXPECT_EQ(got[i].greedy, want.greedy) << "request " << i;
    EXPECT_EQ(got[i].tokens, static_cast<int64_t>(reqs[i].continuation.size()));
  }
  // Shared contexts ran once: fewer tokens through the model than the requests hold.
  EXPECT_LT(st.model_tokens, st.request_tokens * 3 / 4);
  EXPECT_GT(st.requests, 0);

  // Small budgets: many chunks, pieces of a few logits rows; same scores.
  ScoreOptions tight = o;
  tight.kv_budget_bytes = 1;
  tight.logits_budget_bytes = 1;  // 64-row pieces
  ScoreStats st2;
  const auto again = score_requests(m, reqs, tight, &st2);
  EXPECT_GT(st2.chunks, st.chunks);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_NEAR(again[i].logprob, got[i].logprob, 1e-4) << i;

  // Without sharing: each request alone; same scores, every token run.
  ScoreOptions alone = o;
  alone.share_prefixes = false;
  ScoreStats st3;
  const auto solo = score_requests(m, reqs, alone, &st3);
  EXPECT_EQ(st3.model_tokens, st3.request_tokens);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_NEAR(solo[i].logprob, got[i].logprob, 1e-4) << i;
}

TEST(Scorer, RejectsBadRequests) {
  LLRequest r;
  r.context = {1};
  std::vector<LLRequest> v{r};
  EXPECT_THROW(score_requests(stories(), v, {}), Error);  // empty continuation
  v[0].continuation = {100000};
  EXPECT_THROW(score_requests(stories(), v, {}), Error);  // outside the vocabulary
}

}  // namespace
}  // namespace qs::eval
