#include "quantize/algorithms/awq.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "formats/layout.h"
#include "quantize/algorithms/calib_stats.h"
#include "quantize/algorithms/linalg.h"
#include "quantize/algorithms/torch_pow.h"

namespace qs::quant {

namespace {

constexpr int64_t kLossRows = 256;   // X rows per loss GEMM tile (fixed: results independent of threads)
constexpr int64_t kLossCols = 2048;  // output channels per loss GEMM tile

int64_t group_of_config(const formats::IntQuantConfig& cfg, int64_t k) {
  return cfg.granularity == formats::IntGranularity::PerGroup ? cfg.group_size : k;
}

}  // namespace

std::vector<float> awq_activation_scale(std::span<const float> x, int64_t rows, int64_t k, ThreadPool& pool) {
  ChannelStats stats(k, "AWQ input");
  stats.add(x, rows, pool);
  return stats.mean_abs();
}

std::vector<float> awq_weight_scale(std::span<const LinearWeight> linears, int64_t k, int64_t group_size) {
  require(!linears.empty(), "AWQ weight scale needs at least one linear");
  formats::groups_per_row(k, group_size, "AWQ weight scale");
  std::vector<double> sum(k, 0.0);
  int64_t total_rows = 0;
  for (size_t l = 0; l < linears.size(); ++l) {
    const LinearWeight& lin = linears[l];
    require(lin.rows > 0 && lin.w.size() == static_cast<size_t>(lin.rows * k), "AWQ weight scale: linear ", l,
            " has ", lin.w.size(), " values, expected ", lin.rows, " x ", k);
    for (int64_t r = 0; r < lin.rows; ++r) {
      const float* row = lin.w.data() + r * k;
      for (int64_t c0 = 0; c0 < k; c0 += group_size) {
        float amax = 0.0f;
        for (int64_t c = c0; c < c0 + group_size; ++c) amax = std::max(amax, std::fabs(row[c]));
        const float denom = amax + 1e-6f;
        for (int64_t c = c0; c < c0 + group_size; ++c) sum[c] += std::fabs(row[c]) / denom;
      }
    }
    total_rows += lin.rows;
  }
  std::vector<float> mean(k);
  for (int64_t c = 0; c < k; ++c) mean[c] = static_cast<float>(sum[c] / static_cast<double>(total_rows));
  return mean;
}

std::vector<float> awq_candidate_scales(std::span<const float> x_scale, std::span<const float> w_scale, double ratio,
                                        bool duo_scaling) {
  require(x_scale.size() == w_scale.size() && !x_scale.empty(), "AWQ: ", x_scale.size(), " activation scales but ",
          w_scale.size(), " weight scales");
  std::vector<float> s(x_scale.size());
  for (size_t j = 0; j < s.size(); ++j) {
    const float v = duo_scaling ? torch_pow(x_scale[j], ratio) / (torch_pow(w_scale[j], 1.0 - ratio) + 1e-4f)
                                : torch_pow(x_scale[j], ratio);
    s[j] = std::max(v, 1e-4f);  // torch.clamp(min=1e-4); a NaN v stays NaN (std::max returns it)
  }
  // s / sqrt(max(s) * min(s)); torch's max / min propagate NaN.
  float mx = s[0], mn = s[0];
  for (float v : s) {
    if (std::isnan(v) || std::isnan(mx)) mx = NAN;
    else mx = std::max(mx, v);
    if (std::isnan(v) || std::isnan(mn)) mn = NAN;
    else mn = std::min(mn, v);
  }
  const float norm = std::sqrt(mx * mn);
  for (float& v : s) {
    v = v / norm;
    if (!std::isfinite(v)) v = 1.0f;
  }
  return s;
}

AwqScaleResult awq_search_scales(std::span<const float> x_scale, std::span<const float> w_scale, const AwqLossFn& loss,
                                 const AwqScaleOptions& opt) {
  require(opt.n_grid > 0, "AWQ scale search needs n_grid > 0, got ", opt.n_grid);
  require(static_cast<bool>(loss), "AWQ scale search needs a loss function");
  AwqScaleResult result;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < opt.n_grid; ++i) {
    const double ratio = static_cast<double>(i) / opt.n_grid;
    std::vector<float> s = awq_candidate_scales(x_scale, w_scale, ratio, opt.duo_scaling);
    const double l = loss(s);
    result.losses.push_back(l);
    if (l < best) {
      best = l;
      result.ratio = ratio;
      result.best_index = i;
      result.scales = std::move(s);
    }
  }
  require(result.best_index >= 0, "AWQ scale search: no ratio gave a finite loss");
  return result;
}

