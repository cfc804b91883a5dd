// qstudy compare-gen: what quantized models write against what the baseline writes for the same
// prompts and the same random numbers.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_variants.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/timer.h"
#include "fidelity/compare.h"

namespace qs::cli {

namespace {

struct CompareArgs {
  ModelArgs baseline;
  std::vector<std::string> models, variants;
  QuantizeArgs quant;
  std::string prompts, field = "prompt", out, on_long = "refuse";
  bool chat = false, json = false, force = false;
  int64_t limit = 0;
  int samples = 1, batch = 16;
  uint64_t seed = 0;
  fidelity::GenSettings settings;
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

void add_sampling_options(CLI::App* cmd, fidelity::GenSettings& s) {
  cmd->add_option("--max-new-tokens,-n", s.max_new_tokens, "Most tokens to generate per sample");
  cmd->add_option("--temperature", s.sampling.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", s.sampling.top_k, "Top-k (0: off)");
  cmd->add_option("--top-p", s.sampling.top_p, "Top-p in (0, 1] (1: off)");
  cmd->add_option("--min-p", s.sampling.min_p, "Min-p (0: off)");
}

void add_compare_gen_command(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand("compare-gen", "Compare quantized models' generations with the baseline's");
  cmd->add_option("--baseline,-b", a->baseline.model, "The unquantized model")->required();
  cmd->add_option("--tokenizer", a->baseline.tokenizer, "Tokenizer of the baseline if not beside it");
  cmd->add_option("--model,-m", a->models, "A model to compare (repeatable)");
  cmd->add_option("--variant", a->variants, "SCHEME[:ALGO]: the baseline quantized in memory (repeatable)");
  cmd->add_option("--prompts,-p", a->prompts, "Prompts: .jsonl, .txt (one per line) or a task name")->required();
  cmd->add_option("--field", a->field, "jsonl field holding the prompt");
  cmd->add_option("--limit", a->limit, "Use the first N prompts (0: all)");
  cmd->add_flag("--chat", a->chat, "Format prompts with the tokenizer's chat template");
  cmd->add_option("--on-long", a->on_long, "Prompt longer than the context allows: refuse or truncate")
      ->check(CLI::IsMember({"refuse", "truncate"}));
  add_sampling_options(cmd, a->settings);
  cmd->add_option("--samples", a->samples, "Samples per prompt")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed shared by all models");
  cmd->add_option("--batch", a->batch, "Sequences generated together")->check(CLI::PositiveNumber);
  cmd->add_option("--out,-o", a->out, "Directory for generations.jsonl (resumable) and metrics.json");
  cmd->add_flag("--force", a->force, "Compare even if a model's tokenizer differs");
  cmd->add_flag("--json", a->json, "Print the metrics as JSON");
  add_quantize_options(cmd, a->quant, "");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    // Everything that can be wrong with the request is found before any model runs.
    a->settings.sampling.validate();
    require(a->settings.max_new_tokens >= 1, "--max-new-tokens: expected >= 1");
    const auto variants = parse_variants(a->models, a->variants, a->quant);
    const fidelity::PromptSet prompts = fidelity::load_prompts(a->prompts, a->field, a->limit);
    if (!a->out.empty()) std::filesystem::create_directories(a->out);
    Stopwatch clock;
    LoadedModel base = load_model_and_tokenizer(a->baseline);
    const int64_t ctx = base.model->config().max_position_embeddings;
    require(a->settings.max_new_tokens < ctx, "--max-new-tokens: ", a->settings.max_new_tokens,
            " leaves no room for a prompt in the context of ", ctx);
    const auto encoded = fidelity::encode_prompts(prompts, *base.tokenizer, a->chat, ctx - a->settings.max_new_tokens,
                                                  a->on_long == "truncate" ? fidelity::LongPromptPolicy::Truncate
                                                                           : fidelity::LongPromptPolicy::Refuse);
    fidelity::GenerationStore store(a->out.empty() ? "" : a->out + "/generations.jsonl");
    fidelity::GenerateAllOptions g;
    g.settings = a->settings;
    g.samples = a->samples;
    g.seed = a->seed;
    g.stop_tokens = stop_tokens(base);
    g.stop_sequences = prompts.stop_sequences;
    g.batch = a->batch;
    const auto base_records = fidelity::generate_all(*base.model, *base.tokenizer, "baseline", encoded, g, store);
    fidelity::BaselineScorer scorer(*base.model, *base.tokenizer);
    std::vector<std::vector<int32_t>> base_tokens;
    for (const auto& r : base_records) base_tokens.push_back(r.tokens);
    const auto base_emb = scorer.embed(base_tokens);
    std::vector<fidelity::Comparison> results;
    for (const auto& v : variants) {
      LoadedModel m = load_variant(v, a->baseline);
      check_same_tokenizer(*base.tokenizer, *m.tokenizer, v.name, a->force);
      const auto recs = fidelity::generate_all(*m.model, *m.tokenizer, v.name, encoded, g, store);
      results.push_back(fidelity::compare_generations(base_records, recs, base_emb, scorer));
    }
    nlohmann::json j = {{"baseline", a->baseline.model},
                        {"prompts", prompts.source},
                        {"settings", a->settings.key()},
                        {"samples", a->samples},
                        {"seed", a->seed},
                        {"seconds", clock.seconds()},
                        {"models", nlohmann::json::array()}};
    for (const auto& r : results) j["models"].push_back(comparison_json(r));
    if (!a->out.empty()) write_file_atomic(a->out + "/metrics.json", j.dump(2));
    if (a->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%zu prompts x %d samples, %s, against %s\n", encoded.size(), a->samples, a->settings.key().c_str(),
                a->baseline.model.c_str());
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
