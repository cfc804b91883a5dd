// qstudy generate: stream a continuation of a prompt.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "cli/quantize_args.h"
#include "core/error.h"
#include "core/files.h"
#include "generate/generator.h"

namespace qs::cli {

namespace {
struct GenerateArgs {
  ModelArgs model;
  std::string prompt, prompt_file;
  int max_new_tokens = 128;
  SamplingParams sampling;
  uint64_t seed = 0;
  bool json = false, no_special = false;
  QuantizeArgs quant;
  CommonOptions common;
};
}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (streams to stdout)");
  add_model_options(cmd, a->model);
  cmd->add_option("--prompt,-p", a->prompt, "Prompt text");
  cmd->add_option("--prompt-file", a->prompt_file, "Read the prompt from a file");
  cmd->add_option("--max-new-tokens,-n", a->max_new_tokens, "Most tokens to generate")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", a->sampling.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", a->sampling.top_k, "Keep the k most likely tokens (0: off)");
  cmd->add_option("--top-p", a->sampling.top_p, "Nucleus sampling mass in (0, 1] (1: off)");
  cmd->add_option("--min-p", a->sampling.min_p, "Drop tokens below min-p x the top probability (0: off)");
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalty looks back over (-1: all)");
  cmd->add_option("--seed", a->seed, "Random seed (same seed, same output)");
  cmd->add_flag("--no-special", a->no_special, "Do not add BOS to the prompt");
  cmd->add_flag("--json", a->json, "Print one JSON object instead of streaming text");
  add_quantize_options(cmd, a->quant, "--quantize");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    a->sampling.validate();
    if (!a->prompt_file.empty()) a->prompt = read_text_file(a->prompt_file);
    if (!a->quant.scheme.empty()) quantize_options(a->quant);  // validate before loading
    LoadedModel m = load_model_and_tokenizer(a->model);
    apply_quantization(m, a->quant);
    GenerationRequest req{m.tokenizer->encode(a->prompt, !a->no_special), a->seed};
    if (req.prompt.empty()) fail("--prompt: the prompt encodes to no tokens (give a prompt, or allow BOS)");
    GenerateOptions o;
    o.max_new_tokens = a->max_new_tokens;
    o.sampling = a->sampling;
    o.stop_tokens = stop_tokens(m);
    StreamDecoder stream(*m.tokenizer);
    if (!a->json) {
      std::fputs(a->prompt.c_str(), stdout);
      std::fflush(stdout);
    }
    GenerationStats stats;
    auto gen = generate(*m.model, {&req, 1}, o,
                        [&](size_t, int32_t tok) {
                          if (!a->json) {
                            std::fputs(stream.push(tok).c_str(), stdout);
                            std::fflush(stdout);
                          }
                          return true;
                        },
                        &stats);
    const std::string text = m.tokenizer->decode(gen[0].tokens);
    if (a->json) {
      nlohmann::json j = {{"text", text},
                          {"tokens", gen[0].tokens},
                          {"prompt_tokens", req.prompt.size()},
                          {"generated_tokens", gen[0].tokens.size()},
                          {"stop_reason", gen[0].stop_reason},
                          {"prefill_tok_s", stats.prefill_tok_s()},
                          {"decode_tok_s", stats.decode_tok_s()},
                          {"sampling", a->sampling.describe()},
                          {"seed", a->seed}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::fputs(stream.flush().c_str(), stdout);
      std::printf("\n");
      std::fprintf(stderr, "[%zu prompt tokens at %.1f tok/s, %zu generated at %.1f tok/s, stop: %s]\n",
                   req.prompt.size(), stats.prefill_tok_s(), gen[0].tokens.size(), stats.decode_tok_s(),
                   gen[0].stop_reason.c_str());
    }
  });
}

}  // namespace qs::cli
