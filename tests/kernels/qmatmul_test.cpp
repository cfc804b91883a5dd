// Low-bit kernels (qmatmul.h): every kind's fast entry point against its reference, on every
// SIMD level this CPU has and through both algorithms (GEMV, GEMM) and the automatic choice,
// for M = 1, 2, 5, 16, 33, 130 and N, K that are not multiples of any vector width.
//  - Int8 (W8A8, LLM.int8()): the same int32 sums and the same float operations after them,
//    so the outputs must be bit-identical.
//  - WeightOnly, Fp8, GGUF: the same products (exact), f32 sums in another order: within
//    1e-5 * sum |products| (see matmul_test.cpp for why that bound is wide for the order and
//    narrow for any wrong product).
//  - Activation quantization (Fp8 e4m3, GGUF Q8_0) is checked bit-exactly through identity-like
//    weights, where each output is one product and no sum can round.
#include "kernels/qmatmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "formats/nf4.h"
#include "kernels/kernel_test_util.h"

namespace qs::kernels {
namespace {

using testing::available_levels;
using testing::level_name;
using testing::ScopedLevel;

constexpr int64_t kMs[] = {1, 2, 5, 16, 33, 130};
constexpr MatmulPath kPaths[] = {MatmulPath::Auto, MatmulPath::Gemv, MatmulPath::Gemm};

const char* path_name(MatmulPath p) { return p == MatmulPath::Auto ? "auto" : p == MatmulPath::Gemv ? "gemv" : "gemm"; }

std::vector<float> random_x(Rng& rng, int64_t M, int64_t K, double scale = 1.0) {
  std::vector<float> x(static_cast<size_t>(M * K));
  for (auto& v : x) v = static_cast<float>(rng.normal() * scale);
  return x;
}

// Compares outputs of a run with the reference: bit-identical when `exact`, else within
// 1e-5 * abs_sum. Reports the first few mismatches.
void expect_matches(const std::vector<float>& got, const std::vector<float>& want, const std::vector<double>& abs_sum,
                    bool exact, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bool ok;
    if (exact) ok = f32_bits(got[i]) == f32_bits(want[i]) || (std::isnan(got[i]) && std::isnan(want[i]));
    else ok = std::fabs(static_cast<double>(got[i]) - want[i]) <= 1e-5 * abs_sum[i] + 1e-30;
    if (!ok && reported++ < 5)
      ADD_FAILURE() << what << ": output " << i << " got " << got[i] << " want " << want[i]
                    << (exact ? "" : " tol " + std::to_string(1e-5 * abs_sum[i]));
  }
}

// Runs `fast` on every level and path for one problem and compares with `ref`.
void check_levels_and_paths(int64_t M, int64_t N, const std::function<void(float*, ThreadPool&, MatmulPath)>& fast,
                            const std::vector<float>& ref, const std::vector<double>& abs_sum, bool exact,
                            const std::string& what) {
  ThreadPool pool(2);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (MatmulPath path : kPaths) {
      std::vector<float> y(static_cast<size_t>(M * N), std::numeric_limits<float>::quiet_NaN());
      fast(y.data(), pool, path);
      expect_matches(y, ref, abs_sum, exact, what + " " + level_name(level) + " " + path_name(path));
    }
  }
}

// ---- WeightOnly ------------------------------------------------------------------------------

struct WoProblem {
  int64_t M = 0, N = 0, K = 0, group = 0;
  int bits = 4;
  bool asym = false, lut = false, flat = false;
  std::vector<float> x, scales, table, bias;
  std::vector<uint8_t> raw, codes, hi, zeros;  // raw: one unsigned code per weight [N][K]

  int64_t n_scales() const { return flat ? (N * K + group - 1) / group : N * (K / group); }
  int64_t scale_index(int64_t n, int64_t k) const { return flat ? (n * K + k) / group : n * (K / group) + k / group; }
  float weight(int64_t n, int64_t k) const {
    const int64_t g = scale_index(n, k);
    const int c = raw[n * K + k];
    const float v = lut ? table[c] : static_cast<float>(c - (asym ? zeros[g] : 1 << (bits - 1)));
    return bf16_to_f32(f32_to_bf16(v * scales[g]));
  }
  WeightOnlyArgs args(float* y) const {
    WeightOnlyArgs a;
    a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y, a.bias = bias.data();
    a.bits = bits, a.codes = codes.data(), a.codes_hi = bits == 3 ? hi.data() : nullptr;
    a.group = group, a.scales = scales.data(), a.zeros = asym ? zeros.data() : nullptr;
    a.lut = lut ? table.data() : nullptr, a.flat_groups = flat;
    return a;
  }
};

