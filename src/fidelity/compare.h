// A model's generations against the baseline's, pair by pair (same prompt, same sample seed):
// text similarity with rouge-score / sacreBLEU definitions, token agreement, and semantic
// similarity under the baseline model, each with a bootstrap 95% CI over pairs.
#pragma once

#include <string>
#include <vector>

#include "eval/stats.h"
#include "fidelity/baseline_scoring.h"
#include "fidelity/paired_generation.h"
#include "fidelity/text_metrics.h"

namespace qs::fidelity {

struct Comparison {
  std::string model;
  size_t n = 0;
  TextPairSummary text;
  eval::MeanWithCI token_agreement, semantic_sim;
  eval::MeanWithCI first_difference;  // over pairs that differ (token position, -1 excluded)
  double identical_pct = 0;           // pairs with identical tokens
};

// `baseline_embeddings` are BaselineScorer::embed of the baseline records (computed once).
Comparison compare_generations(const std::vector<GenRecord>& baseline, const std::vector<GenRecord>& model,
                               const std::vector<std::vector<float>>& baseline_embeddings,
                               const BaselineScorer& scorer);

}  // namespace qs::fidelity
