// qstudy synth: random-weight models with the shapes of real ones, for speed work.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/shared_paths.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/timer.h"
#include "model/synth.h"

namespace qs::cli {

namespace {
struct SynthArgs {
  std::string preset, out, dtype = "bf16", tokenizer;
  uint64_t seed = 0;
  bool list = false;
  CommonOptions common;
};
}  // namespace

void add_synth_command(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", "Write a random-weight model with a real model's shapes (for speed work)");
  cmd->add_option("--preset,-p", args->preset, "Model shape (see --list)");
  cmd->add_option("--out,-o", args->out, "Output directory (Hugging Face layout)");
  cmd->add_option("--dtype", args->dtype, "Weight dtype: bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_option("--seed", args->seed, "Random seed");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "Directory with tokenizer.json to copy (default: the preset's tokenizer in ../shared/tokenizers)");
  cmd->add_flag("--list", args->list, "List the presets");
  add_common_options(cmd, args->common);
  cmd->callback([args] {
    apply_common_options(args->common);
    if (args->list) {
      for (const auto& p : synth_presets())
        std::printf("%-16s %6.2fB params  %s\n", p.name.c_str(), p.config.parameter_count() / 1e9, p.description.c_str());
      return;
    }
    require(!args->preset.empty(), "synth: --preset is required (see qstudy synth --list)");
    require(!args->out.empty(), "synth: --out is required");
    const SynthPreset& preset = find_synth_preset(args->preset);
    SynthOptions o;
    o.dtype = args->dtype == "f32" ? DType::F32 : args->dtype == "f16" ? DType::F16 : DType::BF16;
    o.seed = args->seed;
    o.tokenizer_dir = args->tokenizer;
    if (o.tokenizer_dir.empty() && !preset.tokenizer.empty()) {
      const std::string shared = find_shared_dir();
      if (!shared.empty() && is_directory(shared + "/tokenizers/" + preset.tokenizer))
        o.tokenizer_dir = shared + "/tokenizers/" + preset.tokenizer;
      else
        std::fprintf(stderr, "qstudy: warning: ../shared/tokenizers/%s not found; writing a byte-level tokenizer\n",
                     preset.tokenizer.c_str());
    }
    Stopwatch clock;
    const int64_t bytes = write_synthetic_model(preset.config, args->out, o);
    std::fprintf(stderr, "wrote %s (%s, %s of weights) in %s\n", args->out.c_str(), preset.name.c_str(),
                 format_bytes(static_cast<double>(bytes)).c_str(), format_duration(clock.seconds()).c_str());
  });
}

}  // namespace qs::cli
