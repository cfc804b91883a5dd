#include "cli/quantize_args.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"
#include "quantize/calib_data.h"

namespace qs::cli {

void add_quantize_options(CLI::App* cmd, QuantizeArgs& a, const std::string& scheme_flag) {
  const std::string group = "Quantization";
  if (!scheme_flag.empty())
    cmd->add_option(scheme_flag, a.scheme, "Quantization scheme (see qstudy quantize --list)")->group(group);
  cmd->add_option("--algo", a.algorithm, "rtn, rtn-mse, gptq, awq, smoothquant, smoothquant+gptq")->group(group);
  cmd->add_option("--group-size", a.group_size, "Group size along the input (0: per channel)")->group(group);
  cmd->add_flag("--asym", a.asym, "Asymmetric integer weights (zero points)")->group(group);
  cmd->add_flag("--sym", a.sym, "Symmetric integer weights")->group(group);
  cmd->add_option("--calib", a.calib, "Calibration text (.txt) or .jsonl file")->group(group);
  cmd->add_option("--calib-field", a.calib_field, "jsonl field with the text")->group(group);
  cmd->add_option("--calib-samples", a.calib_samples, "Calibration sequences")->group(group);
  cmd->add_option("--calib-seqlen", a.calib_seqlen, "Tokens per calibration sequence (default 512 or the context)")
      ->group(group);
  cmd->add_option("--calib-seed", a.seed, "Seed for drawing calibration windows")->group(group);
  cmd->add_flag("--include-head", a.include_head, "Also quantize the output head")->group(group);
  cmd->add_option("--override", a.overrides, "PATTERN=SCHEME|none for layers matching the regex (repeatable)")
      ->group(group);
  cmd->add_flag("--fallback", a.fallback,
                "Layers whose shape does not fit the scheme: per-channel or kept in 16-bit instead of an error")
      ->group(group);
  cmd->add_option("--damp", a.damp, "GPTQ dampening, fraction of the mean Hessian diagonal")->group(group);
  cmd->add_flag("--act-order", a.act_order, "GPTQ: quantize columns in order of decreasing Hessian diagonal")
      ->group(group);
  cmd->add_option("--alpha", a.alpha, "SmoothQuant migration strength")->group(group);
  cmd->add_option("--awq-grid", a.awq_grid, "AWQ: scale exponents tried per block (AutoAWQ n_grid)")->group(group);
  cmd->add_option("--awq-search-samples", a.awq_search_samples,
                  "AWQ: calibration sequences (of up to 512 tokens) the scale and clip searches evaluate; their cost "
                  "grows with it")
      ->group(group);
}

quant::QuantizeOptions quantize_options(const QuantizeArgs& a) {
  if (a.asym && a.sym) fail("--asym and --sym exclude each other");
  quant::QuantizeOptions o;
  o.scheme = quant::with_overrides(quant::find_scheme(a.scheme), a.group_size, a.asym ? 0 : a.sym ? 1 : -1);
  o.algorithm = a.algorithm;
  o.include_head = a.include_head;
  o.fallback = a.fallback;
  for (const auto& spec : a.overrides) o.overrides.push_back(quant::parse_override(spec));
  require(a.damp > 0 && a.damp < 1, "--damp: ", a.damp, " is invalid (expected a fraction in (0, 1))");
  require(a.alpha >= 0 && a.alpha <= 1, "--alpha: ", a.alpha, " is invalid (expected a value in [0, 1])");
  o.gptq_damp = a.damp;
  o.gptq_act_order = a.act_order;
  o.smoothquant_alpha = a.alpha;
  require(a.awq_grid >= 1 && a.awq_grid <= 1000, "--awq-grid: ", a.awq_grid, " is invalid (expected 1..1000)");
  require(a.awq_search_samples >= 1, "--awq-search-samples: ", a.awq_search_samples, " is invalid (expected >= 1)");
  o.awq_grid = a.awq_grid;
  o.awq_search_sequences = static_cast<size_t>(a.awq_search_samples);
  quant::check_algorithm(o.scheme, o.algorithm);
  return o;
}

std::optional<quant::QuantizeReport> apply_quantization(LoadedModel& m, const QuantizeArgs& a) {
  if (a.scheme.empty()) return std::nullopt;
  const quant::QuantizeOptions o = quantize_options(a);
  std::unique_ptr<quant::CalibrationRunner> calib;
  if (!a.calib.empty()) {
    quant::CalibDataOptions c;
    c.file = a.calib;
    c.field = a.calib_field;
    c.samples = a.calib_samples;
    c.seqlen = a.calib_seqlen > 0 ? a.calib_seqlen : std::min<int64_t>(512, m.model->config().max_position_embeddings);
    c.seed = a.seed;
    calib = std::make_unique<quant::CalibrationRunner>(*m.model, quant::load_calibration_tokens(*m.tokenizer, c));
  }
  quant::validate_quantize_options(o, calib != nullptr);
  quant::QuantizeReport r = quant::quantize_model(*m.model, o, calib.get());
  if (!Progress::quiet())
    std::fprintf(stderr, "quantized to %s with %s in %s: linear layers %s -> %s\n", r.scheme.c_str(), r.algorithm.c_str(),
               format_duration(r.seconds).c_str(), format_bytes(static_cast<double>(r.bytes_before)).c_str(),
               format_bytes(static_cast<double>(r.bytes_after)).c_str());
  return r;
}

nlohmann::json quantize_report_json(const quant::QuantizeReport& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name},
                      {"format", l.format},
                      {"bytes_before", l.bytes_before},
                      {"bytes_after", l.bytes_after},
                      {"weight_rel_error", l.weight_rel_error},
                      {"note", l.note}});
  return {{"scheme", r.scheme},          {"algorithm", r.algorithm},     {"bytes_before", r.bytes_before},
          {"bytes_after", r.bytes_after}, {"seconds", r.seconds},         {"calibration_rows", r.calibration_rows},
          {"layers", layers}};
}

void print_quantize_report(const quant::QuantizeReport& r, bool per_layer) {
  if (per_layer) {
    std::printf("%-44s %-22s %12s %12s %10s  %s\n", "layer", "format", "bytes", "quantized", "rel.err", "note");
    for (const auto& l : r.layers)
      std::printf("%-44s %-22s %12lld %12lld %10.4f  %s\n", l.name.c_str(), l.format.c_str(),
                  static_cast<long long>(l.bytes_before), static_cast<long long>(l.bytes_after), l.weight_rel_error,
                  l.note.c_str());
  }
  std::printf("%s / %s: linear layers %s -> %s (%.2fx smaller) in %s\n", r.scheme.c_str(), r.algorithm.c_str(),
              format_bytes(static_cast<double>(r.bytes_before)).c_str(),
              format_bytes(static_cast<double>(r.bytes_after)).c_str(),
              r.bytes_after ? static_cast<double>(r.bytes_before) / r.bytes_after : 0.0,
              format_duration(r.seconds).c_str());
}

}  // namespace qs::cli