WoProblem make_wo(int64_t M, int64_t N, int64_t K, int bits, int64_t group, bool asym, bool lut, bool flat,
                  uint64_t seed) {
  WoProblem p;
  p.M = M, p.N = N, p.K = K, p.bits = bits, p.group = group, p.asym = asym, p.lut = lut, p.flat = flat;
  Rng rng(seed);
  p.x = random_x(rng, M, K);
  p.raw.resize(static_cast<size_t>(N * K));
  for (auto& c : p.raw) c = static_cast<uint8_t>(rng.below(uint64_t{1} << bits));
  p.scales.resize(static_cast<size_t>(p.n_scales()));
  for (auto& s : p.scales) s = static_cast<float>(0.01 * (0.5 + rng.uniform()));
  if (asym) {
    p.zeros.resize(p.scales.size());
    for (auto& z : p.zeros) z = static_cast<uint8_t>(rng.below(uint64_t{1} << bits));
  }
  if (lut) {
    const auto& nf4 = formats::bnb4_codebook(formats::Bnb4Type::NF4);
    p.table.assign(nf4.begin(), nf4.end());
  }
  p.bias.resize(static_cast<size_t>(N));
  for (auto& b : p.bias) b = static_cast<float>(rng.normal());
  // Kernel layout of qmatmul.h, packed here independently of the layers' packer.
  const int64_t row = code_row_bytes(bits, K), hrow = hi_plane_row_bytes(K);
  p.codes.assign(static_cast<size_t>(N * row), 0);
  if (bits == 3) p.hi.assign(static_cast<size_t>(N * hrow), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const uint8_t c = p.raw[n * K + k];
      if (bits == 8) {
        p.codes[n * row + k] = c;
      } else if (bits == 4) {
        p.codes[n * row + k / 2] |= static_cast<uint8_t>(c << (4 * (k % 2)));
      } else {
        p.codes[n * row + k / 4] |= static_cast<uint8_t>((c & 3) << (2 * (k % 4)));
        p.hi[n * hrow + k / 8] |= static_cast<uint8_t>((c >> 2) << (k % 8));
      }
    }
  return p;
}

void check_wo(const WoProblem& p, const std::string& what) {
  std::vector<float> ref(static_cast<size_t>(p.M * p.N));
  matmul_weight_only_reference(p.args(ref.data()));
  std::vector<double> abs_sum(ref.size());
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t n = 0; n < p.N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < p.K; ++k)
        s += std::fabs(static_cast<double>(bf16_to_f32(f32_to_bf16(p.x[m * p.K + k]))) * p.weight(n, k));
      abs_sum[m * p.N + n] = s;
    }
  check_levels_and_paths(
      p.M, p.N, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_weight_only(p.args(y), pool, path); }, ref,
      abs_sum, false, what);
}

struct WoConfig {
  int bits;
  int64_t K, group;  // group 0: K (one per row)
  bool asym, lut, flat;
};

