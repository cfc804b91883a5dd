#include "quantize/algorithms/hessian.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/error.h"
#include "quantize/algorithms/linalg.h"

namespace qs::quant {

namespace {
constexpr int64_t kPanelRows = 128;          // rows of H per GEMM call (fixed: results independent of threads)
constexpr int64_t kChunkValues = int64_t{1} << 23;  // scaled input values per GEMM round
}

HessianAccumulator::HessianAccumulator(int64_t k, std::string name) : k_(k), name_(std::move(name)) {
  require(k > 0, "Hessian of layer ", quote(name_), " needs a positive input size, got ", k);
  h_.assign(static_cast<size_t>(k * k), 0.0f);
}

void HessianAccumulator::add(std::span<const float> x, int64_t rows, int64_t samples, ThreadPool& pool) {
  require(rows >= 0 && x.size() == static_cast<size_t>(rows * k_), "calibration input of layer ", quote(name_),
          " has ", x.size(), " values, expected ", rows, " rows x ", k_);
  if (samples < 0) samples = rows;
  require(samples > 0 || rows == 0, "calibration batch of layer ", quote(name_), " must count at least one sample");
  if (rows == 0) return;

  // Check the whole batch first so that a bad batch leaves the accumulator untouched.
  std::atomic<int64_t> first_bad{static_cast<int64_t>(x.size())};
  pool.parallel_for(
      static_cast<int64_t>(x.size()),
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          if (!std::isfinite(x[i])) {
            int64_t seen = first_bad.load();
            while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
            }
            break;
          }
      },
      4096);
  if (first_bad.load() < static_cast<int64_t>(x.size()))
    fail("calibration input of layer ", quote(name_), " has a non-finite value at row ", first_bad.load() / k_,
         ", column ", first_bad.load() % k_);

  // AutoGPTQ: H *= n / (n + m); n += m; X = sqrt(2 / n) * X (Python floats applied to f32
  // tensors, i.e. f32 multiplications by the factors rounded to f32).
  const double n_old = static_cast<double>(samples_);
  samples_ += samples;
  rows_ += rows;
  const float keep = static_cast<float>(n_old / static_cast<double>(samples_));
  const float mult = static_cast<float>(std::sqrt(2.0 / static_cast<double>(samples_)));

  // Rows go through in chunks of at most ~32 MB of scaled copies (the first chunk applies
  // `keep`, the later ones add); the chunking depends only on k, never on the thread count.
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkValues / k_);
  std::vector<float> xs(static_cast<size_t>(std::min(rows, chunk_rows) * k_));
  BlasThreads single(1);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const int64_t m = std::min(chunk_rows, rows - r0);
    const float* src = x.data() + r0 * k_;
    pool.parallel_for(
        m * k_,
        [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) xs[i] = mult * src[i];
        },
        1024);
    // H[i0:i1, i0:k] = beta * H[i0:i1, i0:k] + Xs[:, i0:i1]^T Xs[:, i0:k]: one SGEMM per panel
    // of rows of H. Panels shrink down the triangle; threads take them largest first.
    const float beta = r0 == 0 ? keep : 1.0f;
    const int64_t panels = (k_ + kPanelRows - 1) / kPanelRows;
    std::atomic<int64_t> next{0};
    pool.run_dynamic([&](int, int) {
      for (int64_t p; (p = next.fetch_add(1)) < panels;) {
        const int64_t i0 = p * kPanelRows, i1 = std::min(i0 + kPanelRows, k_);
        sgemm(true, false, i1 - i0, k_ - i0, m, 1.0f, xs.data() + i0, k_, xs.data() + i0, k_, beta,
              h_.data() + i0 * k_ + i0, k_);
      }
    });
  }
}

std::vector<float> HessianAccumulator::hessian() const {
  std::vector<float> h = h_;
  copy_upper_to_lower(h, k_);
  return h;
}

std::vector<float> HessianAccumulator::take() {
  std::vector<float> h = std::move(h_);
  copy_upper_to_lower(h, k_);
  h_.assign(static_cast<size_t>(k_ * k_), 0.0f);
  samples_ = rows_ = 0;
  return h;
}

}  // namespace qs::quant
