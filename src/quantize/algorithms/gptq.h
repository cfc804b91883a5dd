// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization
// for Generative Pre-trained Transformers"), following AutoGPTQ's GPTQ.fasterquant and its
// Quantizer (the same algorithm as IST-DASLab/gptq and llm-compressor's GPTQ modifier).
//
// Input: W [N, K] row-major f32 (nn.Linear.weight) and the Hessian H [K, K] of its calibration
// inputs (HessianAccumulator). Steps, in AutoGPTQ's order:
//  1. Per-channel / per-tensor parameters come from W as given (before step 2, as AutoGPTQ's
//     first find_params(W) and llm-compressor's observer).
//  2. Dead inputs: where H[i, i] == 0, H[i, i] = 1 and W[:, i] = 0.
//  3. act_order: columns permuted by descending diag(H) (stable: ties keep column order).
//  4. Dampening: H[i, i] += damp_percent * mean(diag H) (the mean in f64, rounded to f32;
//     torch's f32 mean can differ by 1 ulp depending on its reduction order).
//  5. Hinv = upper Cholesky factor U of H^-1 (H^-1 = U^T U): LAPACK spotrf, spotri, spotrf
//     (torch.linalg.cholesky, torch.cholesky_inverse, torch.linalg.cholesky(upper=True)).
//     If H is not positive definite, damp_percent is multiplied by 10 and the factorization
//     retried, up to `damp_retries` times (the damping used is reported); then qs::Error.
//  6. Columns in lazy batches of `block_size` (128): within a batch, column i is quantized,
//     err = (w - q) / Hinv[i, i] is subtracted times Hinv[i, i+1:] from the batch's later
//     columns; after the batch, W[:, end:] -= Err @ Hinv[batch, end:] (one GEMM).
//     Loss += (w - q)^2 / Hinv[i, i]^2 / 2 per weight (AutoGPTQ's sum(Losses)).
//  7. Groups (per-group, not static): the group's parameters are computed when its first
//     column comes up, from W[:, c : c + g] as it is then. As in AutoGPTQ (and the GPTQ
//     reference code), that W holds the error feedback of earlier batches but not of earlier
//     columns of the current batch (those updates live in the batch's working copy); for
//     g = 128 = block_size the two coincide. In act-order, groups are runs of g consecutive
//     columns in the permuted order and g_idx maps each original column to its group.
//  8. static_groups: parameters of group j are those of the original W[:, j*g : (j+1)*g]
//     (after step 2), computed before the permutation; g_idx is then c / g.
//
// The error feedback rounds like torch (product, then difference; no FMA contraction), so a
// PyTorch run of the same steps on the same OpenBLAS gives the same codes, bit for bit
// (tests/quantize/ref/gptq_ref.py).
//
// Quantizer: the integer affine rules of formats/int_quant.h (range includes 0, symmetric
// scale = amax / ((2^b - 1) / 2), zero 2^(b-1); asymmetric scale = (max - min) / (2^b - 1),
// zero = round(-min / scale); round half to even). This is llm-compressor's (compressed-
// tensors') quantizer and AutoGPTQ's for every group that holds a negative value; AutoGPTQ's
// symmetric Quantizer differs on a group with no negative value (it then uses
// scale = max / (2^b - 1), keeping zero 2^(b-1), so half the codes go unused), which qstudy
// does not reproduce. Optional MSE clip search per group (Quantizer(mse=True); MseSearch).
//
// Threads: rows are independent given Hinv, so row panels of 64 (fixed) run on the pool, each
// doing all batches; the batch GEMM is one single-threaded OpenBLAS call per panel. The
// factorizations run on `lapack_threads` OpenBLAS threads (linalg.h). With the default of one,
// results are bit-identical for any number of pool threads. Memory: a copy of H (K^2 floats)
// and of W (N * K floats).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "formats/int_quant.h"

namespace qs::quant {

struct GptqOptions {
  formats::IntQuantConfig quant;  // bits 2..8, sym/asym, per-channel / per-group g / per-tensor
  double damp_percent = 0.01;     // AutoGPTQ BaseQuantizeConfig.damp_percent, llm-compressor dampening_frac
  int damp_retries = 2;           // on a failed Cholesky: damp_percent *= 10, at most this many times
  int64_t block_size = 128;       // fasterquant(blocksize=128)
  bool act_order = false;         // desc_act
  bool static_groups = false;     // AutoGPTQ static_groups (per-group only)
  std::optional<formats::MseSearch> mse;  // Quantizer(mse=True): clip search per group
  // OpenBLAS threads for the Cholesky steps. 1 (default): bit-identical results for any pool
  // size, and to PyTorch on one OpenBLAS thread. 0: the pool's size (faster for large K, but
  // OpenBLAS's threaded factorizations round differently with each thread count).
  int lapack_threads = 1;
};

struct GptqResult {
  formats::IntMatrix q;          // codes in the original column order; g_idx set with act_order (per-group)
  double loss = 0.0;             // AutoGPTQ's sum(Losses) (its log prints loss / nsamples)
  double damp_percent = 0.0;     // damping actually used (after retries)
  std::vector<int32_t> perm;     // act_order: perm[p] = original column at position p; else empty
};

// Quantizes W [n, k] with the Hessian H [k, k] (symmetric, row-major; only its upper triangle
// and diagonal are read). Throws qs::Error naming `name` on bad shapes or options, non-finite
// W or H, or a Hessian that stays indefinite after the damping retries.
GptqResult gptq_quantize(std::span<const float> w, int64_t n, int64_t k, std::span<const float> h,
                         const GptqOptions& options, std::string_view name, ThreadPool& pool = default_pool());

}  // namespace qs::quant