TEST(QMatmul, WeightOnlyMatchesReference) {
  const WoConfig configs[] = {
      // 4-bit: one group per row (K not a multiple of 64), groups of 128/64 (W4A16), 32 (MXFP4
      // layout, K with a partial 64-block), 16 (NVFP4), lookup tables, bitsandbytes flat blocks.
      {4, 202, 0, false, false, false},
      {4, 256, 128, false, false, false},
      {4, 256, 64, true, false, false},
      {4, 192, 64, true, false, false},   // 128-blocks with groups of 64: a last block of one group
      {4, 330, 0, false, true, false},    // lookup table, one group, a partial 128-block
      {4, 96, 32, false, true, false},
      {4, 80, 16, false, true, false},
      {4, 192, 16, true, false, false},
      {4, 128, 64, false, true, true},
      {4, 144, 48, true, false, false},  // no fast kernel for groups of 48: portable code
      // 3-bit: any K with one group, groups of 128/64/32.
      {3, 131, 0, false, false, false},
      {3, 384, 128, true, false, false},
      {3, 192, 64, false, false, false},
      {3, 160, 32, true, false, false},
      // 8-bit: one group (K odd), groups of 32 and 16.
      {8, 77, 0, false, false, false},
      {8, 96, 32, true, false, false},
      {8, 48, 16, false, false, false},
  };
  uint64_t seed = 1;
  for (const WoConfig& c : configs)
    for (int64_t M : kMs) {
      const int64_t N = M == 130 ? 37 : 70;
      const int64_t group = c.group ? c.group : c.K;
      // Appended piece by piece: "literal" + std::string trips GCC 12's -Wrestrict (a false positive).
      std::string what = std::string("w") + std::to_string(c.bits);
      what += " K=" + std::to_string(c.K);
      what += " g=" + std::to_string(group);
      what += c.asym ? " asym" : "";
      what += c.lut ? " lut" : "";
      what += c.flat ? " flat" : "";
      what += " M=" + std::to_string(M);
      check_wo(make_wo(M, N, c.K, c.bits, group, c.asym, c.lut, c.flat, seed++), what);
    }
}

TEST(QMatmul, WeightOnlyFlatBlocksStraddlingRows) {
  // bitsandbytes blocks run over the flattened matrix: with K = 100 and blocks of 64, blocks
  // span two rows (the entry point runs the reference for that layout).
  check_wo(make_wo(3, 9, 100, 4, 64, false, true, true, 5), "flat straddling");
}

TEST(QMatmul, WeightOnlyManyRowsAndGroups) {
  // Several GEMV chunks per thread and several GEMM K blocks (kc = 512 values).
  check_wo(make_wo(3, 300, 1536, 4, 128, true, false, false, 9), "w4 large");
  check_wo(make_wo(40, 70, 1536, 3, 128, false, false, false, 10), "w3 large");
  check_wo(make_wo(20, 70, 1100, 8, 1100, false, false, false, 11), "w8 large");
}

// ---- Int8 ------------------------------------------------------------------------------------

struct Int8Problem {
  int64_t M = 0, N = 0, K = 0;
  std::vector<float> x, w_scale, bias;
  std::vector<int8_t> w;
  std::vector<int32_t> row_sums;
  float static_scale = 0, threshold = 0;
  bool give_sums = true;
  Int8Args args(float* y) const {
    Int8Args a;
    a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y, a.bias = bias.data();
    a.w = w.data(), a.w_scale = w_scale.data(), a.w_row_sums = give_sums ? row_sums.data() : nullptr;
    a.static_x_scale = static_scale, a.outlier_threshold = threshold;
    return a;
  }
};

Int8Problem make_int8(int64_t M, int64_t N, int64_t K, uint64_t seed) {
  Int8Problem p;
  p.M = M, p.N = N, p.K = K;
  Rng rng(seed);
  p.x = random_x(rng, M, K);
  p.w.resize(static_cast<size_t>(N * K));
  for (auto& v : p.w) v = static_cast<int8_t>(static_cast<int>(rng.below(255)) - 127);
  p.row_sums.assign(static_cast<size_t>(N), 0);
  for (int64_t i = 0; i < N * K; ++i) p.row_sums[i / K] += p.w[i];
  p.w_scale.resize(static_cast<size_t>(N));
  for (auto& s : p.w_scale) s = static_cast<float>(0.001 * (0.5 + rng.uniform()));
  p.bias.resize(static_cast<size_t>(N));
  for (auto& b : p.bias) b = static_cast<float>(rng.normal());
  return p;
}

void check_int8(const Int8Problem& p, const std::string& what) {
  std::vector<float> ref(static_cast<size_t>(p.M * p.N));
  matmul_int8_reference(p.args(ref.data()));
  check_levels_and_paths(
      p.M, p.N, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_int8(p.args(y), pool, path); }, ref, {}, true,
      what);
}

TEST(QMatmul, Int8IsBitExact) {
  uint64_t seed = 100;
  for (int64_t K : {77, 300})
    for (int64_t M : kMs) {
      Int8Problem p = make_int8(M, M == 130 ? 37 : 70, K, seed++);
      const std::string base = "int8 K=" + std::to_string(K) + " M=" + std::to_string(M);
      check_int8(p, base);
      p.give_sums = false;  // row sums computed by the kernels
      check_int8(p, base + " no row sums");
      p.give_sums = true;
      p.static_scale = 0.02f;  // static per-tensor scale: values beyond 127 * s clamp
      check_int8(p, base + " static");
    }
}

