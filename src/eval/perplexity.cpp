#include "eval/perplexity.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "kernels/ops.h"

namespace qs {

double NllStats::mean_stderr() const {
  if (count < 2) return 0;
  const double m = mean();
  const double var = sum_sq / count - m * m;
  return var > 0 ? std::sqrt(var / (count - 1)) : 0;
}

int64_t for_each_chunk(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& o,
                       const ChunkFn& on_chunk) {
  require(o.ctx >= 2, "--ctx: ", o.ctx, " is too small (expected >= 2)");
  require(o.ctx <= model.config().max_position_embeddings, "--ctx: ", o.ctx, " exceeds the model's context of ",
          model.config().max_position_embeddings, " tokens");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / o.ctx;
  if (n_chunks == 0)
    fail("the text has ", tokens.size(), " tokens, fewer than one chunk of --ctx ", o.ctx,
         " (use a longer text or a smaller --ctx)");
  if (o.max_chunks > 0 && o.max_chunks < n_chunks) n_chunks = o.max_chunks;
  KVCache cache(model.config(), 1, o.ctx);
  ForwardOutput out;
  std::vector<int32_t> chunk(o.ctx);
  Progress progress("chunks", n_chunks, "chunk");
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * o.ctx, tokens.begin() + (c + 1) * o.ctx, chunk.begin());
    if (o.bos) chunk[0] = *o.bos;
    cache.clear(0);
    SeqInput in{0, chunk, Outputs::All};
    model.forward({&in, 1}, cache, out);
    on_chunk(c, out.logits.data(), chunk);
    progress.add();
  }
  return n_chunks;
}

PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& o) {
  const int64_t V = model.config().vocab_size;
  const int64_t first = o.ctx / 2;
  NllStats nll;
  Stopwatch clock;
  const int64_t chunks = for_each_chunk(model, tokens, o, [&](int64_t, const float* logits, std::span<const int32_t> t) {
    // Row i predicts token i + 1; rows first .. ctx-2 are scored.
    for (int64_t i = first; i < o.ctx - 1; ++i) {
      const float* row = logits + i * V;
      nll.add(static_cast<double>(kernels::log_sum_exp(row, V)) - row[t[i + 1]]);
    }
  });
  PerplexityResult r;
  r.seconds = clock.seconds();
  r.chunks = chunks;
  r.ctx = o.ctx;
  r.tokens_processed = chunks * o.ctx;
  r.tokens_scored = nll.count;
  r.nll_mean = nll.mean();
  r.ppl = std::exp(r.nll_mean);
  r.ppl_stderr = r.ppl * nll.mean_stderr();
  r.nll_stddev = nll.count > 1 ? std::sqrt(std::max(0.0, nll.sum_sq / nll.count - r.nll_mean * r.nll_mean)) : 0;
  return r;
}

}  // namespace qs
