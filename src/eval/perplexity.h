// Perplexity in llama.cpp's convention (llama-perplexity), so numbers compare with it: the whole
// text is tokenized once (with BOS when the tokenizer adds one), cut into non-overlapping chunks
// of `ctx` tokens, each chunk's first token is replaced by BOS (when the tokenizer adds one),
// only the second half of each chunk is scored (tokens ctx/2+1 .. ctx-1, each predicted from
// everything before it in the chunk), and PPL = exp(mean NLL) with standard error
// PPL * sqrt(var(NLL) / (n - 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "model/model.h"

namespace qs {

struct PerplexityOptions {
  int64_t ctx = 512;
  std::optional<int32_t> bos;  // replaces each chunk's first token when set
  int64_t max_chunks = 0;      // 0: all
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0;
  double nll_mean = 0, nll_stddev = 0;
  int64_t tokens_scored = 0;
  int64_t chunks = 0, ctx = 0;
  int64_t tokens_processed = 0;  // chunks * ctx: what the model ran
  double seconds = 0;
  double tokens_per_second() const { return seconds > 0 ? tokens_processed / seconds : 0; }
};

// Calls `on_chunk(chunk index, logits [ctx, vocab], chunk tokens)` for every chunk, after the
// model has run it. Shared by perplexity and KL-divergence measurement.
using ChunkFn = std::function<void(int64_t chunk, const float* logits, std::span<const int32_t> tokens)>;
int64_t for_each_chunk(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options,
                       const ChunkFn& on_chunk);

PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options);

// NLL accumulator in llama.cpp's definition (sum and sum of squares of per-token NLL).
struct NllStats {
  double sum = 0, sum_sq = 0;
  int64_t count = 0;
  void add(double nll) {
    sum += nll;
    sum_sq += nll * nll;
    ++count;
  }
  double mean() const { return count ? sum / count : 0; }
  // Standard error of the mean NLL: sqrt((E[x^2] - E[x]^2) / (n - 1)).
  double mean_stderr() const;
};

}  // namespace qs
