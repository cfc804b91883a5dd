#include "quantize/algorithms/calib_stats.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace qs::quant {

namespace {
constexpr int64_t kChannelBlock = 64;  // channels per task: one cache line per row per 16 channels
}

ChannelStats::ChannelStats(int64_t channels, std::string name)
    : channels_(channels),
      name_(std::move(name)),
      absmax_(channels, 0.0f),
      min_(channels, std::numeric_limits<float>::infinity()),
      max_(channels, -std::numeric_limits<float>::infinity()),
      sum_abs_(channels, 0.0) {
  require(channels > 0, "activation statistics of layer ", quote(name_), " need a positive channel count, got ",
          channels);
}

void ChannelStats::add(std::span<const float> x, int64_t rows, ThreadPool& pool) {
  require(rows >= 0 && x.size() == static_cast<size_t>(rows * channels_), "activations of layer ", quote(name_),
          " have ", x.size(), " values, expected ", rows, " rows x ", channels_);
  // Accumulate into copies so that a rejected batch leaves the statistics untouched.
  std::vector<float> absmax = absmax_, mn = min_, mx = max_;
  std::vector<double> sum = sum_abs_;
  std::atomic<int64_t> bad{static_cast<int64_t>(x.size())};
  pool.parallel_for(
      channels_,
      [&](int64_t c0, int64_t c1) {
        for (int64_t r = 0; r < rows; ++r) {
          const float* row = x.data() + r * channels_;
          for (int64_t c = c0; c < c1; ++c) {
            const float v = row[c];
            const float a = std::fabs(v);
            if (!(a <= std::numeric_limits<float>::max())) {  // NaN or inf
              int64_t seen = bad.load();
              const int64_t i = r * channels_ + c;
              while (i < seen && !bad.compare_exchange_weak(seen, i)) {
              }
              continue;
            }
            absmax[c] = std::max(absmax[c], a);
            mn[c] = std::min(mn[c], v);
            mx[c] = std::max(mx[c], v);
            sum[c] += a;
          }
        }
      },
      kChannelBlock);
  if (bad.load() < static_cast<int64_t>(x.size()))
    fail("activations of layer ", quote(name_), " have a non-finite value at row ", bad.load() / channels_,
         ", channel ", bad.load() % channels_);
  absmax_.swap(absmax);
  min_.swap(mn);
  max_.swap(mx);
  sum_abs_.swap(sum);
  count_ += rows;
}

std::vector<float> ChannelStats::mean_abs() const {
  std::vector<float> mean(channels_, 0.0f);
  if (count_ > 0)
    for (int64_t c = 0; c < channels_; ++c) mean[c] = static_cast<float>(sum_abs_[c] / static_cast<double>(count_));
  return mean;
}

float ChannelStats::tensor_absmax() const { return *std::max_element(absmax_.begin(), absmax_.end()); }

}  // namespace qs::quant
