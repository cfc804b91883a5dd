// Scores generated texts with the baseline model itself:
//  - semantic similarity: cosine of mean-pooled final hidden states (after the final RMSNorm) of
//    the baseline over each text's tokens. It is a similarity under the baseline model's own
//    representations, not BERTScore and not a sentence-embedding model.
//  - fluency proxy: the mean log-probability per token of a generation after its prompt under
//    the baseline.
// Texts are the generated token ids (all models share the tokenizer), with BOS in front when the
// tokenizer adds one; texts longer than the context keep their first tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs::fidelity {

class BaselineScorer {
 public:
  BaselineScorer(const Model& baseline, const Tokenizer& tokenizer, int batch = 8);
  // One embedding per text; an empty text gets an empty vector.
  std::vector<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& texts) const;
  // Mean log p(continuation | prompt) per continuation token; NaN for an empty continuation.
  std::vector<double> mean_logprob(const std::vector<std::vector<int32_t>>& prompts,
                                   const std::vector<std::vector<int32_t>>& continuations) const;

 private:
  const Model& model_;
  const Tokenizer& tok_;
  int batch_;
};

// Cosine similarity; two empty vectors count 1 (identical empty texts), one empty 0.
double cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace qs::fidelity
