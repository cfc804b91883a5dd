// The same y = x W^T products with Debian's GEMM libraries, for comparison with
// matmul/<dtype>/<shape>/M:<m>/qstudy:
//  - onednn:        oneDNN 2.6 matmul, W read in place as a transposed ("ba") K x N matrix;
//  - onednn_packed: oneDNN with weights reordered beforehand into its preferred blocked
//                   layout (reorder not timed: a persistent repack, its best case);
//  - openblas:      OpenBLAS sgemm / sgemv (f32) and sbgemm / sbgemv (bf16) when the library
//                   was built with them (Debian's 0.3.21 is not: no bf16 rows then).
// bf16 runs give the libraries x already converted to bf16 (not timed), while qstudy converts
// x inside its timed call. Thread count: oneDNN follows OMP_NUM_THREADS (default all cores),
// OpenBLAS is set to the size of qstudy's pool.
#include <string>
#include <vector>

#include "bench_util.h"

#if QS_BENCH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if QS_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace qs::bench {

namespace {

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}

#if QS_BENCH_HAVE_DNNL
void run_onednn(benchmark::State& state, const LinearShape& shape, DType dtype, int64_t M, bool packed, bool cold) {
  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const auto dt = dtype == DType::BF16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc src_md({M, shape.K}, dt, memory::format_tag::ab);
  const memory::desc w_inplace_md({shape.K, shape.N}, dt, memory::format_tag::ba);
  const memory::desc w_any_md({shape.K, shape.N}, dt, memory::format_tag::any);
  const memory::desc dst_md({M, shape.N}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, packed ? w_any_md : w_inplace_md, dst_md), eng);
  const dnnl::matmul prim(pd);

  const auto xf = random_vector(static_cast<size_t>(M * shape.K), 7);
  const auto xb = to_bf16(xf);
  memory src(src_md, eng,
             dtype == DType::BF16 ? static_cast<void*>(const_cast<uint16_t*>(xb.data()))
                                  : static_cast<void*>(const_cast<float*>(xf.data())));
  memory dst(dst_md, eng);
  const size_t w_bytes = static_cast<size_t>(shape.N * shape.K) * dtype_size(dtype);
  auto& arena = ColdWeights::get();
  memory packed_w;
  if (packed) {
    packed_w = memory(pd.weights_desc(), eng);
    memory raw(w_inplace_md, eng, const_cast<void*>(arena.slice(w_bytes, 0)));
    dnnl::reorder(raw, packed_w).execute(strm, raw, packed_w);
    strm.wait();
  }
  size_t it = 0;
  const CpuClock cpu;
  for (auto _ : state) {
    memory w = packed ? packed_w : memory(w_inplace_md, eng, const_cast<void*>(arena.slice(w_bytes, cold ? it++ : 0)));
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
  cpu.report(state, 2.0 * M * shape.N * shape.K);
  set_rates(state, static_cast<double>(w_bytes), 2.0 * M * shape.N * shape.K);
}
#endif

#if QS_BENCH_HAVE_OPENBLAS
void run_openblas(benchmark::State& state, const LinearShape& shape, DType dtype, int64_t M, bool cold) {
  openblas_set_num_threads(default_pool().size());
  const auto xf = random_vector(static_cast<size_t>(M * shape.K), 7);
  const auto xb = to_bf16(xf);
  std::vector<float> y(static_cast<size_t>(M * shape.N));
  const size_t w_bytes = static_cast<size_t>(shape.N * shape.K) * dtype_size(dtype);
  auto& arena = ColdWeights::get();
  const int m = static_cast<int>(M), n = static_cast<int>(shape.N), k = static_cast<int>(shape.K);
  size_t it = 0;
  const CpuClock cpu;
  for (auto _ : state) {
    const void* w = arena.slice(w_bytes, cold ? it++ : 0);
    if (dtype == DType::BF16) {
#if QS_BENCH_HAVE_OPENBLAS_BF16
      const auto* wb = static_cast<const bfloat16*>(w);
      if (M == 1)
        cblas_sbgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, wb, k, xb.data(), 1, 0.0f, y.data(), 1);
      else
        cblas_sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, xb.data(), k, wb, k, 0.0f, y.data(), n);
#endif
    } else {
      const auto* wf = static_cast<const float*>(w);
      if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, wf, k, xf.data(), 1, 0.0f, y.data(), 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, xf.data(), k, wf, k, 0.0f, y.data(), n);
    }
    benchmark::DoNotOptimize(y.data());
  }
  cpu.report(state, 2.0 * M * shape.N * shape.K);
  set_rates(state, static_cast<double>(w_bytes), 2.0 * M * shape.N * shape.K);
}
#endif

}  // namespace

void register_library_benchmarks() {
  for (const auto& s : linear_shapes()) {
    for (DType dt : {DType::BF16, DType::F32}) {
      for (int64_t M : {1, 512}) {
        const bool cold = M == 1;
        const std::string base =
            std::string("matmul/") + dtype_label(dt) + "/" + s.name + "/M:" + std::to_string(M) + "/";
        const double min_time = M == 1 ? 0.5 : 1.0;
#if QS_BENCH_HAVE_DNNL
        benchmark::RegisterBenchmark((base + "onednn").c_str(),
                                     [s, dt, M, cold](benchmark::State& st) { run_onednn(st, s, dt, M, false, cold); })
            ->UseRealTime()
            ->MinTime(min_time);
        if (M > 1)
          benchmark::RegisterBenchmark((base + "onednn_packed").c_str(),
                                       [s, dt, M](benchmark::State& st) { run_onednn(st, s, dt, M, true, false); })
              ->UseRealTime()
              ->MinTime(min_time);
#endif
#if QS_BENCH_HAVE_OPENBLAS
#if !QS_BENCH_HAVE_OPENBLAS_BF16
        if (dt == DType::BF16) continue;  // this OpenBLAS build has no bf16 routines
#endif
        benchmark::RegisterBenchmark((base + "openblas").c_str(),
                                     [s, dt, M, cold](benchmark::State& st) { run_openblas(st, s, dt, M, cold); })
            ->UseRealTime()
            ->MinTime(min_time);
#endif
      }
    }
  }
}

}  // namespace qs::bench
