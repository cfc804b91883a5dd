// qstudy kld: KL divergence of a model from its baseline over a text, with llama.cpp's
// statistics (llama-perplexity --kl-divergence), both models run chunk by chunk in one process.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "core/files.h"
#include "eval/kld_run.h"
#include "eval/model_identity.h"

namespace qs::cli {

namespace {
struct KldArgs {
  ModelArgs model, baseline;
  std::string file, baseline_file, save_baseline;
  int64_t ctx = 0, chunks = 0;
  int top_k = eval::CompactBaseline::kDefaultK;
  bool json = false, force = false;
  CommonOptions common;
};
}  // namespace

void add_kld_command(CLI::App& app) {
  auto a = std::make_shared<KldArgs>();
  auto* cmd = app.add_subcommand("kld", "KL divergence of a model from its baseline over a text (llama.cpp's statistics)");
  add_model_options(cmd, a->model);
  cmd->add_option("--baseline,-b", a->baseline.model, "Baseline model (run alongside the model, chunk by chunk)");
  cmd->add_option("--baseline-tokenizer", a->baseline.tokenizer, "The baseline's tokenizer if not beside it");
  cmd->add_option("--baseline-file", a->baseline_file, "A compact top-k baseline saved by --save-baseline (instead of --baseline)");
  cmd->add_option("--save-baseline", a->save_baseline, "Also store the baseline as top-k log-probs + tail mass in this file");
  cmd->add_option("--top-k", a->top_k, "Log-probs kept per token in --save-baseline (KLD from it is a lower bound)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--file,-f", a->file, "UTF-8 text file")->required();
  cmd->add_option("--ctx,-c", a->ctx, "Tokens per chunk (default: 512, or the models' context if smaller)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--chunks", a->chunks, "Score only the first N chunks (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_flag("--force", a->force, "Compare with a baseline whose tokenizer differs");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    if (a->baseline.model.empty() == a->baseline_file.empty())
      fail("kld: give exactly one of --baseline (a model) and --baseline-file (a saved compact baseline)");
    if (!a->save_baseline.empty() && a->baseline.model.empty()) fail("--save-baseline needs --baseline (a model to summarise)");
    const std::string text = read_text_file(a->file);
    LoadedModel m = load_model_and_tokenizer(a->model);
    std::optional<LoadedModel> b;
    std::optional<eval::CompactBaseline> compact;
    if (!a->baseline.model.empty()) {
      b = load_model_and_tokenizer(a->baseline);
      const std::string diff = eval::tokenizer_difference(*m.tokenizer, *b->tokenizer);
      if (!diff.empty() && !a->force)
        fail("--baseline: its tokenizer differs from the model's (", diff,
             "); per-token distributions would not line up (pass --force to compare anyway)");
    } else {
      compact = eval::CompactBaseline::load(a->baseline_file);
    }
    const std::vector<int32_t> tokens = m.tokenizer->encode(text, true);
    eval::KldRunOptions o;
    int64_t limit = m.model->config().max_position_embeddings;
    if (b) limit = std::min(limit, b->model->config().max_position_embeddings);
    o.ctx = a->ctx > 0 ? a->ctx : std::min<int64_t>(512, limit);
    o.max_chunks = a->chunks;
    if (m.tokenizer->adds_bos()) o.bos = m.tokenizer->bos_id();
    o.save_top_k = a->save_baseline.empty() ? 0 : a->top_k;
    const eval::KldRunResult r =
        eval::compute_kld(b ? b->model.get() : nullptr, compact ? &*compact : nullptr, *m.model, tokens, o);
    if (r.compact) r.compact->save(a->save_baseline);
    const eval::KldStats& s = r.stats;
    if (a->json) {
      nlohmann::json j = {{"kld_mean", s.kld_mean},          {"kld_mean_err", s.kld_mean_err},
                          {"kld_median", s.kld_median},      {"kld_p1", s.kld_p1},
                          {"kld_p5", s.kld_p5},              {"kld_p10", s.kld_p10},
                          {"kld_p90", s.kld_p90},            {"kld_p95", s.kld_p95},
                          {"kld_p99", s.kld_p99},            {"kld_p99_9", s.kld_p99_9},
                          {"kld_max", s.kld_max},            {"kld_min", s.kld_min},
                          {"same_top_pct", s.same_top_pct},  {"same_top_pct_err", s.same_top_pct_err},
                          {"dp_mean", s.dp_mean},            {"dp_mean_err", s.dp_mean_err},
                          {"dp_rms", s.dp_rms},              {"dp_rms_err", s.dp_rms_err},
                          {"dp_p1", s.dp_p1},                {"dp_p5", s.dp_p5},
                          {"dp_p10", s.dp_p10},              {"dp_median", s.dp_median},
                          {"dp_p90", s.dp_p90},              {"dp_p95", s.dp_p95},
                          {"dp_p99", s.dp_p99},              {"dp_max", s.dp_max},
                          {"dp_min", s.dp_min},              {"ppl_base", s.ppl_base},
                          {"ppl_base_err", s.ppl_base_err},  {"ppl_model", s.ppl_model},
                          {"ppl_model_err", s.ppl_model_err}, {"ppl_ratio", s.ppl_ratio},
                          {"ppl_ratio_err", s.ppl_ratio_err}, {"ln_ppl_ratio", s.ln_ppl_ratio},
                          {"ln_ppl_ratio_err", s.ln_ppl_ratio_err}, {"ln_ppl_correlation", s.ln_ppl_correlation},
                          {"tokens", s.tokens},              {"chunks", r.chunks},
                          {"ctx", r.ctx},                    {"seconds", r.seconds},
                          {"kld_is_lower_bound", s.kld_is_lower_bound},
                          {"baseline_tail_mass_mean", s.baseline_tail_mass_mean},
                          {"model", a->model.model},
                          {"baseline", b ? a->baseline.model : a->baseline_file}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("%s", eval::llama_style_report(s).c_str());
      std::printf("\n%zu tokens scored in %lld chunks of %lld (%.1fs)%s\n", s.tokens, static_cast<long long>(r.chunks),
                  static_cast<long long>(r.ctx), r.seconds,
                  s.kld_is_lower_bound ? "; KLD values are lower bounds (top-k baseline)" : "");
    }
  });
}

}  // namespace qs::cli
