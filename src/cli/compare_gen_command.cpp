// qstudy compare-gen: what quantized models write against what the baseline writes for the same
// prompts and the same random numbers.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/paired_run.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/timer.h"
#include "fidelity/compare.h"

namespace qs::cli {

namespace {

struct CompareArgs {
  PairedRunArgs run;
  fidelity::GenSettings settings;
  bool json = false;
  CommonOptions common;
};

nlohmann::json ci(const eval::ConfidenceInterval& c) { return {c.low, c.high}; }

nlohmann::json comparison_json(const fidelity::Comparison& c) {
  const auto& t = c.text;
  return {{"model", c.model},
          {"n", c.n},
          {"rouge1", t.rouge1_f.mean},
          {"rouge1_ci95", ci(t.rouge1_f.ci)},
          {"rouge2", t.rouge2_f.mean},
          {"rouge2_ci95", ci(t.rouge2_f.ci)},
          {"rougeL", t.rougeL_f.mean},
          {"rougeL_ci95", ci(t.rougeL_f.ci)},
          {"bleu", t.corpus_bleu},
          {"bleu_ci95", ci(t.corpus_bleu_ci)},
          {"chrf", t.corpus_chrf},
          {"chrf_ci95", ci(t.corpus_chrf_ci)},
          {"exact_match", t.exact_match.mean},
          {"exact_match_ci95", ci(t.exact_match.ci)},
          {"token_agreement", c.token_agreement.mean},
          {"token_agreement_ci95", ci(c.token_agreement.ci)},
          {"semantic_sim", c.semantic_sim.mean},
          {"semantic_sim_ci95", ci(c.semantic_sim.ci)},
          {"identical_pct", c.identical_pct},
          {"first_difference_mean", c.first_difference.mean}};
}

}  // namespace

void add_compare_gen_command(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand("compare-gen", "Compare quantized models' generations with the baseline's");
  add_paired_run_options(cmd, a->run);
  add_sampling_options(cmd, a->settings);
  cmd->add_flag("--json", a->json, "Print the metrics as JSON");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    // Everything that can be wrong with the request is found before any model runs.
    a->settings.sampling.validate();
    require(a->settings.max_new_tokens >= 1, "--max-new-tokens: expected >= 1");
    const PairedRun run = plan_paired_run(a->run);
    Stopwatch clock;
    LoadedModel base = load_model_and_tokenizer(a->run.baseline);
    const auto encoded = encode_run_prompts(a->run, run, base, a->settings.max_new_tokens);
    const std::string& out = a->run.out;
    fidelity::GenerationStore store(out.empty() ? "" : out + "/generations.jsonl");
    fidelity::GenerateAllOptions g = run_generation_options(a->run, run, base);
    g.settings = a->settings;
    const auto base_records = fidelity::generate_all(*base.model, *base.tokenizer, "baseline", encoded, g, store);
    fidelity::BaselineScorer scorer(*base.model, *base.tokenizer);
    std::vector<std::vector<int32_t>> base_tokens;
    for (const auto& r : base_records) base_tokens.push_back(r.tokens);
    const auto base_emb = scorer.embed(base_tokens);
    std::vector<fidelity::Comparison> results;
    for (const auto& v : run.variants) {
      LoadedModel m = load_variant(v, a->run.baseline);
      check_same_tokenizer(*base.tokenizer, *m.tokenizer, v.name, a->run.force);
      const auto recs = fidelity::generate_all(*m.model, *m.tokenizer, v.name, encoded, g, store);
      results.push_back(fidelity::compare_generations(base_records, recs, base_emb, scorer));
    }
    nlohmann::json j = {{"baseline", a->run.baseline.model},
                        {"prompts", run.prompts.source},
                        {"settings", a->settings.key()},
                        {"samples", a->run.samples},
                        {"seed", a->run.seed},
                        {"seconds", clock.seconds()},
                        {"models", nlohmann::json::array()}};
    for (const auto& r : results) j["models"].push_back(comparison_json(r));
    if (!out.empty()) write_file_atomic(out + "/metrics.json", j.dump(2));
    if (a->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%zu prompts x %d samples, %s, against %s\n", encoded.size(), a->run.samples, a->settings.key().c_str(),
                a->run.baseline.model.c_str());
    std::printf("%-28s %8s %8s %8s %7s %7s %7s %8s %8s\n", "model", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BLEU", "chrF",
                "exact", "tok.agr", "sem.sim");
    for (const auto& r : results)
      std::printf("%-28s %8.4f %8.4f %8.4f %7.2f %7.2f %7.3f %8.4f %8.4f\n", r.model.c_str(), r.text.rouge1_f.mean,
                  r.text.rouge2_f.mean, r.text.rougeL_f.mean, r.text.corpus_bleu, r.text.corpus_chrf,
                  r.text.exact_match.mean, r.token_agreement.mean, r.semantic_sim.mean);
    std::printf("(95%% bootstrap CIs in --json; semantic similarity = cosine of the baseline's mean-pooled hidden states)\n");
  });
}

}  // namespace qs::cli
