// qstudy_kernel_bench: kernels of qstudy and the GEMM libraries of Debian, side by side.
// Usage: qstudy_kernel_bench [--benchmark_filter=REGEX] [--benchmark_repetitions=N
//        --benchmark_enable_random_interleaving=true] [--benchmark_format=json]
// The context (printed first, and in JSON) holds the measured rooflines: memory bandwidth and
// peak GFLOP/s of this machine with the same thread count (QSTUDY_THREADS, default all cores).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_util.h"
#include "core/cpu.h"
#include "kernels/roofline.h"

int main(int argc, char** argv) {
  const char* threads = std::getenv("QSTUDY_THREADS");
  if (threads) qs::set_default_threads(std::atoi(threads));
  qs::ThreadPool& pool = qs::default_pool();

  bool skip_roofline = false;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--list_tests") || !std::strcmp(argv[i], "--benchmark_list_tests") ||
        !std::strncmp(argv[i], "--benchmark_list_tests", 22))
      skip_roofline = true;
  benchmark::AddCustomContext("qstudy_cpu", qs::cpu_summary());
  benchmark::AddCustomContext("qstudy_threads", std::to_string(pool.size()));
  if (!skip_roofline && !std::getenv("QSTUDY_BENCH_NO_ROOFLINE")) {
    char buf[64];
    const double bw = qs::kernels::measure_memory_bandwidth_gbs(pool);
    const double f32 = qs::kernels::measure_peak_gflops(qs::DType::F32, pool);
    const double bf16 = qs::kernels::measure_peak_gflops(qs::DType::BF16, pool);
    std::fprintf(stderr, "roofline (%d threads): memory %.1f GB/s, peak f32 %.1f GFLOP/s, peak bf16 %.1f GFLOP/s\n",
                 pool.size(), bw, f32, bf16);
    std::snprintf(buf, sizeof buf, "%.1f", bw);
    benchmark::AddCustomContext("qstudy_mem_bw_gbs", buf);
    std::snprintf(buf, sizeof buf, "%.1f", f32);
    benchmark::AddCustomContext("qstudy_peak_gflops_f32", buf);
    std::snprintf(buf, sizeof buf, "%.1f", bf16);
    benchmark::AddCustomContext("qstudy_peak_gflops_bf16", buf);
  }

  qs::bench::register_kernel_benchmarks();
  qs::bench::register_library_benchmarks();
  qs::bench::register_qmatmul_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
