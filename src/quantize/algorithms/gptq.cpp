#include "quantize/algorithms/gptq.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "formats/layout.h"
#include "quantize/algorithms/linalg.h"

// This file is compiled with -ffp-contract=off (src/quantize/CMakeLists.txt): the error
// feedback w -= e * h must round the product and the difference separately, as torch does,
// so that the codes can be compared one for one with a PyTorch run of the same algorithm.

namespace qs::quant {

namespace {

using formats::IntGranularity;
using formats::IntQuantConfig;

constexpr int64_t kPanelRows = 64;  // rows per pool task (fixed: results independent of threads)

// Where each column's scale and zero point come from.
enum class ParamSource { Fixed, Dynamic };

struct ColumnQuantizer {
  float lo, hi;  // clamp bounds of x / s, relative to the zero point
  float zero;
  float scale;
  // Code and dequantized value of x, with formats/int_quant's arithmetic (GPTQ's quantize():
  // clamp(round(x / s) + z, qmin, qmax), then s * (q - z)).
  float quantize(float x, uint8_t& code) const {
    float v = x / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    const float q = formats::round_half_even_small(v) + zero;
    code = static_cast<uint8_t>(q);
    return (q - zero) * scale;
  }
};

ColumnQuantizer make_quantizer(const IntQuantConfig& cfg, float scale, int zero) {
  const int qmax = (1 << cfg.bits) - 1;
  const int qmin = cfg.symmetric && cfg.range == formats::SymmetricRange::Restricted ? 1 : 0;
  return {static_cast<float>(qmin - zero), static_cast<float>(qmax - zero), static_cast<float>(zero), scale};
}

formats::GroupFit fit_group(std::span<const float> values, const IntQuantConfig& cfg, const GptqOptions& opt) {
  return opt.mse ? formats::search_group_clip(values, cfg, *opt.mse)
                 : formats::quantize_group_with_clip(values, cfg, 1.0f);
}

// H value (i, j) read from the upper triangle.
inline float upper_at(std::span<const float> h, int64_t k, int64_t i, int64_t j) {
  return i <= j ? h[i * k + j] : h[j * k + i];
}

void validate(std::span<const float> w, int64_t n, int64_t k, std::span<const float> h, const GptqOptions& opt,
              std::string_view name) {
  formats::validate_int_config(opt.quant, n, k, name);
  formats::check_matrix(n, k, w.size(), name);
  require(h.size() == static_cast<size_t>(k * k), "GPTQ on layer ", quote(name), ": Hessian has ", h.size(),
          " values, expected ", k, " x ", k);
  require(opt.block_size > 0, "GPTQ on layer ", quote(name), ": block size must be positive, got ", opt.block_size);
  require(std::isfinite(opt.damp_percent) && opt.damp_percent > 0.0, "GPTQ on layer ", quote(name),
          ": damp_percent must be positive, got ", opt.damp_percent);
  require(opt.damp_retries >= 0, "GPTQ on layer ", quote(name), ": damp_retries must be >= 0, got ",
          opt.damp_retries);
  require(!opt.static_groups || opt.quant.granularity == IntGranularity::PerGroup, "GPTQ on layer ", quote(name),
          ": static_groups needs per-group quantization");
  // Plain branches, not require(): its message arguments (quote(name)) would be built for
  // every one of the k * k values.
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i])) fail("GPTQ on layer ", quote(name), ": weight [", i / k, ", ", i % k, "] is not finite");
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j)
      if (!std::isfinite(h[i * k + j]))
        fail("GPTQ on layer ", quote(name), ": Hessian [", i, ", ", j, "] is not finite");
}

}  // namespace

