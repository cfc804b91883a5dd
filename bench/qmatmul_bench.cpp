// Benchmarks of the low-bit kernels (qmatmul.h) next to the dense bf16 matmul on the same
// shapes. Names: qmatmul/<kind>/<shape>/M:<rows>; the dense baseline is qmatmul/bf16/... .
//  - M = 1 (decode): W streams from DRAM (successive iterations take successive slices of the
//    shared cold arena, as run_matmul does); "GB/s" counts the bytes the kernel must read for
//    W (codes + scales + zero points), so it compares directly with the memory roofline.
//  - M = 512 (prefill): W stays warm; "GFLOP/s" counts 2 M N K.
//  - M = 1 with W warm (".../warm", q_o only): the arithmetic ceiling of the decode kernels.
// Codes and scales are the arena's bytes (bf16 values ~ N(0, 0.02), so scales read as f32 are
// finite normal numbers and GGUF block scales read as f16 are normal numbers near 1); the
// kernels' speed does not depend on the values, and the kernels' numerics are tested elsewhere
// (tests/kernels/qmatmul_test.cpp).
#include <array>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/matmul.h"
#include "kernels/qmatmul.h"

namespace qs::bench {

namespace {

using kernels::MatmulPath;

enum class Kind { Bf16, W8A16, W4A16, W3A16, Nf4, Mxfp4, Nvfp4, Int8, LlmInt8, Fp8, Q8_0, Q4_0 };

struct KindInfo {
  Kind kind;
  const char* name;
};
constexpr KindInfo kKinds[] = {
    {Kind::Bf16, "bf16"},   {Kind::W8A16, "w8a16"},  {Kind::W4A16, "w4a16_g128"}, {Kind::W3A16, "w3a16_g128"},
    {Kind::Nf4, "nf4_b64"}, {Kind::Mxfp4, "mxfp4"},  {Kind::Nvfp4, "nvfp4"},      {Kind::Int8, "w8a8_int8"},
    {Kind::LlmInt8, "llm_int8"}, {Kind::Fp8, "w8a8_fp8"}, {Kind::Q8_0, "q8_0"},   {Kind::Q4_0, "q4_0"},
};

// FP4 E2M1 values by code and the NF4 codebook (rounded to 4 digits: only the speed matters here).
constexpr std::array<float, 16> kE2m1 = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
constexpr std::array<float, 16> kNf4 = {-1,      -0.6962f, -0.5251f, -0.3949f, -0.2844f, -0.1848f, -0.0911f, 0,
                                        0.0796f, 0.1609f,  0.2461f,  0.3379f,  0.4407f,  0.5626f,  0.7230f,  1};

// Bytes of W in the kernel layout of `kind` for an [N, K] matrix, laid out codes first.
struct WLayout {
  int64_t codes = 0, hi = 0, scales = 0, zeros = 0;
  int64_t total() const { return codes + hi + scales + zeros; }
};

WLayout layout(Kind kind, int64_t N, int64_t K) {
  WLayout l;
  switch (kind) {
    case Kind::Bf16:
      l.codes = 2 * N * K;
      break;
    case Kind::W8A16:
      l.codes = N * K, l.scales = 4 * N;
      break;
    case Kind::W4A16:
      l.codes = N * K / 2, l.scales = 4 * N * K / 128, l.zeros = N * K / 128;
      break;
    case Kind::W3A16:
      l.codes = N * K / 4, l.hi = N * K / 8, l.scales = 4 * N * K / 128, l.zeros = N * K / 128;
      break;
    case Kind::Nf4:
      l.codes = N * K / 2, l.scales = 4 * N * K / 64;
      break;
    case Kind::Mxfp4:  // E8M0 scales are one byte in files; the kernel reads them widened to f32
      l.codes = N * K / 2, l.scales = 4 * N * K / 32;
      break;
    case Kind::Nvfp4:
      l.codes = N * K / 2, l.scales = 4 * N * K / 16;
      break;
    case Kind::Int8:
    case Kind::LlmInt8:
    case Kind::Fp8:
      l.codes = N * K, l.scales = 4 * N;
      break;
    case Kind::Q8_0:
      l.codes = N * (K / 32) * 34;
      break;
    case Kind::Q4_0:
      l.codes = N * (K / 32) * 18;
      break;
  }
  return l;
}

void run_kind(benchmark::State& state, Kind kind, const LinearShape& shape, int64_t M, bool cold) {
  ThreadPool& pool = default_pool();
  const int64_t N = shape.N, K = shape.K;
  auto x = random_vector(static_cast<size_t>(M * K), 7);
  if (kind == Kind::LlmInt8)  // a few outlier feature columns, as in LLM.int8()'s models
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 5; k < K; k += 512) x[m * K + k] = 20.0f;
  std::vector<float> y(static_cast<size_t>(M * N));
  const std::vector<int32_t> row_sums(static_cast<size_t>(N), 0);
  const WLayout l = layout(kind, N, K);
  auto& arena = ColdWeights::get();
  size_t it = 0;
  const CpuClock cpu;
  for (auto _ : state) {
    const auto* w = static_cast<const uint8_t*>(arena.slice(static_cast<size_t>(l.total()), cold ? it++ : 0));
    const uint8_t* hi = w + l.codes;
    const auto* scales = reinterpret_cast<const float*>(hi + l.hi);
    const uint8_t* zeros = hi + l.hi + l.scales;
    switch (kind) {
      case Kind::Bf16: {
        kernels::MatmulArgs a;
        a.M = M, a.N = N, a.K = K, a.x = x.data(), a.ldx = K, a.w = w, a.ldw = K, a.w_dtype = DType::BF16;
        a.y = y.data(), a.ldy = N;
        kernels::matmul(a, pool, MatmulPath::Auto);
        break;
      }
      case Kind::W8A16:
      case Kind::W4A16:
      case Kind::W3A16:
      case Kind::Nf4:
      case Kind::Mxfp4:
      case Kind::Nvfp4: {
        kernels::WeightOnlyArgs a;
        a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y.data();
        a.bits = kind == Kind::W8A16 ? 8 : kind == Kind::W3A16 ? 3 : 4;
        a.codes = w, a.codes_hi = kind == Kind::W3A16 ? hi : nullptr, a.scales = scales;
        a.zeros = l.zeros ? zeros : nullptr;
        a.group = kind == Kind::W8A16 ? K : kind == Kind::Nf4 ? 64 : kind == Kind::Mxfp4 ? 32 : kind == Kind::Nvfp4 ? 16 : 128;
        a.lut = kind == Kind::Nf4 ? kNf4.data() : (kind == Kind::Mxfp4 || kind == Kind::Nvfp4) ? kE2m1.data() : nullptr;
        a.flat_groups = kind == Kind::Nf4;
        kernels::matmul_weight_only(a, pool);
        break;
      }
      case Kind::Int8:
      case Kind::LlmInt8: {
        kernels::Int8Args a;
        a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y.data();
        a.w = reinterpret_cast<const int8_t*>(w), a.w_scale = scales, a.w_row_sums = row_sums.data();
        if (kind == Kind::LlmInt8) a.outlier_threshold = 6.0f;
        kernels::matmul_int8(a, pool);
        break;
      }
      case Kind::Fp8: {
        kernels::Fp8Args a;
        a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y.data(), a.w = w, a.w_scale = scales;
        kernels::matmul_fp8(a, pool);
        break;
      }
      case Kind::Q8_0:
      case Kind::Q4_0: {
        kernels::GgufArgs a;
        a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y.data(), a.blocks = w, a.q4_0 = kind == Kind::Q4_0;
        kernels::matmul_gguf(a, pool);
        break;
      }
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * static_cast<double>(M * N * K);
  cpu.report(state, flops);
  set_rates(state, static_cast<double>(l.total()), flops);
}

void register_qmatmul() {
  for (const auto& s : linear_shapes()) {
    const std::string shape = s.name;
    if (shape != "llama1b.q_o" && shape != "llama1b.gate_up" && shape != "llama1b.down") continue;
    for (const KindInfo& k : kKinds)
      for (int64_t M : {int64_t{1}, int64_t{512}})
        for (bool cold : {true, false}) {
          if (M > 1 && cold) continue;
          // M = 1 also with W warm in the caches (q_o only: it fits the L3): the kernel's
          // compute ceiling, to tell decode speed limited by arithmetic from memory.
          if (M == 1 && !cold && shape != "llama1b.q_o") continue;
          const std::string name = std::string("qmatmul/") + k.name + "/" + shape + "/M:" + std::to_string(M) +
                                   (M == 1 && !cold ? "/warm" : "");
          auto* b = benchmark::RegisterBenchmark(name.c_str(), [kind = k.kind, s, M, cold](benchmark::State& st) {
            run_kind(st, kind, s, M, cold);
          });
          b->UseRealTime();
          if (M > 1) b->MinTime(1.0);
        }
  }
}

}  // namespace

void register_qmatmul_benchmarks() { register_qmatmul(); }

}  // namespace qs::bench
