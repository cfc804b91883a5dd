// matmul: every path (GEMV, GEMM, auto) at every SIMD level this CPU has, against
// matmul_reference, on shapes that hit every tail (M, N, K not multiples of the tiles),
// with row strides, bias, and NaN poison in the stride padding (must never be read).
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul_internal.h"

namespace qs::kernels {
namespace {

using testing::available_levels;
using testing::random_floats;
using testing::ScopedLevel;

struct Problem {
  int64_t M = 0, N = 0, K = 0;
  DType dtype = DType::F32;
  int64_t pad_x = 0, pad_w = 0, pad_y = 0;  // extra elements per row (NaN-poisoned)
  bool bias = false;

  std::vector<float> x;
  std::vector<uint16_t> w16;
  std::vector<float> w32;
  std::vector<float> b;
  std::vector<float> ref;
  std::vector<double> abs_sum;  // sum over k of |x w| (after bf16 rounding of x), per output

  MatmulArgs args(float* y) const {
    MatmulArgs a;
    a.M = M, a.N = N, a.K = K;
    a.x = x.data(), a.ldx = K + pad_x;
    a.w = dtype == DType::F32 ? static_cast<const void*>(w32.data()) : static_cast<const void*>(w16.data());
    a.ldw = K + pad_w;
    a.w_dtype = dtype;
    a.y = y, a.ldy = N + pad_y;
    a.bias = bias ? b.data() : nullptr;
    return a;
  }
};

Problem make_problem(int64_t M, int64_t N, int64_t K, DType dtype, uint64_t seed, int64_t pad = 0, bool bias = false) {
  Problem p;
  p.M = M, p.N = N, p.K = K, p.dtype = dtype, p.bias = bias;
  p.pad_x = pad, p.pad_w = pad ? pad + 3 : 0, p.pad_y = pad ? pad + 1 : 0;
  Rng rng(seed);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  p.x.assign(M * (K + p.pad_x), nan);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) p.x[m * (K + p.pad_x) + k] = static_cast<float>(rng.normal());
  const int64_t ldw = K + p.pad_w;
  std::vector<float> wf(N * ldw, nan);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wf[n * ldw + k] = static_cast<float>(rng.normal() * 0.5);
  if (dtype == DType::F32) {
    p.w32 = wf;
  } else {
    p.w16.resize(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) p.w16[i] = dtype == DType::BF16 ? f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
  }
  if (bias) p.b = random_floats(rng, N);
  p.ref.assign(M * (N + p.pad_y), 0.0f);
  matmul_reference(p.args(p.ref.data()));
  p.abs_sum.assign(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        float xv = p.x[m * (K + p.pad_x) + k];
        if (dtype == DType::BF16) xv = bf16_to_f32(f32_to_bf16(xv));
        const float wv = dtype == DType::F32    ? p.w32[n * ldw + k]
                         : dtype == DType::BF16 ? bf16_to_f32(p.w16[n * ldw + k])
                                                : f16_to_f32(p.w16[n * ldw + k]);
        s += std::fabs(static_cast<double>(xv) * wv);
      }
      p.abs_sum[m * N + n] = s;
    }
  return p;
}

// Every implementation forms the same products (exact for bf16; f32-rounded for f32/f16, the
// same rounding everywhere) and differs only in the order of the f32 additions. That error is
// a random walk of about sqrt(K) * 2^-24 * sum|x w| (worst case K * 2^-24); for K <= 4096 it
// stays below 1e-5 * sum|x w| with a wide margin (observed < 2e-6), while any wrong or missing
// product moves the result by ~|x w| ~ sum|x w| / K, far more than 1e-5 * sum|x w| for the K
// used here.
void expect_matches(const Problem& p, const std::vector<float>& y, const std::string& what) {
  const int64_t ldy = p.N + p.pad_y;
  int reported = 0;
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = 0; n < ldy; ++n) {
      const float got = y[m * ldy + n];
      if (n >= p.N) {  // stride padding: untouched
        if (!std::isnan(got) && reported++ < 5) ADD_FAILURE() << what << " wrote padding at m=" << m << " n=" << n;
        continue;
      }
      const float want = p.ref[m * ldy + n];
      const double tol = 1e-5 * p.abs_sum[m * p.N + n] + 1e-30;
      if (!(std::fabs(static_cast<double>(got) - want) <= tol) && reported++ < 5)
        ADD_FAILURE() << what << " M=" << p.M << " N=" << p.N << " K=" << p.K << " m=" << m << " n=" << n << " got "
                      << got << " want " << want << " tol " << tol;
    }
  }
}

