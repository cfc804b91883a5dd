// Text generation over the model: prompts are prefilled together, then every unfinished sequence
// advances by one token per forward pass (one batched decode step), until each hits an end
// token, a caller's stop condition, its token budget or the context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "model/model.h"

namespace qs {

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int32_t> stop_tokens;  // end-of-sequence ids
  int64_t context = 0;               // KV capacity per sequence; 0: prompt + max_new_tokens (capped by the model)
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // non-empty
  uint64_t seed = 0;            // the uniforms of step t are the t-th draws of Rng(seed)
};

struct Generation {
  std::vector<int32_t> tokens;  // generated tokens (an end token is not included)
  std::string stop_reason;      // "eos", "length", "stop" (caller), "context"
  std::vector<float> token_logprobs;  // log-probability of each generated token under the model (raw logits)
};

struct GenerationStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t decode_tokens = 0;  // tokens run through decode passes (the first token comes from prefill)
  double prefill_seconds = 0, decode_seconds = 0;
  double prefill_tok_s() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tok_s() const { return decode_seconds > 0 ? decode_tokens / decode_seconds : 0; }
};

// Called after each generated token of request `index`; return false to stop that request.
using TokenCallback = std::function<bool(size_t index, int32_t token)>;

std::vector<Generation> generate(const Model& model, std::span<const GenerationRequest> requests,
                                 const GenerateOptions& options, const TokenCallback& on_token = {},
                                 GenerationStats* stats = nullptr);

}  // namespace qs
