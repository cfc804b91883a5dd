// `qstudy kld`: the KL divergence of a model's next-token distributions from a baseline's over a
// text, with llama.cpp's `llama-perplexity --kl-divergence` conventions (see eval/kld.h for the
// statistics): the text is tokenized once (BOS first when the tokenizer adds one), cut into
// chunks of `ctx` tokens whose first token is replaced by BOS, and positions ctx/2 .. ctx-2 of
// each chunk are scored against the next token. Unlike llama.cpp, which first writes the
// baseline's full-vocabulary log-probs to a file (~11 GiB for Llama-3-8B on WikiText-2), both
// models run here chunk by chunk in one process; optionally the baseline is summarised into (or
// read from) a compact top-k file whose KLD is a documented lower bound.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "eval/kld.h"
#include "model/model.h"

namespace qs::eval {

struct KldRunOptions {
  int64_t ctx = 512;
  int64_t max_chunks = 0;      // 0: all
  std::optional<int32_t> bos;  // replaces each chunk's first token when set
  int save_top_k = 0;          // > 0: also summarise the baseline into a CompactBaseline
};

struct KldRunResult {
  KldStats stats;
  int64_t chunks = 0, ctx = 0;
  double seconds = 0;
  std::optional<CompactBaseline> compact;  // when save_top_k > 0
};

// Exactly one of `baseline` (a model) and `compact` (a stored top-k baseline) is given. A compact
// baseline must come from the same text, ctx and chunks (its token count is checked).
KldRunResult compute_kld(const Model* baseline, const CompactBaseline* compact, const Model& model,
                         std::span<const int32_t> tokens, const KldRunOptions& options);

}  // namespace qs::eval