AwqLinearsLoss::AwqLinearsLoss(std::span<const float> x, int64_t rows, int64_t k, std::vector<LinearWeight> linears,
                               const formats::IntQuantConfig& quant, std::string name, ThreadPool& pool)
    : x_(x), rows_(rows), k_(k), linears_(std::move(linears)), quant_(quant), name_(std::move(name)), pool_(&pool) {
  require(rows > 0 && k > 0 && x.size() == static_cast<size_t>(rows * k), "AWQ loss of ", quote(name_), ": input has ",
          x.size(), " values, expected ", rows, " rows x ", k);
  require(!linears_.empty(), "AWQ loss of ", quote(name_), " needs at least one linear");
  for (size_t l = 0; l < linears_.size(); ++l) {
    formats::validate_int_config(quant_, linears_[l].rows, k, name_);
    formats::check_matrix(linears_[l].rows, k, linears_[l].w.size(), name_);
  }
}

std::vector<float> AwqLinearsLoss::quantized_weight(size_t l, std::span<const float> s) const {
  require(l < linears_.size(), "AWQ loss of ", quote(name_), ": no linear ", l);
  require(s.size() == static_cast<size_t>(k_), "AWQ loss of ", quote(name_), ": ", s.size(), " scales for ", k_,
          " inputs");
  const LinearWeight& lin = linears_[l];
  std::vector<float> ws(lin.w.size());
  for (int64_t r = 0; r < lin.rows; ++r)
    for (int64_t c = 0; c < k_; ++c) ws[r * k_ + c] = lin.w[r * k_ + c] * s[c];
  std::vector<float> wq = formats::fake_quant_int(ws, lin.rows, k_, quant_, name_);
  for (int64_t r = 0; r < lin.rows; ++r)
    for (int64_t c = 0; c < k_; ++c) wq[r * k_ + c] /= s[c];
  return wq;
}

