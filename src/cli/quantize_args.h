// The quantization options shared by `qstudy quantize` and by every command that can quantize a
// model in memory before running it (`--quantize SCHEME` on generate, perplexity, bench, eval).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include "cli/model_args.h"
#include "quantize/quantize_model.h"

namespace qs::cli {

struct QuantizeArgs {
  std::string scheme;
  std::string algorithm = "rtn";
  int64_t group_size = -1;  // -1: the scheme's default
  bool asym = false, sym = false;
  std::string calib, calib_field = "text";
  int64_t calib_samples = 128, calib_seqlen = 0;  // 0: min(512, the model's context)
  uint64_t seed = 0;
  bool include_head = false, fallback = false, act_order = false;
  std::vector<std::string> overrides;
  double damp = 0.01, alpha = 0.5;
  int awq_grid = 20;
  int64_t awq_search_samples = 16;
};

// `scheme_flag` is "--scheme" for qstudy quantize and "--quantize" elsewhere.
void add_quantize_options(CLI::App* cmd, QuantizeArgs& args, const std::string& scheme_flag);
// Validated options for the model (before any work starts).
quant::QuantizeOptions quantize_options(const QuantizeArgs& args);
// Quantizes m.model in place when args.scheme is set; prints a one-line summary to stderr.
std::optional<quant::QuantizeReport> apply_quantization(LoadedModel& m, const QuantizeArgs& args);
nlohmann::json quantize_report_json(const quant::QuantizeReport& r);
void print_quantize_report(const quant::QuantizeReport& r, bool per_layer);

}  // namespace qs::cli