GptqResult gptq_quantize(std::span<const float> w_in, int64_t n, int64_t k, std::span<const float> h_in,
                         const GptqOptions& opt, std::string_view name, ThreadPool& pool) {
  validate(w_in, n, k, h_in, opt, name);
  const IntQuantConfig& cfg = opt.quant;
  const bool per_group = cfg.granularity == IntGranularity::PerGroup;
  const int64_t g = per_group ? cfg.group_size : k;
  const int64_t groups = per_group ? k / g : 1;
  const ParamSource source = per_group && !opt.static_groups ? ParamSource::Dynamic : ParamSource::Fixed;

  GptqResult result;
  formats::IntMatrix& out = result.q;
  out.bits = cfg.bits;
  out.symmetric = cfg.symmetric;
  out.granularity = cfg.granularity;
  out.rows = n;
  out.cols = k;
  out.group_size = g;

  // 1. Fixed parameters from W as given (per-channel / per-tensor: before the dead columns are
  //    zeroed, as AutoGPTQ's find_params(W) and llm-compressor's observer run first).
  std::vector<float> w(w_in.begin(), w_in.end());
  if (source == ParamSource::Fixed && !per_group) {
    formats::IntMatrix params = formats::quantize_int(w, n, k, cfg, name, opt.mse ? &*opt.mse : nullptr);
    out.scales = std::move(params.scales);
    out.zeros = std::move(params.zeros);
  }

  // 2. Dead inputs.
  std::vector<float> diag(k);
  for (int64_t i = 0; i < k; ++i) {
    diag[i] = h_in[i * k + i];
    if (diag[i] == 0.0f) {
      diag[i] = 1.0f;
      for (int64_t r = 0; r < n; ++r) w[r * k + i] = 0.0f;
    }
  }
  if (source == ParamSource::Fixed && per_group) {  // static groups: after the dead columns, before the permutation
    formats::IntMatrix params = formats::quantize_int(w, n, k, cfg, name, opt.mse ? &*opt.mse : nullptr);
    out.scales = std::move(params.scales);
    out.zeros = std::move(params.zeros);
  }
  if (source == ParamSource::Dynamic) {
    out.scales.assign(static_cast<size_t>(n * groups), 0.0f);
    out.zeros.assign(static_cast<size_t>(n * groups), 0);
  }

  // 3. Act-order permutation (descending diag H; stable for ties).
  std::vector<int32_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return diag[a] > diag[b]; });
    std::vector<float> wp(w.size());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < k; ++i) wp[r * k + i] = w[r * k + perm[i]];
    w.swap(wp);
  }

  // 4./5. Dampening and Cholesky of the inverse, retried with more damping. torch computes
  // mean(diag) and damp in f32; the mean is taken in f64 here and rounded (<= 1 ulp apart).
  std::vector<float> pdiag(k);
  for (int64_t a = 0; a < k; ++a) pdiag[a] = diag[perm[a]];
  double sum_diag = 0.0;
  for (float d : pdiag) sum_diag += d;
  const float mean_diag = static_cast<float>(sum_diag / static_cast<double>(k));
  std::vector<float> hinv(static_cast<size_t>(k * k));
  const int lapack_threads = opt.lapack_threads > 0 ? opt.lapack_threads : pool.size();
  double damp_percent = opt.damp_percent;
  for (int attempt = 0;; ++attempt) {
    // Upper triangle of the permuted H (all that LAPACK reads), damped diagonal.
    const float damp = static_cast<float>(damp_percent) * mean_diag;
    for (int64_t a = 0; a < k; ++a) {
      for (int64_t b = a + 1; b < k; ++b) hinv[a * k + b] = upper_at(h_in, k, perm[a], perm[b]);
      hinv[a * k + a] = pdiag[a] + damp;
    }
    const CholeskyFailure failure = upper_cholesky_of_inverse(hinv, k, lapack_threads);
    if (!failure) break;
    if (attempt >= opt.damp_retries)
      fail("GPTQ on layer ", quote(name), ": the Hessian is not positive definite even with damp_percent ",
           damp_percent, " (LAPACK ", failure.routine, " info ", failure.info,
           "); use more calibration samples or a larger damp_percent");
    damp_percent *= 10.0;
  }
  result.damp_percent = damp_percent;

  // 6./7. Column-by-column quantization with error feedback, row panels in parallel.
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  const int64_t block = std::min(opt.block_size, k);
  const int64_t panels = (n + kPanelRows - 1) / kPanelRows;
  std::vector<double> panel_loss(panels, 0.0);
  std::atomic<int64_t> next{0};
  BlasThreads single(1);
  pool.run_dynamic([&](int, int) {
    std::vector<float> err(static_cast<size_t>(kPanelRows * block));
    std::vector<float> snapshot(source == ParamSource::Dynamic ? static_cast<size_t>(kPanelRows * block) : 0);
    std::vector<float> group_values(source == ParamSource::Dynamic ? static_cast<size_t>(g) : 0);
    std::vector<ColumnQuantizer> current(kPanelRows);
    for (int64_t p; (p = next.fetch_add(1)) < panels;) {
      const int64_t r0 = p * kPanelRows, nr = std::min(kPanelRows, n - r0);
      double loss = 0.0;
      if (source == ParamSource::Fixed && !per_group)
        for (int64_t rr = 0; rr < nr; ++rr) {
          const int64_t pi = out.param_index(r0 + rr, 0);
          current[rr] = make_quantizer(cfg, out.scales[pi], out.zeros[pi]);
        }
      for (int64_t i1 = 0; i1 < k; i1 += block) {
        const int64_t i2 = std::min(i1 + block, k), count = i2 - i1;
        if (source == ParamSource::Dynamic)
          for (int64_t rr = 0; rr < nr; ++rr)
            std::copy_n(w.data() + (r0 + rr) * k + i1, count, snapshot.data() + rr * block);
        for (int64_t rr = 0; rr < nr; ++rr) {
          const int64_t r = r0 + rr;
          float* wr = w.data() + r * k;
          for (int64_t i = i1; i < i2; ++i) {
            if (source == ParamSource::Dynamic && i % g == 0) {
              // W[:, i : i + g] as AutoGPTQ sees it: this batch's columns as of its start.
              for (int64_t c = i; c < i + g; ++c) group_values[c - i] = c < i2 ? snapshot[rr * block + (c - i1)] : wr[c];
              const formats::GroupFit fit = fit_group(group_values, cfg, opt);
              current[rr] = make_quantizer(cfg, fit.scale, fit.zero);
              out.scales[r * groups + i / g] = fit.scale;
              out.zeros[r * groups + i / g] = static_cast<uint8_t>(fit.zero);
            } else if (source == ParamSource::Fixed && per_group && (i == 0 || perm[i] / g != perm[i - 1] / g)) {
              const int64_t pi = r * groups + perm[i] / g;
              current[rr] = make_quantizer(cfg, out.scales[pi], out.zeros[pi]);
            }
            const float x = wr[i];
            const float q = current[rr].quantize(x, codes[r * k + i]);
            const float d = hinv[i * k + i];
            const float diff = x - q;
            loss += static_cast<double>(diff * diff / (d * d));
            const float e = diff / d;
            const float* hrow = hinv.data() + i * k;
            for (int64_t j = i + 1; j < i2; ++j) wr[j] -= e * hrow[j];
            err[rr * block + (i - i1)] = e;
          }
        }
        // W[:, i2:] -= Err @ Hinv[i1:i2, i2:] (alpha -1, beta 1: one rounding of w - sum, as
        // torch's W -= (Err @ Hinv) since the sum over `count` < OpenBLAS's K block is one pass).
        if (i2 < k)
          sgemm(false, false, nr, k - i2, count, -1.0f, err.data(), block, hinv.data() + i1 * k + i2, k, 1.0f,
                w.data() + r0 * k + i2, k);
      }
      panel_loss[p] = loss;
    }
  });
  for (double l : panel_loss) result.loss += l;
  result.loss /= 2.0;

  // Back to the original column order; g_idx per AutoGPTQ.
  if (opt.act_order) {
    out.codes.resize(codes.size());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < k; ++i) out.codes[r * k + perm[i]] = codes[r * k + i];
    if (per_group) {
      out.g_idx.resize(k);
      for (int64_t i = 0; i < k; ++i)
        out.g_idx[perm[i]] = static_cast<int32_t>(opt.static_groups ? perm[i] / g : i / g);
    }
    result.perm = std::move(perm);
  } else {
    out.codes = std::move(codes);
  }
  return result;
}

}  // namespace qs::quant
