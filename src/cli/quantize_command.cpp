// qstudy quantize: quantize a model in a scheme with an algorithm, report what changed per
// layer, and write the result in a format other tools load.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "cli/quantize_args.h"
#include "core/error.h"
#include "core/progress.h"
#include "quantize/files/checkpoint.h"
#include "quantize/qlinear.h"

namespace qs::cli {

namespace {
struct QuantizeCommandArgs {
  ModelArgs model;
  QuantizeArgs quant;
  std::string out, format;
  bool list = false, json = false, layers = false;
  CommonOptions common;
};

void print_schemes() {
  std::printf("%-16s %-5s %-22s %s\n", "scheme", "bits", "files", "description");
  for (const auto& s : quant::all_schemes()) {
    std::string files = s.compressed_tensors_format.empty() ? (s.gguf_type.empty() ? "qstudy" : "gguf, qstudy")
                                                            : "compressed-tensors";
    if (s.weight == quant::WeightFormat::Nf4 || s.weight == quant::WeightFormat::Fp4 ||
        s.act == quant::ActFormat::LlmInt8)
      files = "bitsandbytes";
    std::printf("%-16s %-5d %-22s %s\n", s.name.c_str(), s.bits, files.c_str(), s.summary.c_str());
  }
  std::printf("\nalgorithms: rtn (all), rtn-mse, gptq, awq (integer weights), smoothquant, smoothquant+gptq (w8a8)\n");
}
}  // namespace

void add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeCommandArgs>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model (schemes x algorithms) and save it");
  add_model_options(cmd, a->model, false);
  add_quantize_options(cmd, a->quant, "--scheme,-s");
  cmd->add_option("--out,-o", a->out, "Output directory (or .gguf file)");
  cmd->add_option("--format", a->format,
                  "compressed-tensors, bitsandbytes, gguf or qstudy (default: the standard format of the scheme)");
  cmd->add_flag("--list", a->list, "List the schemes and algorithms");
  cmd->add_flag("--layers", a->layers, "Print every layer's format, size and weight error");
  cmd->add_flag("--json", a->json, "Print the report as JSON");
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    if (a->list) return print_schemes();
    require(!a->model.model.empty(), "quantize: --model is required");
    require(!a->quant.scheme.empty(), "quantize: --scheme is required (see qstudy quantize --list)");
    quantize_options(a->quant);  // every option checked before loading anything
    std::optional<quant::CheckpointFormat> format;
    if (!a->format.empty()) format = quant::parse_checkpoint_format(a->format);
    LoadedModel m = load_model_and_tokenizer(a->model);
    for (auto& layer : m.model->weights().layers) {
      if (dynamic_cast<const quant::QuantLinear*>(layer.q.get()))
        fail(a->model.model, ": the model is already quantized (", layer.q->format(),
             "); quantize its unquantized original instead");
    }
    const quant::QuantizeReport report = *apply_quantization(m, a->quant);
    nlohmann::json j = quantize_report_json(report);
    if (!a->out.empty()) {
      const quant::CheckpointFormat f = format ? *format : quant::default_checkpoint_format(*m.model);
      const std::string problem = quant::checkpoint_format_problem(*m.model, f);
      if (!problem.empty()) fail("--format ", quant::checkpoint_format_name(f), ": ", problem);
      const std::string source = m.location.format == ModelFormat::HuggingFace ? m.location.weights : "";
      quant::SaveOptions so;
      so.tokenizer = m.tokenizer.get();
      const quant::SavedCheckpoint saved = quant::save_quantized_model(*m.model, source, a->out, f, so);
      j["saved"] = {{"path", saved.path},
                    {"format", quant::checkpoint_format_name(saved.format)},
                    {"files", saved.files},
                    {"bytes_on_disk", saved.bytes_on_disk}};
      std::fprintf(stderr, "wrote %s (%s, %s on disk)\n", saved.path.c_str(),
                   quant::checkpoint_format_name(saved.format).c_str(),
                   format_bytes(static_cast<double>(saved.bytes_on_disk)).c_str());
    }
    if (a->json) std::printf("%s\n", j.dump(2).c_str());
    else print_quantize_report(report, a->layers);
  });
}

}  // namespace qs::cli
