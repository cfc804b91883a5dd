#include "quantize/quantize_model.h"

#include <cmath>
#include <regex>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "quantize/algorithms/gptq.h"
#include "quantize/layer_algorithms.h"
#include "quantize/qlinear.h"

namespace qs::quant {

namespace {

// What a layer becomes: its scheme, or nullopt to stay as it is (with the reason).
struct LayerPlan {
  std::optional<Scheme> scheme;
  std::string note;
  int64_t bytes_before = 0;  // as loaded: SmoothQuant and AWQ replace linears with f32 copies
};

LayerPlan plan_layer(const QuantizeOptions& o, const Linear& lin) {
  LayerPlan p{o.scheme, "", lin.weight_bytes()};
  for (const auto& ov : o.overrides) {
    if (std::regex_search(lin.name(), std::regex(ov.pattern))) {
      p.scheme = ov.scheme;
      p.note = ov.scheme ? "override" : "kept: --override";
      break;
    }
  }
  if (!p.scheme) return p;
  std::string why;
  if (fits(*p.scheme, lin.in_features(), &why)) return p;
  if (!o.fallback)
    fail("layer ", quote(lin.name()), ": ", why, " (pick a --group-size that divides it, --override '",
         lin.name(), "=...', or --fallback)");
  if (p.scheme->weight == WeightFormat::Int && p.scheme->group_size > 0) {
    p.scheme->group_size = 0;
    p.note = "fallback: per-channel (" + why + ")";
  } else {
    p.scheme.reset();
    p.note = "kept: " + why;
  }
  return p;
}

double relative_error(const std::vector<float>& w, const std::vector<float>& w_hat) {
  double num = 0, den = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double(w[i]) - w_hat[i];
    num += d * d;
    den += double(w[i]) * w[i];
  }
  return den > 0 ? std::sqrt(num / den) : 0;
}

// Replaces `slot` by its RTN quantization in `scheme`.
void quantize_in_place(std::unique_ptr<Linear>& slot, const Scheme& scheme, const RtnOptions& rtn, LayerReport& rep) {
  const Linear& lin = *slot;
  const std::vector<float> w = lin.dequantized();
  RtnOptions o = rtn;
  o.scale_dtype = scale_dtype_for(lin);
  auto q = quantize_rtn(lin.name(), w, lin.out_features(), lin.in_features(), scheme, o, lin.bias());
  rep.weight_rel_error = relative_error(w, q->dequantized());
  rep.format = q->format();
  slot = std::move(q);
}

}  // namespace

LayerOverride parse_override(const std::string& spec) {
  const auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    fail("--override: ", quote(spec), " is not PATTERN=SCHEME (e.g. 'mlp\\.down_proj=w8a16-int8' or 'layers\\.0\\.=none')");
  LayerOverride o;
  o.pattern = spec.substr(0, eq);
  try {
    std::regex check(o.pattern);
  } catch (const std::regex_error&) {
    fail("--override: ", quote(o.pattern), " is not a valid regular expression");
  }
  const std::string name = spec.substr(eq + 1);
  if (name != "none") o.scheme = find_scheme(name);
  return o;
}

bool needs_calibration(const QuantizeOptions& o) {
  return o.algorithm != "rtn" && o.algorithm != "rtn-mse" ? true : o.scheme.act == ActFormat::Fp8Static;
}

void validate_quantize_options(const QuantizeOptions& o, bool have_calibration) {
  check_algorithm(o.scheme, o.algorithm);
  for (const auto& ov : o.overrides)
    if (ov.scheme && o.algorithm != "rtn") check_algorithm(*ov.scheme, o.algorithm);
  if (needs_calibration(o) && !have_calibration)
    fail("--calib: ", o.algorithm == "rtn" ? "scheme " + o.scheme.name : "algorithm " + o.algorithm,
         " needs calibration data (give --calib FILE)");
}

namespace {

// The per-tensor activation scale of a static scheme from the observed maxima (of the smoothed
// inputs when SmoothQuant ran): amax / 448.
float static_scale(const SlotObservations& so) {
  if (!so.stats) return 0;
  float amax = 0;
  const auto& a = so.stats->absmax();
  for (size_t j = 0; j < a.size(); ++j) amax = std::max(amax, so.smoothing.empty() ? a[j] : a[j] / so.smoothing[j]);
  return amax / formats::kFp8E4M3Max;
}

}  // namespace

