// GPTQ's Hessian of a Linear layer's reconstruction loss: H = (2 / n) * sum_x x x^T over the
// layer's calibration inputs x (rows of X [rows, K]), n the number of samples seen so far.
//
// add() updates H exactly as AutoGPTQ's GPTQ.add_batch (and llm-compressor's
// accumulate_hessian) do, in the same order of f32 operations:
//     H *= n / (n + m);   n += m;   X *= sqrt(2 / n);   H += X^T X
// where m is the number of samples the batch counts for. AutoGPTQ and llm-compressor count
// sequences (a [batch, seq, K] input adds m = batch), so H = (2 / sequences) * sum over all
// tokens; the default here counts rows (m = rows). The scale of H changes neither GPTQ's
// codes (they depend on ratios of entries of H^-1) nor its choice of damping (relative to
// mean(diag H)); it only scales the loss GPTQ reports.
//
// Precision: f32, as AutoGPTQ and llm-compressor (GPTQ_PRECISION = float32). f64 would double
// the memory (H of a 14336-input down_proj: 0.8 GB in f32) and halve the GEMM rate, while
// the f32 sums' relative error (~1e-6 with OpenBLAS's blocked accumulation) stays far below
// the 1% of mean(diag H) that GPTQ adds to the diagonal anyway.
//
// X^T X is an OpenBLAS SGEMM over the upper triangle, cut into 128-row panels of H that
// qs::ThreadPool threads run single-threaded: bit-identical for any number of threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace qs::quant {

class HessianAccumulator {
 public:
  // `k`: input features of the layer; `name`: the layer, for error messages.
  explicit HessianAccumulator(int64_t k, std::string name = "");

  // Adds X [rows, k] (row-major). `samples`: how many samples these rows count for (default:
  // rows). Throws a qs::Error naming the layer on a shape mismatch or a non-finite input.
  void add(std::span<const float> x, int64_t rows, int64_t samples = -1, ThreadPool& pool = default_pool());

  int64_t k() const { return k_; }
  int64_t samples() const { return samples_; }
  int64_t rows() const { return rows_; }
  // H [k, k], row-major, symmetric (zero before the first add).
  std::vector<float> hessian() const;
  // The same, moved out; the accumulator starts over.
  std::vector<float> take();

 private:
  int64_t k_;
  std::string name_;
  int64_t samples_ = 0, rows_ = 0;
  std::vector<float> h_;  // upper triangle valid (and the diagonal tiles' lower parts)
};

}  // namespace qs::quant
