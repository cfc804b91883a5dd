#include "cli/paired_run.h"

#include <filesystem>

#include "cli/task_prompts.h"
#include "core/error.h"

namespace qs::cli {

void add_sampling_options(CLI::App* cmd, fidelity::GenSettings& s) {
  cmd->add_option("--max-new-tokens,-n", s.max_new_tokens, "Most tokens to generate per sample");
  cmd->add_option("--temperature", s.sampling.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", s.sampling.top_k, "Top-k (0: off)");
  cmd->add_option("--top-p", s.sampling.top_p, "Top-p in (0, 1] (1: off)");
  cmd->add_option("--min-p", s.sampling.min_p, "Min-p (0: off)");
}

void add_paired_run_options(CLI::App* cmd, PairedRunArgs& a) {
  cmd->add_option("--baseline,-b", a.baseline.model, "The unquantized model")->required();
  cmd->add_option("--tokenizer", a.baseline.tokenizer, "Tokenizer of the baseline if not beside it");
  cmd->add_option("--model,-m", a.models, "A model to compare (repeatable)");
  cmd->add_option("--variant", a.variants, "SCHEME[:ALGO]: the baseline quantized in memory (repeatable)");
  cmd->add_option("--prompts,-p", a.prompts, "Prompts: .jsonl, .txt (one per line) or a task (gsm8k, arc_easy, ...)")
      ->required();
  cmd->add_option("--field", a.field, "jsonl field holding the prompt");
  cmd->add_option("--limit", a.limit, "Use the first N prompts (0: all)");
  cmd->add_option("--num-fewshot", a.num_fewshot, "Few-shot examples in task prompts (default: the task's)");
  cmd->add_flag("--chat", a.chat, "Format prompts with the tokenizer's chat template");
  cmd->add_option("--on-long", a.on_long, "Prompt longer than the context allows: refuse or truncate")
      ->check(CLI::IsMember({"refuse", "truncate"}));
  cmd->add_option("--samples", a.samples, "Samples per prompt")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.seed, "Seed shared by all models");
  cmd->add_option("--batch", a.batch, "Sequences generated together")->check(CLI::PositiveNumber);
  cmd->add_option("--out,-o", a.out, "Directory for generations.jsonl (resumable) and metrics.json");
  cmd->add_flag("--force", a.force, "Compare even if a model's tokenizer differs");
  add_quantize_options(cmd, a.quant, "");
}

PairedRun plan_paired_run(const PairedRunArgs& a) {
  PairedRun run;
  run.variants = parse_variants(a.models, a.variants, a.quant);
  if (!std::filesystem::exists(a.prompts)) {
    run.task_tokenizer = load_tokenizer_for(a.baseline);
    use_task_prompts(*run.task_tokenizer, a.num_fewshot);
  }
  run.prompts = fidelity::load_prompts(a.prompts, a.field, a.limit);
  if (!a.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    if (ec) fail("--out: cannot create ", a.out, ": ", ec.message());
  }
  return run;
}

std::vector<fidelity::EncodedPrompt> encode_run_prompts(const PairedRunArgs& a, const PairedRun& run,
                                                        const LoadedModel& base, int max_new_tokens) {
  const int64_t ctx = base.model->config().max_position_embeddings;
  require(max_new_tokens < ctx, "--max-new-tokens: ", max_new_tokens, " leaves no room for a prompt in the context of ",
          ctx, " tokens");
  return fidelity::encode_prompts(run.prompts, *base.tokenizer, a.chat, ctx - max_new_tokens,
                                  a.on_long == "truncate" ? fidelity::LongPromptPolicy::Truncate
                                                          : fidelity::LongPromptPolicy::Refuse);
}

fidelity::GenerateAllOptions run_generation_options(const PairedRunArgs& a, const PairedRun& run,
                                                    const LoadedModel& base) {
  fidelity::GenerateAllOptions g;
  g.samples = a.samples;
  g.seed = a.seed;
  g.stop_tokens = stop_tokens(base);
  g.stop_sequences = run.prompts.stop_sequences;
  g.batch = a.batch;
  return g;
}

}  // namespace qs::cli
