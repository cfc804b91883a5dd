// Benchmarks of qstudy's own kernels. Names: <kernel>/<dtype>/<shape>/<size>/qstudy so that
// bench/compare_gemm.py can line them up with the library runs of gemm_libs_bench.cpp.
#include <cmath>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace qs::bench {

namespace {

using kernels::MatmulArgs;
using kernels::MatmulPath;

void run_matmul(benchmark::State& state, const LinearShape& shape, DType dtype, int64_t M, MatmulPath path, bool cold) {
  ThreadPool& pool = default_pool();
  const auto x = random_vector(static_cast<size_t>(M * shape.K), 7);
  std::vector<float> y(static_cast<size_t>(M * shape.N));
  const size_t w_bytes = static_cast<size_t>(shape.N * shape.K) * dtype_size(dtype);
  auto& arena = ColdWeights::get();
  MatmulArgs a;
  a.M = M, a.N = shape.N, a.K = shape.K;
  a.x = x.data(), a.ldx = shape.K;
  a.ldw = shape.K, a.w_dtype = dtype;
  a.y = y.data(), a.ldy = shape.N;
  size_t it = 0;
  const CpuClock cpu;
  for (auto _ : state) {
    a.w = arena.slice(w_bytes, cold ? it++ : 0);
    kernels::matmul(a, pool, path);
    benchmark::DoNotOptimize(y.data());
  }
  cpu.report(state, 2.0 * M * shape.N * shape.K);
  set_rates(state, static_cast<double>(w_bytes), 2.0 * M * shape.N * shape.K);
}

void register_matmul() {
  for (const auto& s : linear_shapes()) {
    for (DType dt : {DType::BF16, DType::F32, DType::F16}) {
      const std::string base = std::string("matmul/") + dtype_label(dt) + "/" + s.name;
      benchmark::RegisterBenchmark((base + "/M:1/qstudy").c_str(), [s, dt](benchmark::State& st) {
        run_matmul(st, s, dt, 1, MatmulPath::Auto, true);
      })->UseRealTime();
      if (dt == DType::F16) continue;
      benchmark::RegisterBenchmark(
          (base + "/M:512/qstudy").c_str(),
          [s, dt](benchmark::State& st) { run_matmul(st, s, dt, 512, MatmulPath::Auto, false); })
          ->UseRealTime()
          ->MinTime(1.0);
    }
  }
  // Where GEMV stops paying off: both paths forced over small M (cold weights, as in decode
  // of a batch or speculative verification).
  for (const char* shape : {"llama1b.q_o", "llama1b.gate_up"}) {
    for (const auto& s : linear_shapes()) {
      if (std::string(s.name) != shape) continue;
      for (DType dt : {DType::BF16, DType::F32})
        for (int64_t M : {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64})
          for (MatmulPath path : {MatmulPath::Gemv, MatmulPath::Gemm}) {
            const std::string name = std::string("matmul_path/") + dtype_label(dt) + "/" + s.name +
                                     "/M:" + std::to_string(M) + (path == MatmulPath::Gemv ? "/gemv" : "/gemm");
            benchmark::RegisterBenchmark(name.c_str(), [s, dt, M, path](benchmark::State& st) {
              run_matmul(st, s, dt, M, path, true);
            })->UseRealTime();
          }
    }
  }
}

// KV caches of several layers (rotated like the weights) so long-context decode reads DRAM.
void run_attention(benchmark::State& state, const AttentionShape& s, int64_t n_new, int64_t pos0) {
  ThreadPool& pool = default_pool();
  const int64_t ctx = pos0 + n_new;
  const int64_t kv_stride = ctx * s.head_dim;
  const size_t layer_floats = static_cast<size_t>(s.n_kv_heads * kv_stride);
  const bool decode = n_new == 1;
  const size_t layers = decode ? std::max<size_t>(1, (size_t{256} << 20) / (2 * layer_floats * 4) + 1) : 1;
  std::vector<std::vector<float>> k(layers), v(layers);
  for (size_t l = 0; l < layers; ++l) {
    k[l] = random_vector(layer_floats, 11 + l);
    v[l] = random_vector(layer_floats, 31 + l);
  }
  const auto q = random_vector(static_cast<size_t>(n_new * s.n_heads * s.head_dim), 5);
  std::vector<float> out(q.size());
  kernels::AttentionArgs a;
  a.q = q.data(), a.n_new = n_new, a.pos0 = pos0, a.kv_stride = kv_stride;
  a.n_heads = s.n_heads, a.n_kv_heads = s.n_kv_heads, a.head_dim = s.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  a.out = out.data();
  size_t it = 0;
  const CpuClock cpu;
  for (auto _ : state) {
    const size_t l = it++ % layers;
    a.k = k[l].data(), a.v = v[l].data();
    kernels::attention(a, pool);
    benchmark::DoNotOptimize(out.data());
  }
  // Work: QK^T and PV over the causal triangle (per head), and the KV bytes read once.
  double pairs = 0;
  for (int64_t t = 0; t < n_new; ++t) pairs += static_cast<double>(pos0 + t + 1);
  cpu.report(state, 4.0 * pairs * s.n_heads * s.head_dim);
  set_rates(state, decode ? 2.0 * layer_floats * 4 : 0, 4.0 * pairs * s.n_heads * s.head_dim);
}

void register_attention() {
  for (const auto& s : attention_shapes()) {
    benchmark::RegisterBenchmark((std::string("attention/") + s.name + "/prefill:512").c_str(),
                                 [s](benchmark::State& st) { run_attention(st, s, 512, 0); })
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("attention/") + s.name + "/prefill:512@pos:1536").c_str(),
                                 [s](benchmark::State& st) { run_attention(st, s, 512, 1536); })
        ->UseRealTime();
    for (int64_t ctx : {512, 2048, 8192})
      benchmark::RegisterBenchmark((std::string("attention/") + s.name + "/decode/ctx:" + std::to_string(ctx)).c_str(),
                                   [s, ctx](benchmark::State& st) { run_attention(st, s, 1, ctx - 1); })
          ->UseRealTime();
  }
}

