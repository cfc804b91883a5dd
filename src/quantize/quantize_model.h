// Quantizes a loaded model in place: every linear layer of attention and MLP (by default; the
// output head on request, embeddings never) is replaced by a QuantLinear of its scheme, with the
// chosen algorithm. Algorithms that need data (GPTQ, AWQ, SmoothQuant, static activation scales)
// take a CalibrationRunner and process the layers in order.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "quantize/calibration.h"
#include "quantize/scheme.h"

namespace qs::quant {

// --override PATTERN=SCHEME: layers whose name matches the regular expression PATTERN (searched
// anywhere in e.g. "model.layers.3.mlp.down_proj") use SCHEME, or stay as they are with "none".
struct LayerOverride {
  std::string pattern;
  std::optional<Scheme> scheme;  // nullopt: keep the layer unquantized
};
// Parses "PATTERN=SCHEME" (errors name the flag and the valid schemes).
LayerOverride parse_override(const std::string& spec);

struct QuantizeOptions {
  Scheme scheme;
  std::string algorithm = "rtn";
  bool include_head = false;
  std::vector<LayerOverride> overrides;
  // A layer whose shape does not fit the scheme (e.g. groups of 128 on an input of 172): by
  // default an error naming it; with fallback, integer groups become per-channel and fixed-block
  // formats keep the layer in its original dtype (as llama-quantize falls back), noted in the report.
  bool fallback = false;
  double gptq_damp = 0.01;
  bool gptq_act_order = false;
  int gptq_block = 128;
  double smoothquant_alpha = 0.5;
  int awq_grid = 20;
  size_t awq_search_sequences = 16;  // calibration sequences the AWQ searches evaluate on
};

struct LayerReport {
  std::string name;
  std::string format;          // what the layer became ("bf16 (kept: ...)" when kept)
  int64_t bytes_before = 0, bytes_after = 0;
  double weight_rel_error = 0;  // ||W - W_hat||_F / ||W||_F against the weight it started from
  std::string note;
};

struct QuantizeReport {
  std::string scheme, algorithm;
  std::vector<LayerReport> layers;
  int64_t bytes_before = 0, bytes_after = 0;  // linear layers only
  double seconds = 0;
  int64_t calibration_rows = 0;
};

// Checks the options before any work: algorithm valid for the scheme and for every override,
// calibration present when needed.
void validate_quantize_options(const QuantizeOptions& o, bool have_calibration);
bool needs_calibration(const QuantizeOptions& o);

QuantizeReport quantize_model(Model& model, const QuantizeOptions& options, CalibrationRunner* calibration = nullptr);

}  // namespace qs::quant