TEST(QMatmul, LlmInt8IsBitExact) {
  uint64_t seed = 200;
  for (int64_t M : kMs) {
    Int8Problem p = make_int8(M, 70, 131, seed++);
    // A few outlier columns (one row suffices to make a column an outlier), one at a 16-lane
    // boundary, one in the tail.
    for (int64_t k : {3, 16, 64, 130}) p.x[((k * 7) % M) * p.K + k] = (k % 2 ? -1.0f : 1.0f) * (7.0f + k);
    p.threshold = 6.0f;
    check_int8(p, "llm.int8 M=" + std::to_string(M));
    p.threshold = 1e9f;  // decomposition on, no outliers
    check_int8(p, "llm.int8 none M=" + std::to_string(M));
  }
}

TEST(QMatmul, Int8ShortAndOddK) {
  // K below one 32-byte step, and W codes of -128 (the AVX2 sign trick takes |w| as unsigned).
  uint64_t seed = 150;
  for (int64_t K : {1, 13, 32, 33})
    for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{19}}) {
      Int8Problem p = make_int8(M, 9, K, seed++);
      for (int64_t i = 0; i < p.N * p.K; i += 3) p.w[i] = -128;
      p.row_sums.assign(static_cast<size_t>(p.N), 0);
      for (int64_t i = 0; i < p.N * p.K; ++i) p.row_sums[i / p.K] += p.w[i];
      check_int8(p, "int8 K=" + std::to_string(K) + " M=" + std::to_string(M));
    }
}

TEST(QMatmul, Int8ManyKBlocks) {
  // K over several GEMM K blocks (1024 codes each): int32 partial sums carried in y.
  Int8Problem p = make_int8(31, 45, 4100, 7);
  check_int8(p, "int8 K=4100");
}

// ---- Fp8 -------------------------------------------------------------------------------------

struct Fp8Problem {
  int64_t M = 0, N = 0, K = 0;
  std::vector<float> x, w_scale, bias;
  std::vector<uint8_t> w;
  Fp8Args::Act act = Fp8Args::Act::DynamicPerToken;
  float static_scale = 0;
  Fp8Args args(float* y) const {
    Fp8Args a;
    a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y, a.bias = bias.data();
    a.w = w.data(), a.w_scale = w_scale.data(), a.act = act, a.static_x_scale = static_scale;
    return a;
  }
};

Fp8Problem make_fp8(int64_t M, int64_t N, int64_t K, uint64_t seed) {
  Fp8Problem p;
  p.M = M, p.N = N, p.K = K;
  Rng rng(seed);
  p.x = random_x(rng, M, K, 3.0);
  p.w.resize(static_cast<size_t>(N * K));
  for (auto& c : p.w) {
    do c = static_cast<uint8_t>(rng.below(256));
    while ((c & 0x7f) == 0x7f);  // no NaN weights here (NaN has its own test)
  }
  p.w_scale.resize(static_cast<size_t>(N));
  for (auto& s : p.w_scale) s = static_cast<float>(0.01 * (0.5 + rng.uniform()));
  p.bias.resize(static_cast<size_t>(N));
  for (auto& b : p.bias) b = static_cast<float>(rng.normal());
  return p;
}

void check_fp8(const Fp8Problem& p, const std::string& what) {
  std::vector<float> ref(static_cast<size_t>(p.M * p.N));
  matmul_fp8_reference(p.args(ref.data()));
  std::vector<double> abs_sum(ref.size());
  for (int64_t m = 0; m < p.M; ++m) {
    const float* x = p.x.data() + m * p.K;
    for (int64_t n = 0; n < p.N; ++n) {
      double s = 0;  // |x| bounds |x_q * s_x| up to the e4m3 rounding (< 7%)
      for (int64_t k = 0; k < p.K; ++k) s += 1.07 * std::fabs(x[k] * formats::fp8_e4m3_to_f32(p.w[n * p.K + k]));
      abs_sum[m * p.N + n] = s * p.w_scale[n];
    }
  }
  check_levels_and_paths(
      p.M, p.N, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_fp8(p.args(y), pool, path); }, ref, abs_sum,
      false, what);
}

