// qstudy bench: whole-model speed and memory against this machine's floors.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/model_bench.h"
#include "cli/commands.h"
#include "cli/model_args.h"
#include "cli/quantize_args.h"
#include "core/cpu.h"
#include "core/progress.h"

namespace qs::cli {

namespace {
struct BenchArgs {
  ModelArgs model;
  BenchOptions bench;
  bool json = false, no_roofline = false;
  QuantizeArgs quant;
  CommonOptions common;
};
}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Prefill and decode speed, memory, and % of this machine's roofline");
  add_model_options(cmd, a->model);
  cmd->add_option("--prompt-tokens", a->bench.prompt_tokens, "Prompt length for prefill");
  cmd->add_option("--gen-tokens", a->bench.gen_tokens, "Tokens decoded after the prompt");
  cmd->add_option("--batch", a->bench.batch, "Sequences processed together");
  cmd->add_option("--repetitions,-r", a->bench.repetitions, "Timed runs (median reported)");
  cmd->add_option("--seed", a->bench.seed, "Seed of the random prompt");
  cmd->add_flag("--no-roofline", a->no_roofline, "Skip measuring bandwidth and peak FLOP/s");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  add_quantize_options(cmd, a->quant, "--quantize");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    a->bench.measure_machine = !a->no_roofline;
    if (!a->quant.scheme.empty()) quantize_options(a->quant);  // validate before loading
    LoadedModel m = load_model_and_tokenizer(a->model);
    apply_quantization(m, a->quant);
    const BenchResult r = run_bench(*m.model, a->bench);
    if (a->json) {
      nlohmann::json j = {{"model", m.model->source()},
                          {"cpu", cpu_summary()},
                          {"threads", r.threads},
                          {"prompt_tokens", r.prompt_tokens},
                          {"gen_tokens", r.gen_tokens},
                          {"batch", r.batch},
                          {"load_seconds", m.load_seconds},
                          {"prefill_tok_s", r.prefill_tok_s},
                          {"decode_tok_s", r.decode_tok_s},
                          {"prefill_runs_tok_s", r.prefill_runs},
                          {"decode_runs_tok_s", r.decode_runs},
                          {"model_bytes", r.model_bytes},
                          {"decode_bytes_per_token", r.decode_bytes_per_token},
                          {"peak_rss_bytes", r.peak_rss_bytes},
                          {"bandwidth_gb_s", r.bandwidth_gb_s},
                          {"peak_gflops", r.peak_gflops},
                          {"peak_arithmetic", r.peak_arithmetic},
                          {"decode_roofline_tok_s", r.decode_roofline_tok_s},
                          {"decode_roofline_pct", r.decode_roofline_pct},
                          {"prefill_flops", r.prefill_flops},
                          {"prefill_roofline_tok_s", r.prefill_roofline_tok_s},
                          {"prefill_roofline_pct", r.prefill_roofline_pct}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("model      %s (%s weights), loaded in %.2fs\n", m.model->source().c_str(),
                format_bytes(static_cast<double>(r.model_bytes)).c_str(), m.load_seconds);
    std::printf("machine    %s, %d threads\n", cpu_summary().c_str(), r.threads);
    std::printf("prefill    %8.1f tok/s  (%lld tokens x %d)", r.prefill_tok_s, static_cast<long long>(r.prompt_tokens),
                r.batch);
    if (r.peak_gflops > 0)
      std::printf("  %5.1f%% of %.0f G%sOP/s %s peak", r.prefill_roofline_pct, r.peak_gflops,
                  r.peak_arithmetic == "int8" ? "" : "FL", r.peak_arithmetic.c_str());
    std::printf("\ndecode     %8.1f tok/s  (%lld tokens x %d)", r.decode_tok_s, static_cast<long long>(r.gen_tokens),
                r.batch);
    if (r.bandwidth_gb_s > 0)
      std::printf("  %5.1f%% of roofline %.1f tok/s (%s/token at %.1f GB/s)", r.decode_roofline_pct,
                  r.decode_roofline_tok_s, format_bytes(static_cast<double>(r.decode_bytes_per_token)).c_str(),
                  r.bandwidth_gb_s);
    std::printf("\nmemory     peak RSS %s\n", format_bytes(static_cast<double>(r.peak_rss_bytes)).c_str());
  });
}

}  // namespace qs::cli