std::vector<float> poisoned_output(const Problem& p) {
  return std::vector<float>(p.M * (p.N + p.pad_y), std::numeric_limits<float>::quiet_NaN());
}

void check_all_paths(const Problem& p, ThreadPool& pool) {
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (MatmulPath path : {MatmulPath::Auto, MatmulPath::Gemv, MatmulPath::Gemm}) {
      auto y = poisoned_output(p);
      matmul(p.args(y.data()), pool, path);
      expect_matches(p, y,
                     std::string(dtype_name(p.dtype)) + " " + testing::level_name(level) + " path " +
                         std::to_string(static_cast<int>(path)));
    }
#if QS_HAVE_X86
    // On AVX512_BF16 machines also run the AVX-512 FMA path for bf16 weights (what CPUs
    // without VDPBF16PS use), so both bf16 implementations are checked here.
    if (level == SimdLevel::Avx512 && p.dtype == DType::BF16) {
      for (bool gemm : {false, true}) {
        auto y = poisoned_output(p);
        if (gemm)
          detail::gemm_avx512(p.args(y.data()), pool, false);
        else
          detail::gemv_avx512(p.args(y.data()), pool, false);
        expect_matches(p, y, std::string("bf16 avx512 without dot, gemm=") + (gemm ? "1" : "0"));
      }
    }
#endif
  }
}

TEST(Matmul, AllPathsMatchReferenceOnTailShapes) {
  ThreadPool pool(2);
  const int64_t Ms[] = {1, 2, 3, 7, 64, 513};
  const int64_t Ns[] = {1, 15, 17, 100, 257};
  const int64_t Ks[] = {1, 15, 17, 100, 257};
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t M : Ms)
      for (int64_t N : Ns)
        for (int64_t K : Ks) {
          // Keep the cross product fast: the big M only with a few N, K.
          if (M == 513 && (N < 100 || K < 100) && !(N == 17 && K == 15)) continue;
          if (M == 64 && N == 257 && K == 257) continue;
          check_all_paths(make_problem(M, N, K, dt, seed++), pool);
        }
}

TEST(Matmul, StridesAndBias) {
  ThreadPool pool(2);
  uint64_t seed = 100;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t M : {1, 5, 9, 30})
      for (int64_t NK : {33, 70}) check_all_paths(make_problem(M, NK, NK + 5, dt, seed++, 7, true), pool);
}

TEST(Matmul, LargeKUsesSeveralKBlocks) {
  // K over many of the GEMM's K blocks (256 f32 values or bf16 pairs): y accumulates.
  ThreadPool pool(2);
  for (DType dt : {DType::F32, DType::BF16}) check_all_paths(make_problem(20, 40, 4100, dt, 7, 0, true), pool);
}

TEST(Matmul, EmptyK) {
  ThreadPool pool(2);
  std::vector<float> y(6, 1.0f), bias = {1, 2, 3};
  MatmulArgs a;
  a.M = 2, a.N = 3, a.K = 0, a.y = y.data(), a.ldy = 3, a.bias = bias.data();
  matmul(a, pool);
  EXPECT_EQ(y, (std::vector<float>{1, 2, 3, 1, 2, 3}));
}

TEST(Matmul, RejectsBadArguments) {
  ThreadPool pool(1);
  std::vector<float> x(4), w(4), y(4);
  MatmulArgs a;
  a.M = 1, a.N = 1, a.K = 4, a.x = x.data(), a.ldx = 2, a.w = w.data(), a.ldw = 4, a.y = y.data(), a.ldy = 1;
  EXPECT_THROW(matmul(a, pool), Error);
  a.ldx = 4;
  a.w_dtype = DType::I8;
  EXPECT_THROW(matmul(a, pool), Error);
}

}  // namespace
}  // namespace qs::kernels
