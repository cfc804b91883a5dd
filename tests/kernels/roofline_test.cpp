// The roofline probes return plausible, finite numbers, and the bf16 probe really issues the
// two-products-per-lane instruction where the CPU has it (twice the FLOPs of an f32 FMA).
#include "kernels/roofline.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu.h"
#include "core/thread_pool.h"

namespace qs::kernels {
namespace {

TEST(Roofline, BandwidthIsPlausible) {
  ThreadPool pool(2);
  const double gbs = measure_memory_bandwidth_gbs(pool, size_t{64} << 20);
  EXPECT_TRUE(std::isfinite(gbs));
  EXPECT_GT(gbs, 0.5);     // even a loaded laptop streams more than this
  EXPECT_LT(gbs, 5000.0);  // more than any CPU socket today: a timing bug
}

TEST(Roofline, PeakFlopsArePlausible) {
  ThreadPool pool(1);
  const double f32 = measure_peak_gflops(DType::F32, pool);
  const double bf16 = measure_peak_gflops(DType::BF16, pool);
  EXPECT_TRUE(std::isfinite(f32) && std::isfinite(bf16));
  EXPECT_GT(f32, 0.5);
  EXPECT_LT(f32, 1000.0);  // one core: at most two 512-bit FMAs per cycle at ~8 GHz
  if (use_avx512_bf16()) {
    // Same instruction count and throughput, twice the FLOPs per instruction: about 2x.
    // 1.2x leaves room for a noisy machine (best of several repeats each).
    EXPECT_GT(bf16, 1.2 * f32);
  } else {
    EXPECT_GT(bf16, 0.5);
  }
  const double int8 = measure_peak_gflops(DType::I8, pool);
  EXPECT_TRUE(std::isfinite(int8));
  // VPDPBUSD: 64 multiply-adds per instruction against VDPBF16PS's 32.
  if (use_avx512_vnni()) EXPECT_GT(int8, 1.2 * f32);
  else EXPECT_GT(int8, 0.5);
}

}  // namespace
}  // namespace qs::kernels