QuantizeReport quantize_model(Model& model, const QuantizeOptions& o, CalibrationRunner* calib) {
  validate_quantize_options(o, calib != nullptr);
  if (!needs_calibration(o)) calib = nullptr;  // RTN reads no data: do not run it
  Stopwatch clock;
  QuantizeReport report;
  report.scheme = o.scheme.full_name();
  report.algorithm = o.algorithm;
  if (calib) report.calibration_rows = calib->total_rows();
  ModelWeights& mw = model.weights();
  const int L = model.config().num_hidden_layers;
  const bool gptq = o.algorithm == "gptq" || o.algorithm == "smoothquant+gptq";
  const bool smooth = o.algorithm == "smoothquant" || o.algorithm == "smoothquant+gptq";
  const bool awq = o.algorithm == "awq";
  Progress progress("quantize " + report.scheme + " " + o.algorithm, L + (o.include_head ? 1 : 0), "layer");

  for (int l = 0; l < L; ++l) {
    DecoderLayer& layer = mw.layers[l];
    // What each linear becomes, decided first (overrides, fallbacks).
    std::vector<std::pair<std::unique_ptr<Linear>*, LayerPlan>> plans;
    std::array<std::optional<Scheme>, 4> slot_scheme;  // the one integer scheme of a slot's linears
    for (int s = 0; s < 4; ++s) {
      bool alike = true;
      for (auto* lin : slot_linears(layer, static_cast<LinearSlot>(s))) {
        plans.push_back({lin, plan_layer(o, **lin)});
        const auto& sch = plans.back().second.scheme;
        if (!sch || sch->weight != WeightFormat::Int) alike = false;
        else if (!slot_scheme[s]) slot_scheme[s] = sch;
        else if (slot_scheme[s]->full_name() != sch->full_name()) alike = false;
      }
      if (!alike) slot_scheme[s].reset();
    }

    LayerObservations obs;
    std::array<std::string, 4> notes;
    if (calib) {
      ObserveOptions want;
      want.hessian = gptq;
      want.stats = smooth || awq || o.scheme.act == ActFormat::Fp8Static;
      for (const auto& ov : o.overrides) want.stats |= ov.scheme && ov.scheme->act == ActFormat::Fp8Static;
      want.sample_rows = awq ? 512 * static_cast<int64_t>(o.awq_search_sequences) : 0;
      obs = observe_layer(model, l, *calib, want);
      if (smooth) smooth_layer(layer, obs, o.smoothquant_alpha);
      if (awq) {
        AwqLayerOptions ao;
        ao.slot_scheme = slot_scheme;
        ao.n_grid = o.awq_grid;
        ao.search_sequences = o.awq_search_sequences;
        notes = awq_layer(model, l, *calib, obs, ao);
      }
    }

    for (auto& [slot_ptr, plan] : plans) {
      std::unique_ptr<Linear>& slot = *slot_ptr;
      const auto* target = slot_ptr;  // clang-14 cannot capture structured bindings
      const int si = static_cast<int>([&] {
        for (int s = 0; s < 4; ++s)
          for (auto* lin : slot_linears(layer, static_cast<LinearSlot>(s)))
            if (lin == target) return static_cast<LinearSlot>(s);
        return LinearSlot::QKV;
      }());
      LayerReport rep;
      rep.name = slot->name();
      rep.bytes_before = plan.bytes_before;
      rep.note = plan.note;
      if (!notes[si].empty()) rep.note += (rep.note.empty() ? "" : "; ") + notes[si];
      if (plan.scheme) {
        const Scheme& sch = *plan.scheme;
        if (gptq && sch.weight == WeightFormat::Int && !obs[si].h.empty()) {
          const std::vector<float> w = slot->dequantized();
          GptqOptions g;
          g.quant = int_config(sch, slot->in_features(), scale_dtype_for(*slot));
          g.damp_percent = o.gptq_damp;
          g.act_order = o.gptq_act_order;
          g.block_size = o.gptq_block;
          // The pool's threads for the Cholesky steps too: on a 1B model's down_proj (K = 8192)
          // they are half of GPTQ's time on one thread. Results stay deterministic for a given
          // --threads (OpenBLAS's threaded factorizations round by thread count).
          g.lapack_threads = 0;
          GptqResult r = gptq_quantize(w, slot->out_features(), slot->in_features(), obs[si].h, g, slot->name());
          auto q = make_int_linear(slot->name(), std::move(r.q), sch, slot->bias());
          rep.weight_rel_error = relative_error(w, q->dequantized());
          rep.format = q->format();
          if (r.damp_percent != o.gptq_damp) rep.note += cat((rep.note.empty() ? "" : "; "), "damp raised to ", r.damp_percent);
          slot = std::move(q);
        } else {
          RtnOptions rtn;
          rtn.mse_clip = o.algorithm == "rtn-mse";
          rtn.static_act_scale = static_scale(obs[si]);
          quantize_in_place(slot, sch, rtn, rep);
        }
      } else {
        rep.format = slot->format();
      }
      rep.bytes_after = slot->weight_bytes();
      report.layers.push_back(rep);
    }
    if (calib) calib->run_layer(l, layer.view(), nullptr, true);
    progress.add();
  }
  if (o.include_head) {
    LayerReport rep;
    rep.name = "lm_head";
    rep.bytes_before = mw.lm_head->weight_bytes();
    LayerPlan plan = plan_layer(o, *mw.lm_head);
    rep.note = plan.note;
    if (plan.scheme) {
      if (plan.scheme->act == ActFormat::Fp8Static)
        fail("--include-head: a static activation scale for the output head is not calibrated; use w8a8-fp8");
      quantize_in_place(mw.lm_head, *plan.scheme, {}, rep);
      mw.lm_head_is_embed = false;
    }
    rep.bytes_after = mw.lm_head->weight_bytes();
    report.layers.push_back(rep);
    progress.add();
  }
  for (const auto& r : report.layers) {
    report.bytes_before += r.bytes_before;
    report.bytes_after += r.bytes_after;
  }
  report.seconds = clock.seconds();
  return report;
}

}  // namespace qs::quant
