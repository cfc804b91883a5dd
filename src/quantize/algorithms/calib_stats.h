// Per-input-channel statistics of a layer's calibration activations X [rows, K], accumulated
// over batches: absolute maximum (SmoothQuant's act_scales, static FP8 / INT8 activation
// scales), minimum and maximum (llm-compressor's dynamic range max - min), and mean |x|
// (AutoAWQ's x_mean), with the row count.
//
// Sums of |x| are kept in f64 (AutoAWQ sums chunks in f32); maxima are exact. Channels are
// split across qs::ThreadPool threads (each channel summed in row order by one thread), so the
// result is identical for any number of threads. Non-finite inputs are rejected with a
// qs::Error naming the layer: an overflowing calibration run must not silently set a scale.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace qs::quant {

class ChannelStats {
 public:
  explicit ChannelStats(int64_t channels, std::string name = "");

  // Adds X [rows, channels], row-major.
  void add(std::span<const float> x, int64_t rows, ThreadPool& pool = default_pool());

  int64_t channels() const { return channels_; }
  int64_t count() const { return count_; }               // rows seen
  const std::vector<float>& absmax() const { return absmax_; }  // max |x| (0 before any row)
  const std::vector<float>& min() const { return min_; }        // min x (+inf before any row)
  const std::vector<float>& max() const { return max_; }        // max x (-inf before any row)
  std::vector<float> mean_abs() const;                   // sum |x| / count, rounded to f32
  float tensor_absmax() const;                           // max over channels of absmax

 private:
  int64_t channels_;
  std::string name_;
  int64_t count_ = 0;
  std::vector<float> absmax_, min_, max_;
  std::vector<double> sum_abs_;
};

}  // namespace qs::quant
