// qstudy perplexity: llama.cpp-convention perplexity of a text file.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "cli/quantize_args.h"
#include "core/error.h"
#include "core/files.h"
#include "core/timer.h"
#include "eval/perplexity.h"

namespace qs::cli {

namespace {
struct PerplexityArgs {
  ModelArgs model;
  std::string file;
  int64_t ctx = 0, chunks = 0;
  bool json = false;
  QuantizeArgs quant;
  CommonOptions common;
};
}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file (llama.cpp's llama-perplexity convention)");
  add_model_options(cmd, a->model);
  cmd->add_option("--file,-f", a->file, "UTF-8 text file")->required();
  cmd->add_option("--ctx,-c", a->ctx, "Tokens per chunk (default: 512, or the model's context if smaller)");
  cmd->add_option("--chunks", a->chunks, "Score only the first N chunks (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  add_quantize_options(cmd, a->quant, "--quantize");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    const std::string text = read_text_file(a->file);
    if (!a->quant.scheme.empty()) quantize_options(a->quant);  // validate before loading
    LoadedModel m = load_model_and_tokenizer(a->model);
    apply_quantization(m, a->quant);
    Stopwatch tok_clock;
    const std::vector<int32_t> tokens = m.tokenizer->encode(text, true);
    const double tok_seconds = tok_clock.seconds();
    PerplexityOptions o;
    o.ctx = a->ctx > 0 ? a->ctx : std::min<int64_t>(512, m.model->config().max_position_embeddings);
    o.max_chunks = a->chunks;
    if (m.tokenizer->adds_bos()) o.bos = m.tokenizer->bos_id();
    const PerplexityResult r = compute_perplexity(*m.model, tokens, o);
    if (a->json) {
      nlohmann::json j = {{"ppl", r.ppl},
                          {"ppl_stderr", r.ppl_stderr},
                          {"tokens_scored", r.tokens_scored},
                          {"chunks", r.chunks},
                          {"ctx", r.ctx},
                          {"tokens_per_second", r.tokens_per_second()},
                          {"seconds", r.seconds},
                          {"file_tokens", tokens.size()},
                          {"tokenize_seconds", tok_seconds}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("PPL = %.4f +/- %.5f  (%lld tokens scored in %lld chunks of %lld; %.0f tok/s)\n", r.ppl, r.ppl_stderr,
                  static_cast<long long>(r.tokens_scored), static_cast<long long>(r.chunks),
                  static_cast<long long>(r.ctx), r.tokens_per_second());
    }
  });
}

}  // namespace qs::cli
