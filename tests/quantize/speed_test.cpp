// Timings of the algorithms at model scale. The full-size runs (GPTQ on a 2048 x 8192
// down_proj of a 1B model with 128 x 512 calibration tokens; AWQ's searches on a 2048 x 2048
// layer) take minutes of CPU and are DISABLED_ in the normal suite; run them with
//   ./build/tests/test_quantize --gtest_also_run_disabled_tests --gtest_filter='QuantizeSpeed.*'
// The enabled small case keeps a loose time bound so that a slow path (a per-element LAPACK
// call, an unblocked GEMM) fails the suite on a busy machine as well.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "core/sysinfo.h"
#include "core/timer.h"
#include "quantize/algorithms/awq.h"
#include "quantize/algorithms/gptq.h"
#include "quantize/algorithms/hessian.h"
#include "quantize_test_util.h"

namespace qs::quant {
namespace {

using formats::IntGranularity;

// Calibration batches: `batches` x `seq` tokens of k features (cheap synthetic activations:
// normal, per-channel scales, a few outlier channels; the timing does not depend on them).
std::vector<float> batch_activations(int64_t seq, int64_t k, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(seq * k);
  for (int64_t r = 0; r < seq; ++r)
    for (int64_t c = 0; c < k; ++c) x[r * k + c] = static_cast<float>(rng.normal()) * (c % 97 == 0 ? 20.0f : 1.0f);
  return x;
}

std::vector<float> hessian_timed(int64_t k, int64_t batches, int64_t seq, ThreadPool& pool, double& seconds) {
  HessianAccumulator acc(k, "down_proj");
  const std::vector<float> x = batch_activations(seq, k, 2);  // one batch reused: the cost is the same
  Stopwatch sw;
  for (int64_t b = 0; b < batches; ++b) acc.add(x, seq, 1, pool);
  seconds = sw.seconds();
  return acc.take();
}

double gptq_timed(const std::vector<float>& w, int64_t n, int64_t k, const std::vector<float>& h, ThreadPool& pool,
                  int lapack_threads) {
  GptqOptions opt;
  opt.quant.bits = 4;
  opt.quant.symmetric = true;
  opt.quant.group_size = 128;
  opt.act_order = true;
  opt.lapack_threads = lapack_threads;
  Stopwatch sw;
  const GptqResult r = gptq_quantize(w, n, k, h, opt, "down_proj", pool);
  const double seconds = sw.seconds();
  EXPECT_GT(r.loss, 0.0);
  return seconds;
}

TEST(QuantizeSpeed, GptqSmallLayer) {
  ThreadPool pool(2);
  double hessian_s = 0;
  const std::vector<float> h = hessian_timed(2048, 8, 512, pool, hessian_s);
  const double gptq_s = gptq_timed(test::random_weight(512, 2048, 1), 512, 2048, h, pool, 1);
  std::printf("  GPTQ 512 x 2048, 8 x 512 tokens, 2 threads: Hessian %.2f s, GPTQ %.2f s\n", hessian_s, gptq_s);
  EXPECT_LT(hessian_s + gptq_s, 30.0);
}

// Interleaved and repeated (the machine is shared): one and two pool threads; with two, the
// Cholesky steps on one OpenBLAS thread (the default) and on two.
TEST(QuantizeSpeed, DISABLED_Gptq2048x8192) {
  const int64_t n = 2048, k = 8192, batches = 128, seq = 512;
  const std::vector<float> w = test::random_weight(n, k, 1);
  for (int rep = 0; rep < 2; ++rep)
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      double hessian_s = 0;
      const std::vector<float> h = hessian_timed(k, batches, seq, pool, hessian_s);
      const double gptq_s = gptq_timed(w, n, k, h, pool, 1);
      std::printf("  GPTQ %lld x %lld (4-bit g128 act-order), %lld x %lld tokens, %d thread(s): Hessian %.1f s, "
                  "GPTQ %.1f s (LAPACK on 1 thread)",
                  static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(batches),
                  static_cast<long long>(seq), threads, hessian_s, gptq_s);
      if (threads > 1) std::printf(", %.1f s (LAPACK on %d)", gptq_timed(w, n, k, h, pool, 0), threads);
      std::printf("; peak RSS %.2f GB\n", static_cast<double>(peak_rss_bytes()) / 1e9);
    }
}

TEST(QuantizeSpeed, DISABLED_Awq2048x2048) {
  const int64_t n = 2048, k = 2048, rows = 16384;
  const std::vector<float> w = test::random_weight(n, k, 3);
  std::vector<float> x(rows * k);
  for (int64_t r = 0; r < rows; r += 512) {
    const std::vector<float> b = batch_activations(512, k, 4 + r);
    std::copy(b.begin(), b.end(), x.begin() + r * k);
  }
  formats::IntQuantConfig cfg;
  cfg.bits = 4;
  cfg.symmetric = false;
  cfg.group_size = 128;
  for (int rep = 0; rep < 2; ++rep)
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      const std::vector<LinearWeight> lin = {{w, n}};
      Stopwatch sw;
      const std::vector<float> xs = awq_activation_scale(x, rows, k, pool), ws = awq_weight_scale(lin, k, 128);
      const AwqLinearsLoss loss(x, rows, k, lin, cfg, "o_proj", pool);
      const AwqScaleResult r = awq_search_scales(xs, ws, loss);
      const double scale_s = sw.seconds();
      sw.reset();
      const std::vector<float> mv = awq_search_clip(w, n, k, x, rows, cfg, {}, "o_proj", pool);
      const double clip_s = sw.seconds();
      std::printf("  AWQ %lld x %lld (4-bit asym g128), %lld tokens, %d thread(s): scale search (20 ratios) %.1f s "
                  "(best ratio %.2f), clip search (10 steps, 512 sampled tokens) %.1f s\n",
                  static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(rows), threads, scale_s,
                  r.ratio, clip_s);
      EXPECT_EQ(mv.size(), static_cast<size_t>(n * k / 128));
    }
}

}  // namespace
}  // namespace qs::quant
