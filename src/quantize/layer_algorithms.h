// The data-driven algorithms applied to one decoder layer during quantize_model: what they
// observe of the layer's calibration inputs, and how they rewrite its weights before rounding.
//  - SmoothQuant: per-channel activation maxima of the q/k/v and gate/up inputs; scales folded
//    into the preceding RMSNorm weights and the consumers' columns.
//  - AWQ: per-channel mean |x| over all calibration rows and a sample of whole sequences; four
//    scale searches (AutoAWQ's Llama mapping: norm -> q/k/v judged on the attention block's
//    output, v -> o when their shapes match, norm -> gate/up judged on the MLP block's output,
//    up -> down), folding, then the clip search on every linear but q and k.
//  - GPTQ: the Hessian of each linear's inputs (q/k/v share one, gate/up share one).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "model/model.h"
#include "quantize/algorithms/calib_stats.h"
#include "quantize/algorithms/hessian.h"
#include "quantize/calibration.h"
#include "quantize/scheme.h"

namespace qs::quant {

// What was observed of one input slot (LinearSlot) of a layer.
struct SlotObservations {
  int64_t k = 0;                                 // input features
  std::unique_ptr<HessianAccumulator> hessian;   // GPTQ, while observing
  std::vector<float> h;                          // GPTQ: the Hessian [k, k] after observing
  std::unique_ptr<ChannelStats> stats;           // SmoothQuant, AWQ, static activation scales
  std::vector<float> sample;                     // AWQ: the first sample_cap rows, [rows, k]
  int64_t sample_rows = 0, sample_cap = 0;
  std::vector<float> smoothing;                  // scales folded into this slot's inputs (1/s applies)
};
using LayerObservations = std::array<SlotObservations, 4>;  // indexed by LinearSlot

struct ObserveOptions {
  bool hessian = false, stats = false;
  int64_t sample_rows = 0;
};

// Runs layer `l` over the calibration set and records what `o` asks for.
LayerObservations observe_layer(const Model& model, int l, CalibrationRunner& calib, const ObserveOptions& o);

// Linears of layer `layer` that read `slot`'s input.
std::vector<std::unique_ptr<Linear>*> slot_linears(DecoderLayer& layer, LinearSlot slot);

// SmoothQuant on q/k/v and gate/up; replaces those linears with smoothed dense f32 copies, divides
// the norms, and transforms the observed Hessians and statistics to the smoothed inputs.
void smooth_layer(DecoderLayer& layer, LayerObservations& obs, double alpha);

struct AwqLayerOptions {
  // Per slot: the integer scheme all its linears will be quantized with (nullopt: the slot's
  // linears differ or are not integer-quantized, and AWQ leaves the slot alone).
  std::array<std::optional<Scheme>, 4> slot_scheme;
  int n_grid = 20;
  size_t search_sequences = 4;
};
// AWQ's scales and clipping for layer `l`; the affected linears become scaled, clipped dense f32
// copies ready to be rounded. Returns a note per slot for the report ("ratio 0.35", "skipped: ...").
std::array<std::string, 4> awq_layer(Model& model, int l, CalibrationRunner& calib, LayerObservations& obs,
                                     const AwqLayerOptions& options);

}  // namespace qs::quant