TEST(QMatmul, Fp8MatchesReference) {
  uint64_t seed = 300;
  for (int64_t K : {45, 256})
    for (int64_t M : kMs) {
      Fp8Problem p = make_fp8(M, M == 130 ? 37 : 70, K, seed++);
      const std::string base = "fp8 K=" + std::to_string(K) + " M=" + std::to_string(M);
      check_fp8(p, base + " dynamic");
      p.act = Fp8Args::Act::StaticPerTensor;
      p.static_scale = 0.004f;  // |x| / s beyond 448 saturates
      check_fp8(p, base + " static");
      p.act = Fp8Args::Act::Bf16;
      check_fp8(p, base + " bf16");
    }
  check_fp8(make_fp8(20, 50, 1300, 9), "fp8 K=1300");
  for (int64_t K : {5, 31, 33}) check_fp8(make_fp8(7, 11, K, 10 + K), "fp8 K=" + std::to_string(K));
  check_fp8(make_fp8(9, 21, 2200, 11), "fp8 K=2200");  // several GEMM K blocks, the last one short
  Fp8Problem big = make_fp8(3, 20, 70, 12);
  big.act = Fp8Args::Act::Bf16;
  big.x[75] = 1e35f;  // beyond 2^100: the AVX2 GEMV keeps x unscaled
  check_fp8(big, "fp8 bf16 large x");
}

// y[m][n] = x_q[m][n] * s_x exactly when W is the identity (code 1.0, scale 1): the activation
// quantization of every kernel against formats::f32_to_fp8_e4m3, on values that hit every
// rounding case (ties, subnormals, the 448 boundary, infinities, NaN, signed zero).
TEST(QMatmul, Fp8ActivationQuantizationIsExact) {
  const int64_t K = 40, M = 6;
  Fp8Problem p;
  p.M = M, p.N = K, p.K = K;
  p.w.assign(static_cast<size_t>(K * K), 0);
  for (int64_t i = 0; i < K; ++i) p.w[i * K + i] = 0x38;  // 1.0
  p.w_scale.assign(static_cast<size_t>(K), 1.0f);
  p.bias.assign(static_cast<size_t>(K), 0.0f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {0.0f,   -0.0f,     1.0f,     1.0625f,  1.1875f, 448.0f,  464.0f,    479.9f,
                            480.0f, -500.0f,   1e30f,    -inf,     inf,     nan,     0.015625f, 0.0156249f,
                            1e-3f,  0.000977f, 0.00293f, -0.0029f, 1e-40f, 3.0e-3f, 2.5f,      -2.75f};
  Rng rng(3);
  p.x.resize(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < M * K; ++i) p.x[i] = i < 24 ? specials[i] : static_cast<float>(rng.normal() * std::pow(2.0, rng.below(20) - 12.0));
  for (auto act : {Fp8Args::Act::StaticPerTensor, Fp8Args::Act::DynamicPerToken}) {
    p.act = act, p.static_scale = 1.0f;
    std::vector<float> ref(static_cast<size_t>(M * K));
    matmul_fp8_reference(p.args(ref.data()));
    check_levels_and_paths(
        M, K, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_fp8(p.args(y), pool, path); }, ref, {}, true,
        act == Fp8Args::Act::StaticPerTensor ? "fp8 identity static" : "fp8 identity dynamic");
  }
}

