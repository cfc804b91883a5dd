// Shared pieces of the kernel benchmarks: model shapes, weight sets that defeat the caches,
// and the counters every benchmark reports.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "core/thread_pool.h"

namespace qs::bench {

struct LinearShape {
  const char* name;  // "llama1b.q"
  int64_t N, K;      // W is [N, K]
};

// Llama-3.2-1B and Qwen2.5-0.5B projections (o has the shape of q; listed once).
inline const std::vector<LinearShape>& linear_shapes() {
  static const std::vector<LinearShape> shapes = {
      {"llama1b.q_o", 2048, 2048},       {"llama1b.kv", 512, 2048},         {"llama1b.gate_up", 8192, 2048},
      {"llama1b.down", 2048, 8192},      {"llama1b.lm_head", 128256, 2048}, {"qwen0.5b.q_o", 896, 896},
      {"qwen0.5b.kv", 128, 896},         {"qwen0.5b.gate_up", 4864, 896},   {"qwen0.5b.down", 896, 4864},
      {"qwen0.5b.lm_head", 151936, 896},
  };
  return shapes;
}

struct AttentionShape {
  const char* name;
  int n_heads, n_kv_heads, head_dim;
};
inline const std::vector<AttentionShape>& attention_shapes() {
  static const std::vector<AttentionShape> shapes = {{"llama1b", 32, 8, 64}, {"qwen0.5b", 14, 2, 64}};
  return shapes;
}

// Weights for the benchmarks come from one shared arena much larger than the last-level cache
// (L3 is 32 MiB on the target). Successive iterations of a memory-bound benchmark take
// successive slices of it, so W streams from DRAM as in a real decode step (every layer's
// weights are read once per token) instead of from a warm cache.
// The arena holds bf16 values ~ N(0, 0.02); read as f32 (bf16 pairs) or f16 they are still
// finite normal numbers, so one arena serves every dtype.
class ColdWeights {
 public:
  static constexpr size_t kColdBytes = size_t{512} << 20;  // per rotation, >> L3
  static ColdWeights& get() {
    static ColdWeights arena;
    return arena;
  }
  // Slice `iteration` for a matrix of `bytes` (the same slice for the same iteration).
  const void* slice(size_t bytes, size_t iteration) const {
    const size_t stride = (bytes + 63) / 64 * 64;
    const size_t count = std::max<size_t>(1, std::min(kColdBytes / stride + 1, size_ / stride));
    return data_.data() + (iteration % count) * stride;
  }
  size_t size() const { return size_; }

 private:
  ColdWeights() {
    // The largest matrix (Llama lm_head in f32, 1.05 GB), or 512 MiB of rotation plus one matrix.
    size_ = size_t{1100} << 20;
    data_.resize(size_);
    const size_t pattern = size_t{16} << 20;
    Rng rng(42);
    auto* h = reinterpret_cast<uint16_t*>(data_.data());
    for (size_t i = 0; i < pattern / 2; ++i) h[i] = f32_to_bf16(static_cast<float>(rng.normal() * 0.02));
    for (size_t off = pattern; off < size_; off += pattern)
      std::memcpy(data_.data() + off, data_.data(), std::min(pattern, size_ - off));
  }
  size_t size_ = 0;
  AlignedVector<char> data_;
};

inline std::vector<float> random_vector(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
  return v;
}

// CPU time of the whole process (all threads). On a machine shared with other work, wall-clock
// rates of compute-bound kernels swing with what else runs, while FLOPs per CPU-second of our
// own threads ("GFLOP/cpu_s", per core) stay comparable between implementations.
inline double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

class CpuClock {
 public:
  CpuClock() : start_(process_cpu_seconds()) {}
  // Adds "GFLOP/cpu_s" for `flops` per iteration.
  void report(benchmark::State& state, double flops) const {
    const double cpu = process_cpu_seconds() - start_;
    if (cpu > 0 && flops > 0)
      state.counters["GFLOP/cpu_s"] = flops * static_cast<double>(state.iterations()) / cpu * 1e-9;
  }

 private:
  double start_;
};

// Per-iteration work -> rates: "GB/s" (decimal) and "GFLOP/s".
inline void set_rates(benchmark::State& state, double bytes, double flops) {
  if (bytes > 0)
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (flops > 0)
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

inline const char* dtype_label(DType t) { return t == DType::BF16 ? "bf16" : t == DType::F16 ? "f16" : "f32"; }

void register_kernel_benchmarks();
void register_library_benchmarks();
void register_qmatmul_benchmarks();  // qmatmul_bench.cpp

}  // namespace qs::bench
