#include "eval/kld_run.h"

#include <algorithm>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"

namespace qs::eval {

KldRunResult compute_kld(const Model* baseline, const CompactBaseline* compact, const Model& model,
                         std::span<const int32_t> tokens, const KldRunOptions& o) {
  require((baseline != nullptr) != (compact != nullptr), "kld: give either a baseline model or a compact baseline file");
  const ModelConfig& mc = model.config();
  if (baseline) {
    require(baseline->config().vocab_size == mc.vocab_size, "kld: the baseline's vocabulary has ",
            baseline->config().vocab_size, " entries and the model's ", mc.vocab_size, " (not the same model family)");
    require(o.save_top_k == 0 || o.save_top_k >= 1, "kld: --top-k must be >= 1");
  } else {
    require(compact->n_vocab() == mc.vocab_size, "kld: the compact baseline was made with n_vocab = ", compact->n_vocab(),
            " but the model has ", mc.vocab_size);
    require(o.save_top_k == 0, "kld: cannot save a compact baseline when reading one");
  }
  const int64_t limit = baseline ? std::min(mc.max_position_embeddings, baseline->config().max_position_embeddings)
                                 : mc.max_position_embeddings;
  require(o.ctx >= 4, "--ctx: ", o.ctx, " is too small (expected >= 4)");
  require(o.ctx <= limit, "--ctx: ", o.ctx, " exceeds the context of ", limit, " tokens");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / o.ctx;
  if (n_chunks == 0)
    fail("the text has ", tokens.size(), " tokens, fewer than one chunk of --ctx ", o.ctx, " (use a longer text or a smaller --ctx)");
  if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
  const int64_t first = o.ctx / 2, scored = o.ctx - 1 - first;
  if (compact)
    require(static_cast<int64_t>(compact->size()) == n_chunks * scored, "kld: the compact baseline holds ", compact->size(),
            " token records but this text, --ctx ", o.ctx, " and ", n_chunks, " chunks score ", n_chunks * scored,
            " (make it from the same text and settings)");

  KldRunResult r;
  r.ctx = o.ctx;
  if (o.save_top_k > 0) r.compact.emplace(static_cast<int32_t>(mc.vocab_size), o.save_top_k);
  KldAccumulator acc;
  KVCache model_cache(mc, 1, o.ctx);
  std::optional<KVCache> base_cache;
  if (baseline) base_cache.emplace(baseline->config(), 1, o.ctx);
  ForwardOutput mout, bout;
  std::vector<int32_t> chunk(static_cast<size_t>(o.ctx)), next(static_cast<size_t>(scored));
  const size_t V = static_cast<size_t>(mc.vocab_size);
  Stopwatch clock;
  Progress progress("kld", n_chunks, "chunk");
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * o.ctx, tokens.begin() + (c + 1) * o.ctx, chunk.begin());
    if (o.bos) chunk[0] = *o.bos;
    for (int64_t i = 0; i < scored; ++i) next[i] = chunk[first + i + 1];
    model_cache.clear(0);
    SeqInput in{0, chunk, Outputs::All};
    model.forward({&in, 1}, model_cache, mout);
    std::span<const float> model_rows(mout.logits.data() + first * V, scored * V);
    if (baseline) {
      base_cache->clear(0);
      baseline->forward({&in, 1}, *base_cache, bout);
      std::span<const float> base_rows(bout.logits.data() + first * V, scored * V);
      acc.add_rows(base_rows, model_rows, V, next);
      if (r.compact) r.compact->append_rows(base_rows, next);
    } else {
      for (int64_t i = 0; i < scored; ++i)
        require(compact->next_token(c * scored + i) == next[i], "kld: the compact baseline's token ", c * scored + i,
                " is ", compact->next_token(c * scored + i), " but the text has ", next[i], " there (another text or --ctx)");
      acc.add_rows(*compact, static_cast<size_t>(c * scored), model_rows);
    }
    progress.add();
  }
  progress.finish();
  r.chunks = n_chunks;
  r.seconds = clock.seconds();
  r.stats = acc.stats();
  return r;
}

}  // namespace qs::eval