// Every e4m3 code (subnormals, +-0, NaN included) decodes exactly: row 2c holds code c at k = 3,
// row 2c + 1 at k = 40 (past the last whole 32-code step), x is all ones. Rows 512 + c hold
// code c everywhere (0x38 for codes that are not normal numbers): whole steps of normal codes,
// which the AVX2 GEMV decodes on a path of its own; 45 equal products sum exactly.
TEST(QMatmul, Fp8WeightDecodeIsExact) {
  const int64_t K = 45, N = 768;
  Fp8Problem p;
  p.M = 2, p.N = N, p.K = K, p.act = Fp8Args::Act::StaticPerTensor, p.static_scale = 1.0f;
  p.x.assign(static_cast<size_t>(2 * K), 1.0f);
  p.w.assign(static_cast<size_t>(N * K), 0);
  for (int64_t c = 0; c < 256; ++c) {
    p.w[2 * c * K + 3] = static_cast<uint8_t>(c);
    p.w[(2 * c + 1) * K + 40] = static_cast<uint8_t>(c);
    const bool normal = (c & 0x78) != 0 && (c & 0x7f) != 0x7f;
    for (int64_t k = 0; k < K; ++k) p.w[(512 + c) * K + k] = normal ? static_cast<uint8_t>(c) : uint8_t{0x38};
  }
  p.w_scale.assign(static_cast<size_t>(N), 1.0f);
  p.bias.assign(static_cast<size_t>(N), 0.0f);
  std::vector<float> ref(static_cast<size_t>(2 * N));
  matmul_fp8_reference(p.args(ref.data()));
  check_levels_and_paths(
      2, N, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_fp8(p.args(y), pool, path); }, ref, {}, true,
      "fp8 decode");
}

TEST(QMatmul, Fp8NanWeightGivesNan) {
  // Both NaN codes, one in the K tail (K = 70 is not a multiple of 32).
  Fp8Problem p = make_fp8(2, 20, 70, 4);
  p.w[5 * 70 + 17] = 0x7f;
  p.w[9 * 70 + 68] = 0xff;
  ThreadPool pool(2);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (MatmulPath path : kPaths) {
      std::vector<float> y(40);
      matmul_fp8(p.args(y.data()), pool, path);
      EXPECT_TRUE(std::isnan(y[5]) && std::isnan(y[25])) << level_name(level) << " " << path_name(path);
      EXPECT_TRUE(std::isnan(y[9]) && std::isnan(y[29])) << level_name(level) << " " << path_name(path);
      for (int n : {4, 6, 8, 10, 19}) EXPECT_FALSE(std::isnan(y[n])) << level_name(level) << " " << path_name(path);
    }
  }
}

// ---- GGUF ------------------------------------------------------------------------------------

struct GgufProblem {
  int64_t M = 0, N = 0, K = 0;
  bool q4 = false;
  std::vector<float> x, bias;
  std::vector<uint8_t> blocks;
  GgufArgs args(float* y) const {
    GgufArgs a;
    a.M = M, a.N = N, a.K = K, a.x = x.data(), a.y = y, a.bias = bias.data(), a.blocks = blocks.data(), a.q4_0 = q4;
    return a;
  }
  float weight(int64_t n, int64_t k) const {
    const int64_t b = (n * K + k) / 32, j = k % 32;
    if (q4) {
      const auto& blk = reinterpret_cast<const formats::BlockQ4_0*>(blocks.data())[b];
      return static_cast<float>((j < 16 ? blk.qs[j] & 15 : blk.qs[j - 16] >> 4) - 8) * f16_to_f32(blk.d);
    }
    const auto& blk = reinterpret_cast<const formats::BlockQ8_0*>(blocks.data())[b];
    return static_cast<float>(blk.qs[j]) * f16_to_f32(blk.d);
  }
};

GgufProblem make_gguf(int64_t M, int64_t N, int64_t K, bool q4, uint64_t seed) {
  GgufProblem p;
  p.M = M, p.N = N, p.K = K, p.q4 = q4;
  Rng rng(seed);
  p.x = random_x(rng, M, K);
  const std::vector<float> w = random_x(rng, N, K, 0.05);
  if (q4) {
    const auto b = formats::quantize_q4_0(w, N, K, "w");
    p.blocks.resize(b.size() * sizeof(b[0]));
    std::memcpy(p.blocks.data(), b.data(), p.blocks.size());
  } else {
    const auto b = formats::quantize_q8_0(w, N, K, "w");
    p.blocks.resize(b.size() * sizeof(b[0]));
    std::memcpy(p.blocks.data(), b.data(), p.blocks.size());
  }
  p.bias.resize(static_cast<size_t>(N));
  for (auto& v : p.bias) v = static_cast<float>(rng.normal());
  return p;
}

