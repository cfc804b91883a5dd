#include "formats/int_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"
#include "formats/layout.h"

namespace qs::formats {

namespace {

struct CodeRange {
  int qmin, qmax;
};
CodeRange code_range(const IntQuantConfig& cfg) {
  const int maxq = (1 << cfg.bits) - 1;
  if (cfg.symmetric && cfg.range == SymmetricRange::Restricted) return {1, maxq};
  return {0, maxq};
}

struct MinMax {
  float min, max;
};
MinMax group_min_max(std::span<const float> x) {
  float lo = 0.0f, hi = 0.0f;  // 0 is always inside the range
  for (float v : x) {
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  return {lo, hi};
}

// Scale and zero point of a group whose (zero-including) range is [xmin, xmax], shrunk by p.
GroupFit params_for_range(MinMax range, const IntQuantConfig& cfg, float p) {
  float xmin = range.min, xmax = range.max;
  if (xmin == 0.0f && xmax == 0.0f) {  // GPTQ: an all-zero group gets the range [-1, 1]
    xmin = -1.0f;
    xmax = 1.0f;
  }
  xmin *= p;
  xmax *= p;
  GroupFit fit;
  fit.clip_ratio = p;
  const int maxq = (1 << cfg.bits) - 1;
  if (cfg.symmetric) {
    const float amax = std::max(-xmin, xmax);
    const float divisor = cfg.range == SymmetricRange::Full ? static_cast<float>(maxq) / 2.0f
                                                             : static_cast<float>((1 << (cfg.bits - 1)) - 1);
    fit.scale = round_scale(amax / divisor, cfg.scale_dtype);
    fit.zero = 1 << (cfg.bits - 1);
  } else {
    // The zero point comes from the unrounded scale (compressed-tensors' calculate_qparams,
    // and AutoGPTQ packs f32-derived zeros with f16 scales); codes use the rounded scale.
    const float raw_scale = (xmax - xmin) / static_cast<float>(maxq);
    const float z = round_half_even_small(std::clamp(-xmin / raw_scale, 0.0f, static_cast<float>(maxq)));
    fit.zero = static_cast<int>(z);
    fit.scale = round_scale(raw_scale, cfg.scale_dtype);
  }
  return fit;
}

// Writes codes (when `codes` is non-empty) and returns sum |x - x_hat|^norm.
double quantize_with(std::span<const float> x, const IntQuantConfig& cfg, float scale, int zero,
                     std::span<uint8_t> codes, double norm) {
  const CodeRange cr = code_range(cfg);
  const float lo = static_cast<float>(cr.qmin - zero), hi = static_cast<float>(cr.qmax - zero);
  const float fzero = static_cast<float>(zero);
  double err = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;  // NaN -> lo
    v = v < hi ? v : hi;
    const float q = round_half_even_small(v) + fzero;
    if (!codes.empty()) codes[i] = static_cast<uint8_t>(q);
    const float e = x[i] - (q - fzero) * scale;
    err += norm == 2.0 ? static_cast<double>(e) * e : std::pow(std::fabs(static_cast<double>(e)), norm);
  }
  return err;
}

// Codes only (the bulk path: no error accumulation).
void encode_group(std::span<const float> x, const IntQuantConfig& cfg, float scale, int zero,
                  std::span<uint8_t> codes) {
  const CodeRange cr = code_range(cfg);
  const float lo = static_cast<float>(cr.qmin - zero), hi = static_cast<float>(cr.qmax - zero);
  const float fzero = static_cast<float>(zero);
  const float* xs = x.data();
  uint8_t* out = codes.data();
  for (size_t i = 0; i < x.size(); ++i) {
    float v = xs[i] / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    out[i] = static_cast<uint8_t>(static_cast<int>(round_half_even_small(v) + fzero));
  }
}

void check_search(const MseSearch& search) {
  require(search.grid > 0 && search.max_shrink > 0.0 && search.max_shrink < 1.0,
          "MSE search needs grid > 0 and max_shrink in (0, 1), got grid ", search.grid, ", max_shrink ",
          search.max_shrink);
}
int search_steps(const MseSearch& search) { return std::max(static_cast<int>(search.max_shrink * search.grid), 1); }
// p = 1 - i / grid in double, then f32 (torch multiplies an f32 tensor by the f32 scalar).
float search_ratio(const MseSearch& search, int i) {
  return static_cast<float>(1.0 - static_cast<double>(i) / search.grid);
}

}  // namespace

float round_scale(float scale, ScaleDType dtype) {
  switch (dtype) {
    case ScaleDType::F32:
      return scale > 0.0f ? scale : std::numeric_limits<float>::denorm_min();
    case ScaleDType::F16: {
      float r = f16_to_f32(f32_to_f16(scale));
      if (!(r > 0.0f)) r = f16_to_f32(0x0001);  // smallest positive half
      if (std::isinf(r)) r = 65504.0f;
      return r;
    }
    case ScaleDType::BF16: {
      float r = bf16_to_f32(f32_to_bf16(scale));
      if (!(r > 0.0f)) r = bf16_to_f32(0x0001);
      if (std::isinf(r)) r = bf16_to_f32(0x7f7f);
      return r;
    }
  }
  return scale;
}

GroupFit quantize_group_with_clip(std::span<const float> group, const IntQuantConfig& cfg, float clip_ratio,
                                  std::span<uint8_t> codes, double norm) {
  require(clip_ratio > 0.0f && clip_ratio <= 1.0f, "clip ratio must be in (0, 1], got ", clip_ratio);
  require(codes.empty() || codes.size() == group.size(), "codes buffer has ", codes.size(), " entries, group has ",
          group.size());
  GroupFit fit = params_for_range(group_min_max(group), cfg, clip_ratio);
  fit.error = quantize_with(group, cfg, fit.scale, fit.zero, codes, norm);
  return fit;
}

GroupFit search_group_clip(std::span<const float> group, const IntQuantConfig& cfg, const MseSearch& search,
                           std::span<uint8_t> codes) {
  check_search(search);
  require(codes.empty() || codes.size() == group.size(), "codes buffer has ", codes.size(), " entries, group has ",
          group.size());
  const MinMax range = group_min_max(group);
  GroupFit best;
  best.error = INFINITY;
  int since_best = 0;
  for (int i = 0; i < search_steps(search); ++i) {
    GroupFit fit = params_for_range(range, cfg, search_ratio(search, i));
    fit.error = quantize_with(group, cfg, fit.scale, fit.zero, {}, search.norm);
    if (fit.error < best.error) {
      best = fit;
      since_best = 0;
    } else if (search.patience > 0 && ++since_best >= search.patience) {
      break;
    }
  }
  if (!codes.empty()) encode_group(group, cfg, best.scale, best.zero, codes);
  return best;
}

void validate_int_config(const IntQuantConfig& cfg, int64_t n, int64_t k, std::string_view name) {
  require(cfg.bits >= 2 && cfg.bits <= 8, "integer quantization of layer ", quote(name),
          " needs 2..8 bits, got ", cfg.bits);
  require(n > 0 && k > 0, "matrix of layer ", quote(name), " must have positive shape, got [", n, ", ", k, "]");
  if (cfg.granularity == IntGranularity::PerGroup) groups_per_row(k, cfg.group_size, name);
}

IntMatrix quantize_int(std::span<const float> w, int64_t n, int64_t k, const IntQuantConfig& cfg,
                       std::string_view name, const MseSearch* mse) {
  validate_int_config(cfg, n, k, name);
  check_matrix(n, k, w.size(), name);
  IntMatrix q;
  q.bits = cfg.bits;
  q.symmetric = cfg.symmetric;
  q.granularity = cfg.granularity;
  q.rows = n;
  q.cols = k;
  q.group_size = cfg.granularity == IntGranularity::PerGroup ? cfg.group_size : k;
  q.codes.resize(w.size());
  // Groups are contiguous spans of w: one per tensor, or groups_per_row per row.
  const int64_t n_groups = cfg.granularity == IntGranularity::PerTensor ? 1 : n * (k / q.group_size);
  const int64_t len = cfg.granularity == IntGranularity::PerTensor ? n * k : q.group_size;
  q.scales.resize(n_groups);
  q.zeros.resize(n_groups);
  std::vector<MinMax> ranges(n_groups);
  for (int64_t g = 0; g < n_groups; ++g) ranges[g] = group_min_max(w.subspan(g * len, len));
  std::vector<GroupFit> best(n_groups);
  if (!mse) {
    for (int64_t g = 0; g < n_groups; ++g) best[g] = params_for_range(ranges[g], cfg, 1.0f);
  } else {
    // Joint scan over all groups so that `patience` counts steps in which no group improved,
    // as llm-compressor's observer does; without patience each group's choice is independent.
    check_search(*mse);
    for (auto& b : best) b.error = INFINITY;
    int since_improvement = 0;
    for (int i = 0; i < search_steps(*mse); ++i) {
      const float p = search_ratio(*mse, i);
      bool improved = false;
      for (int64_t g = 0; g < n_groups; ++g) {
        GroupFit fit = params_for_range(ranges[g], cfg, p);
        fit.error = quantize_with(w.subspan(g * len, len), cfg, fit.scale, fit.zero, {}, mse->norm);
        if (fit.error < best[g].error) {
          best[g] = fit;
          improved = true;
        }
      }
      since_improvement = improved ? 0 : since_improvement + 1;
      if (mse->patience > 0 && since_improvement >= mse->patience) break;
    }
  }
  std::span<uint8_t> codes(q.codes);
  for (int64_t g = 0; g < n_groups; ++g) {
    encode_group(w.subspan(g * len, len), cfg, best[g].scale, best[g].zero, codes.subspan(g * len, len));
    q.scales[g] = best[g].scale;
    q.zeros[g] = static_cast<uint8_t>(best[g].zero);
  }
  return q;
}

void dequantize_int(const IntMatrix& q, std::span<float> out) {
  require(out.size() == q.codes.size(), "dequantize_int: output has ", out.size(), " values, expected ",
          q.codes.size());
  require(q.g_idx.empty() || static_cast<int64_t>(q.g_idx.size()) == q.cols, "dequantize_int: g_idx has ",
          q.g_idx.size(), " entries, expected ", q.cols);
  const int64_t groups = q.groups_per_row();
  for (int64_t r = 0; r < q.rows; ++r) {
    const uint8_t* codes = q.codes.data() + r * q.cols;
    float* y = out.data() + r * q.cols;
    if (q.g_idx.empty()) {
      for (int64_t j = 0; j < groups; ++j) {
        const int64_t p = q.param_index(r, j);
        const float s = q.scales[p], z = static_cast<float>(q.zeros[p]);
        const int64_t c0 = j * q.group_size;
        for (int64_t c = c0; c < c0 + q.group_size; ++c) y[c] = (static_cast<float>(codes[c]) - z) * s;
      }
    } else {
      for (int64_t c = 0; c < q.cols; ++c) {
        const int64_t g = q.g_idx[c];
        require(g >= 0 && g < groups, "g_idx[", c, "] = ", g, " is outside [0, ", groups, ")");
        const int64_t p = q.param_index(r, g);
        y[c] = (static_cast<float>(codes[c]) - static_cast<float>(q.zeros[p])) * q.scales[p];
      }
    }
  }
}

std::vector<float> fake_quant_int(std::span<const float> w, int64_t n, int64_t k, const IntQuantConfig& cfg,
                                  std::string_view name, const MseSearch* mse) {
  IntMatrix q = quantize_int(w, n, k, cfg, name, mse);
  std::vector<float> out(w.size());
  dequantize_int(q, out);
  return out;
}

}  // namespace qs::formats