void register_ops() {
  for (int64_t rows : {1, 512}) {
    benchmark::RegisterBenchmark(("rmsnorm/2048/rows:" + std::to_string(rows)).c_str(), [rows](benchmark::State& st) {
      auto x = random_vector(static_cast<size_t>(rows * 2048), 1);
      const auto w = random_vector(2048, 2);
      std::vector<float> y(x.size());
      for (auto _ : st) {
        kernels::rmsnorm(x.data(), w.data(), y.data(), rows, 2048, 1e-5f);
        benchmark::DoNotOptimize(y.data());
      }
      set_rates(st, 2.0 * 4 * x.size(), 0);
    })->UseRealTime();
  }
  for (auto style : {kernels::RopeStyle::Half, kernels::RopeStyle::Interleaved}) {
    const std::string name = std::string("rope/") + (style == kernels::RopeStyle::Half ? "half" : "interleaved") +
                             "/tokens:512/heads:32/dim:64";
    benchmark::RegisterBenchmark(name.c_str(), [style](benchmark::State& st) {
      auto x = random_vector(512 * 32 * 64, 1);
      const auto c = random_vector(512 * 32, 2), s = random_vector(512 * 32, 3);
      for (auto _ : st) {
        kernels::rope(x.data(), 512, 32, 64, c.data(), s.data(), style);
        benchmark::DoNotOptimize(x.data());
      }
      set_rates(st, 2.0 * 4 * x.size(), 0);
    })->UseRealTime();
  }
  for (int64_t n : {2048, 128256}) {
    benchmark::RegisterBenchmark(("softmax/n:" + std::to_string(n)).c_str(), [n](benchmark::State& st) {
      auto x = random_vector(static_cast<size_t>(n), 1, 3.0);
      for (auto _ : st) {  // in place, again and again: probabilities are valid input too
        kernels::softmax(x.data(), n);
        benchmark::DoNotOptimize(x.data());
      }
      set_rates(st, 2.0 * 4 * n, 0);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("log_sum_exp/n:" + std::to_string(n)).c_str(), [n](benchmark::State& st) {
      const auto x = random_vector(static_cast<size_t>(n), 1, 3.0);
      for (auto _ : st) benchmark::DoNotOptimize(kernels::log_sum_exp(x.data(), n));
      set_rates(st, 4.0 * n, 0);
    })->UseRealTime();
  }
  benchmark::RegisterBenchmark("silu_mul/n:8192", [](benchmark::State& st) {
    const auto g = random_vector(8192, 1), u = random_vector(8192, 2);
    std::vector<float> out(8192);
    for (auto _ : st) {
      kernels::silu_mul(g.data(), u.data(), out.data(), 8192);
      benchmark::DoNotOptimize(out.data());
    }
    set_rates(st, 3.0 * 4 * 8192, 0);
  })->UseRealTime();
}

}  // namespace

void register_kernel_benchmarks() {
  register_matmul();
  register_attention();
  register_ops();
}

}  // namespace qs::bench