void check_gguf(const GgufProblem& p, const std::string& what) {
  std::vector<float> ref(static_cast<size_t>(p.M * p.N));
  matmul_gguf_reference(p.args(ref.data()));
  std::vector<double> abs_sum(ref.size());
  std::vector<formats::BlockQ8_0> xb(static_cast<size_t>(p.K / 32));
  std::vector<float> xq(static_cast<size_t>(p.K));
  for (int64_t m = 0; m < p.M; ++m) {
    formats::quantize_row_q8_0({p.x.data() + m * p.K, static_cast<size_t>(p.K)}, xb);
    formats::dequantize_row_q8_0(xb, xq);
    for (int64_t n = 0; n < p.N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < p.K; ++k) s += std::fabs(xq[k] * p.weight(n, k));
      abs_sum[m * p.N + n] = s;
    }
  }
  check_levels_and_paths(
      p.M, p.N, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_gguf(p.args(y), pool, path); }, ref, abs_sum,
      false, what);
}

TEST(QMatmul, GgufMatchesReference) {
  uint64_t seed = 400;
  for (bool q4 : {false, true})
    for (int64_t K : {96, 256})  // 3 blocks (an odd number), 8 blocks
      for (int64_t M : kMs)
        check_gguf(make_gguf(M, M == 130 ? 37 : 70, K, q4, seed++),
                   std::string(q4 ? "q4_0" : "q8_0") + " K=" + std::to_string(K) + " M=" + std::to_string(M));
  check_gguf(make_gguf(20, 50, 2080, true, 9), "q4_0 K=2080");
}

// With W = identity (one block per row holding code 1 at the diagonal, d = 1) each output is
// one code of x times its block scale: the kernels' Q8_0 quantization of x, bit for bit.
TEST(QMatmul, GgufActivationQuantizationIsExact) {
  const int64_t K = 96, M = 5;
  GgufProblem p;
  p.M = M, p.N = K, p.K = K;
  p.blocks.assign(static_cast<size_t>(K * (K / 32)) * sizeof(formats::BlockQ8_0), 0);
  auto* blocks = reinterpret_cast<formats::BlockQ8_0*>(p.blocks.data());
  for (int64_t n = 0; n < K; ++n) {
    for (int64_t b = 0; b < K / 32; ++b) blocks[n * (K / 32) + b].d = f32_to_f16(1.0f);
    blocks[n * (K / 32) + n / 32].qs[n % 32] = 1;
  }
  p.bias.assign(static_cast<size_t>(K), 0.0f);
  Rng rng(8);
  p.x = random_x(rng, M, K);
  // Ties of round-half-away: 127 * 0.5 / 1.0 hits x * (1 / d) = k + 0.5 exactly.
  for (int64_t k = 0; k < 32; ++k) p.x[k] = (k == 0 ? 127.0f : static_cast<float>(k % 9) - 4.5f);
  for (int64_t k = 32; k < 64; ++k) p.x[k] = 0.0f;  // an all-zero block: d = 0
  std::vector<float> ref(static_cast<size_t>(M * K));
  matmul_gguf_reference(p.args(ref.data()));
  check_levels_and_paths(
      M, K, [&](float* y, ThreadPool& pool, MatmulPath path) { matmul_gguf(p.args(y), pool, path); }, ref, {}, true,
      "gguf identity");
}

// ---- Arguments -------------------------------------------------------------------------------

TEST(QMatmul, EmptyKGivesBiasAndBadArgumentsThrow) {
  ThreadPool pool(1);
  std::vector<float> y(6, 7.0f), bias = {1, 2, 3};
  GgufArgs g;
  g.M = 2, g.N = 3, g.K = 0, g.y = y.data(), g.bias = bias.data();
  matmul_gguf(g, pool);
  EXPECT_EQ(y, (std::vector<float>{1, 2, 3, 1, 2, 3}));
  std::vector<float> x(40);
  std::vector<uint8_t> blocks(3 * 34);
  g.K = 40, g.x = x.data(), g.blocks = blocks.data();
  EXPECT_THROW(matmul_gguf(g, pool), Error);  // K not a multiple of 32
  WeightOnlyArgs w;
  w.M = 1, w.N = 1, w.K = 8, w.x = x.data(), w.y = y.data(), w.bits = 5;
  EXPECT_THROW(matmul_weight_only(w, pool), Error);
  w.bits = 4, w.codes = blocks.data(), w.scales = x.data(), w.group = 3;
  EXPECT_THROW(matmul_weight_only(w, pool), Error);  // group does not divide K
}

}  // namespace
}  // namespace qs::kernels
