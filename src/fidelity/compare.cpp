#include "fidelity/compare.h"

#include "core/error.h"

namespace qs::fidelity {

Comparison compare_generations(const std::vector<GenRecord>& baseline, const std::vector<GenRecord>& model,
                               const std::vector<std::vector<float>>& baseline_embeddings,
                               const BaselineScorer& scorer) {
  require(baseline.size() == model.size() && baseline.size() == baseline_embeddings.size(),
          "compare: ", model.size(), " generations against ", baseline.size(), " of the baseline");
  Comparison c;
  c.model = model.empty() ? "" : model[0].model;
  c.n = model.size();
  std::vector<std::string> base_text, model_text;
  std::vector<double> agreement, first_diff, sim;
  std::vector<std::vector<int32_t>> model_tokens;
  size_t identical = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    require(baseline[i].prompt_id == model[i].prompt_id && baseline[i].sample == model[i].sample,
            "compare: generations are not paired (prompt ", quote(model[i].prompt_id), ")");
    base_text.push_back(baseline[i].text);
    model_text.push_back(model[i].text);
    const TokenAgreement ta = token_agreement(baseline[i].tokens, model[i].tokens);
    agreement.push_back(ta.agreement);
    if (ta.first_difference >= 0) first_diff.push_back(static_cast<double>(ta.first_difference));
    else ++identical;
    model_tokens.push_back(model[i].tokens);
  }
  const auto emb = scorer.embed(model_tokens);
  for (size_t i = 0; i < model.size(); ++i) sim.push_back(cosine(baseline_embeddings[i], emb[i]));
  c.text = summarize_pairs(base_text, model_text);
  c.token_agreement = eval::mean_with_ci(agreement);
  c.semantic_sim = eval::mean_with_ci(sim);
  if (!first_diff.empty()) c.first_difference = eval::mean_with_ci(first_diff);
  c.identical_pct = model.empty() ? 0 : 100.0 * identical / model.size();
  return c;
}

}  // namespace qs::fidelity
