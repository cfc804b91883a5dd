// Log-likelihood scoring of many (context, continuation) requests, as lm-evaluation-harness's
// HFLM._loglikelihood_tokens defines it: input = (context + continuation)[-(max_length+1):][:-1],
// logprob = sum of log_softmax(logits)[row, token] over the continuation's rows, greedy = every
// continuation token is its row's argmax (first index on ties, as torch.argmax).
//
// How it is fast:
//  - requests are ordered by length (longest first, a document's requests kept together) and
//    processed in chunks sized to a KV-cache memory budget;
//  - within a chunk, the inputs form a radix tree of shared token prefixes: a context shared by
//    the choices of a question (or a few-shot prefix shared by all MMLU questions of a subject) is
//    computed once and its KV cache copied (KVCache::copy_prefix) or handed on to the branches
//    that continue it;
//  - the tree is run level by level: all nodes of a level go through Model::forward together, so
//    every linear layer is one GEMM over many sequences' rows; logits are computed only for rows
//    that are scored;
//  - log-softmax rows are reduced in parallel on the thread pool.
// Results are identical (to float rounding of the engine's kernels) to running each request
// alone; tests/eval/scorer_test.cpp checks that against independent forwards.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "eval/requests.h"
#include "model/model.h"

namespace qs::eval {

struct ScoreOptions {
  int64_t max_length = 0;                 // lm-eval max_length (0: the model's context)
  int64_t kv_budget_bytes = int64_t{1} << 30;  // KV cache memory for one chunk
  int64_t logits_budget_bytes = int64_t{256} << 20;  // logits of one forward call
  bool share_prefixes = true;             // false: every request runs alone (reference path)
};

struct ScoreResult {
  double logprob = 0;
  bool greedy = true;
  int64_t tokens = 0;  // continuation tokens scored
};

struct ScoreStats {
  int64_t requests = 0;
  int64_t request_tokens = 0;  // sum of input lengths: what scoring each request alone would run
  int64_t model_tokens = 0;    // tokens actually run through the model (shared prefixes once)
  int64_t forward_calls = 0, chunks = 0;
  double seconds = 0;
};

// Scores `requests` (consecutive requests with the same `doc` are kept together). `on_done`
// receives the number of requests finished after each chunk.
std::vector<ScoreResult> score_requests(const Model& model, std::span<const LLRequest> requests,
                                        const ScoreOptions& options, ScoreStats* stats = nullptr,
                                        const std::function<void(int64_t)>& on_done = {});

}  // namespace qs::eval
