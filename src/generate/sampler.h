// Next-token selection. The pipeline follows Hugging Face transformers and vLLM (not llama.cpp):
//   repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw.
// Temperature 0 is greedy (argmax, lowest id on ties). The draw is an inverse-CDF lookup over
// token ids in their natural order with ONE uniform number per step, supplied by the caller: two
// models fed the same uniforms (same seed) pick the same token wherever their distributions
// agree, so differences between a baseline and its quantized variant come from the models, not
// from sampling noise.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qs {

struct SamplingParams {
  double temperature = 0.0;     // 0: greedy
  int top_k = 0;                // 0: off
  double top_p = 1.0;           // 1: off; (0, 1]
  double min_p = 0.0;           // 0: off; keep tokens with p >= min_p * p_max
  double repeat_penalty = 1.0;  // 1: off; HF/CTRL rule: logit > 0 ? logit / r : logit * r
  int repeat_last_n = 64;       // tokens the penalty looks back over (0: none, -1: all)

  // Throws qs::Error naming the flag for invalid values (negative temperature, top-p outside
  // (0, 1], top-k < 0, ...). Called before any work starts.
  void validate() const;
  bool greedy() const { return temperature == 0.0; }
  std::string describe() const;  // "greedy" or "T=0.7 top_k=40 top_p=0.95"
};

// Reusable buffers so sampling allocates nothing per step.
class Sampler {
 public:
  explicit Sampler(SamplingParams params) : params_(params) { params_.validate(); }
  const SamplingParams& params() const { return params_; }
  // Picks a token from `logits`. `history` are the tokens so far (prompt and generated) for the
  // repetition penalty; `u` is uniform in [0, 1).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history, double u);
  // The final distribution the last sample() drew from (token id, probability), ids ascending.
  const std::vector<std::pair<int32_t, float>>& last_distribution() const { return kept_; }

 private:
  SamplingParams params_;
  std::vector<float> scaled_;
  std::vector<int32_t> order_;
  std::vector<std::pair<int32_t, float>> kept_;
};

// Index of the largest value (lowest index on ties).
int32_t argmax(std::span<const float> x);

}  // namespace qs
