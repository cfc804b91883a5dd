// What compare-gen and sweep share: the baseline, the models compared with it, the prompts and
// how they are generated. Everything that can be wrong with a request (sampling values, schemes,
// the prompt file, the output folder) is found by plan_paired_run before any model loads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/model_variants.h"
#include "fidelity/paired_generation.h"
#include "fidelity/prompts.h"

namespace qs::cli {

struct PairedRunArgs {
  ModelArgs baseline;
  std::vector<std::string> models, variants;
  QuantizeArgs quant;
  std::string prompts, field = "prompt", out, on_long = "refuse";
  bool chat = false, force = false;
  int64_t limit = 0;
  int samples = 1, batch = 16, num_fewshot = -1;
  uint64_t seed = 0;
};

// --baseline, --tokenizer, --model, --variant, --prompts, --field, --limit, --num-fewshot, --chat,
// --on-long, --samples, --seed, --batch, --out, --force and the quantization options.
void add_paired_run_options(CLI::App* cmd, PairedRunArgs& args);
// --max-new-tokens, --temperature, --top-k, --top-p, --min-p for a single setting.
void add_sampling_options(CLI::App* cmd, fidelity::GenSettings& settings);

struct PairedRun {
  std::vector<VariantSpec> variants;
  fidelity::PromptSet prompts;
  std::unique_ptr<Tokenizer> task_tokenizer;  // builds task prompts (kept alive with them)
};
PairedRun plan_paired_run(const PairedRunArgs& args);

// The baseline's encoding of the prompts, leaving room for `max_new_tokens` in its context.
std::vector<fidelity::EncodedPrompt> encode_run_prompts(const PairedRunArgs& args, const PairedRun& run,
                                                        const LoadedModel& baseline, int max_new_tokens);
// Samples, seed, batch, stop tokens and sequences of the run (settings left to the caller).
fidelity::GenerateAllOptions run_generation_options(const PairedRunArgs& args, const PairedRun& run,
                                                    const LoadedModel& baseline);

}  // namespace qs::cli
