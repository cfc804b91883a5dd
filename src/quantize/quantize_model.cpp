#include "quantize/quantize_model.h"

#include <cmath>
#include <regex>

#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "quantize/qlinear.h"

namespace qs::quant {

namespace {

// What a layer becomes: its scheme, or nullopt to stay as it is (with the reason).
struct LayerPlan {
  std::optional<Scheme> scheme;
  std::string note;
};

LayerPlan plan_layer(const QuantizeOptions& o, const Linear& lin) {
  LayerPlan p{o.scheme, ""};
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

QuantizeReport quantize_model(Model& model, const QuantizeOptions& o, CalibrationRunner* calib) {
  validate_quantize_options(o, calib != nullptr);
  Stopwatch clock;
  QuantizeReport report;
  report.scheme = o.scheme.full_name();
  report.algorithm = o.algorithm;
  if (calib) report.calibration_rows = calib->total_rows();
  ModelWeights& mw = model.weights();
  const int L = model.config().num_hidden_layers;
  Progress progress("quantize " + report.scheme + " " + o.algorithm, L + (o.include_head ? 1 : 0), "layer");

  // Per-tensor activation maxima for static activation scales, from the calibration taps.
  for (int l = 0; l < L; ++l) {
    DecoderLayer& layer = mw.layers[l];
    float absmax[4] = {0, 0, 0, 0};
    if (calib) {
      LinearTap tap = [&](int, LinearSlot slot, const float* x, int64_t rows) {
        const int64_t K = slot == LinearSlot::QKV || slot == LinearSlot::GateUp ? model.config().hidden_size
                          : slot == LinearSlot::O                                ? model.config().q_dim()
                                                                                 : model.config().intermediate_size;
        float& m = absmax[static_cast<int>(slot)];
        for (int64_t i = 0; i < rows * K; ++i) m = std::max(m, std::fabs(x[i]));
      };
      calib->run_layer(l, layer.view(), &tap, false);
    }
    const LinearSlot slot_of[7] = {LinearSlot::QKV, LinearSlot::QKV,    LinearSlot::QKV, LinearSlot::O,
                                   LinearSlot::GateUp, LinearSlot::GateUp, LinearSlot::Down};
    int i = 0;
    for (auto& [role, slot] : layer.linears()) {
      LayerReport rep;
      rep.name = (*slot)->name();
      rep.bytes_before = (*slot)->weight_bytes();
      LayerPlan plan = plan_layer(o, **slot);
      rep.note = plan.note;
      if (plan.scheme) {
        RtnOptions rtn;
        rtn.mse_clip = o.algorithm == "rtn-mse";
        rtn.static_act_scale = absmax[static_cast<int>(slot_of[i])] / 448.0f;
        quantize_in_place(*slot, *plan.scheme, rtn, rep);
      } else {
        rep.format = (*slot)->format();
      }
      rep.bytes_after = (*slot)->weight_bytes();
      report.layers.push_back(rep);
      ++i;
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
      RtnOptions rtn;
      if (plan.scheme->act == ActFormat::Fp8Static)
        fail("--include-head: a static activation scale for the output head is not calibrated; use w8a8-fp8");
      quantize_in_place(mw.lm_head, *plan.scheme, rtn, rep);
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