double AwqLinearsLoss::operator()(std::span<const float> s) const {
  // D = W - W_q(s) for all linears, stacked [n_total, k].
  int64_t n_total = 0;
  for (const LinearWeight& lin : linears_) n_total += lin.rows;
  std::vector<float> d(static_cast<size_t>(n_total * k_));
  int64_t row0 = 0;
  for (size_t l = 0; l < linears_.size(); ++l) {
    const std::vector<float> wq = quantized_weight(l, s);
    const LinearWeight& lin = linears_[l];
    for (size_t i = 0; i < wq.size(); ++i) d[row0 * k_ + i] = lin.w[i] - wq[i];
    row0 += lin.rows;
  }
  // sum (X D^T)^2 over tiles of [kLossRows x kLossCols].
  const int64_t row_tiles = (rows_ + kLossRows - 1) / kLossRows, col_tiles = (n_total + kLossCols - 1) / kLossCols;
  std::vector<double> partial(static_cast<size_t>(row_tiles * col_tiles), 0.0);
  std::atomic<int64_t> next{0};
  BlasThreads single(1);
  pool_->run([&](int, int) {
    std::vector<float> e(static_cast<size_t>(kLossRows * std::min(kLossCols, n_total)));
    for (int64_t t; (t = next.fetch_add(1)) < row_tiles * col_tiles;) {
      const int64_t r0 = (t / col_tiles) * kLossRows, c0 = (t % col_tiles) * kLossCols;
      const int64_t m = std::min(kLossRows, rows_ - r0), nc = std::min(kLossCols, n_total - c0);
      sgemm(false, true, m, nc, k_, 1.0f, x_.data() + r0 * k_, k_, d.data() + c0 * k_, k_, 0.0f, e.data(), nc);
      double sum = 0.0;
      for (int64_t i = 0; i < m * nc; ++i) sum += static_cast<double>(e[i]) * e[i];
      partial[t] = sum;
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total / (static_cast<double>(rows_) * static_cast<double>(n_total));
}

std::vector<float> awq_search_clip(std::span<const float> w, int64_t n, int64_t k, std::span<const float> x,
                                   int64_t rows, const formats::IntQuantConfig& quant, const AwqClipOptions& opt,
                                   std::string_view name, ThreadPool& pool) {
  formats::validate_int_config(quant, n, k, name);
  formats::check_matrix(n, k, w.size(), name);
  require(rows > 0 && x.size() == static_cast<size_t>(rows * k), "AWQ clip search of ", quote(name), ": input has ",
          x.size(), " values, expected ", rows, " rows x ", k);
  require(opt.n_grid > 0 && opt.max_shrink > 0.0 && opt.max_shrink < 1.0 && opt.n_sample_tokens > 0 &&
              opt.oc_batch > 0,
          "AWQ clip search of ", quote(name), ": needs n_grid > 0, max_shrink in (0, 1), n_sample_tokens > 0 and ",
          "oc_batch > 0");
  const int64_t g = group_of_config(quant, k), groups = k / g;
  const int steps = std::max(1, static_cast<int>(opt.max_shrink * opt.n_grid));

  // Sampled tokens: X[::step] with step = max(1, rows // n_sample_tokens).
  const int64_t step = std::max<int64_t>(1, rows / opt.n_sample_tokens);
  const int64_t t_count = (rows + step - 1) / step;
  std::vector<float> xs(static_cast<size_t>(t_count * k));
  for (int64_t t = 0; t < t_count; ++t) std::copy_n(x.data() + t * step * k, k, xs.data() + t * k);

  std::vector<float> max_val(static_cast<size_t>(n * groups));
  const int64_t batches = (n + opt.oc_batch - 1) / opt.oc_batch;
  std::atomic<int64_t> next{0};
  BlasThreads single(1);
  pool.run_dynamic([&](int, int) {
    const int64_t nb_max = std::min(opt.oc_batch, n);
    std::vector<float> d(static_cast<size_t>(nb_max * g)), e(static_cast<size_t>(t_count * nb_max));
    std::vector<float> clamped(g), amax(nb_max), best_val(nb_max);
    std::vector<double> best_err(nb_max);
    std::vector<uint8_t> codes(g);
    for (int64_t task; (task = next.fetch_add(1)) < groups * batches;) {
      const int64_t gi = task / batches, r0 = (task % batches) * opt.oc_batch;
      const int64_t nb = std::min(opt.oc_batch, n - r0);
      for (int64_t rr = 0; rr < nb; ++rr) {
        const float* wg = w.data() + (r0 + rr) * k + gi * g;
        float a = 0.0f;
        for (int64_t c = 0; c < g; ++c) a = std::max(a, std::fabs(wg[c]));
        amax[rr] = a;
        best_val[rr] = a;
        best_err[rr] = std::numeric_limits<double>::infinity();
      }
      for (int i = 0; i < steps; ++i) {
        const float shrink = static_cast<float>(1.0 - static_cast<double>(i) / opt.n_grid);
        for (int64_t rr = 0; rr < nb; ++rr) {
          const float* wg = w.data() + (r0 + rr) * k + gi * g;
          const float m = amax[rr] * shrink;
          for (int64_t c = 0; c < g; ++c) clamped[c] = std::min(std::max(wg[c], -m), m);
          const formats::GroupFit fit = formats::quantize_group_with_clip(clamped, quant, 1.0f, codes);
          const float zero = static_cast<float>(fit.zero);
          for (int64_t c = 0; c < g; ++c) d[rr * g + c] = (static_cast<float>(codes[c]) - zero) * fit.scale - wg[c];
        }
        // E [t_count, nb] = Xs[:, group] D^T: the change of each row's partial output per token.
        sgemm(false, true, t_count, nb, g, 1.0f, xs.data() + gi * g, k, d.data(), g, 0.0f, e.data(), nb);
        for (int64_t rr = 0; rr < nb; ++rr) {
          double sum = 0.0;
          for (int64_t t = 0; t < t_count; ++t) sum += static_cast<double>(e[t * nb + rr]) * e[t * nb + rr];
          const double err = sum / static_cast<double>(t_count);
          if (err < best_err[rr]) {
            best_err[rr] = err;
            best_val[rr] = amax[rr] * shrink;
          }
        }
      }
      for (int64_t rr = 0; rr < nb; ++rr) max_val[(r0 + rr) * groups + gi] = best_val[rr];
    }
  });
  return max_val;
}

void awq_apply_clip(std::span<float> w, int64_t n, int64_t k, std::span<const float> max_val, int64_t group_size) {
  formats::check_matrix(n, k, w.size(), "AWQ clip");
  const int64_t groups = formats::groups_per_row(k, group_size, "AWQ clip");
  require(max_val.size() == static_cast<size_t>(n * groups), "AWQ clip: ", max_val.size(), " clip values for ", n,
          " rows x ", groups, " groups");
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      const float m = max_val[r * groups + c / group_size];
      w[r * k + c] = std::min(std::max(w[r * k + c], -m), m);
    }
}

}  // namespace qs::quant
