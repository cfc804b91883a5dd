// Row-wise / element-wise ops at every SIMD level against the portable versions (the
// references) and against double-precision truth; the vector exp against libm; the bulk
// conversions bit-exact against core/dtype.h over every 16-bit pattern.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernel_test_util.h"
#include "kernels/ops_internal.h"

namespace qs::kernels {
namespace {

using testing::available_levels;
using testing::random_floats;
using testing::ScopedLevel;
using testing::ulp_distance;

const int64_t kLengths[] = {1, 2, 15, 16, 17, 31, 33, 100, 2048, 2051};

#if QS_HAVE_X86
bool have_level(SimdLevel want) {
  for (SimdLevel l : available_levels())
    if (l == want) return true;
  return false;
}

// exp(x) correctly rounded to f32: libm's double exp is accurate to well under a double ulp,
// so rounding it to float is the correctly rounded result except in astronomically rare ties.
float exp_truth(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }

using ExpFn = void (*)(const float*, float*, int64_t);

void check_exp_range(ExpFn exp_fn) {
  // Every 211th float from -104 to 89 (about 10 million values, results from 0 through the
  // denormals to +inf), tiny arguments of both signs included.
  std::vector<float> xs;
  for (uint64_t u = 0; u <= f32_bits(89.0f); u += 211) xs.push_back(f32_from_bits(static_cast<uint32_t>(u)));
  for (uint64_t u = 0x80000000u; u <= f32_bits(-104.0f); u += 211)
    xs.push_back(f32_from_bits(static_cast<uint32_t>(u)));
  std::vector<float> got(xs.size());
  exp_fn(xs.data(), got.data(), static_cast<int64_t>(xs.size()));
  int64_t worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t d = ulp_distance(got[i], exp_truth(xs[i]));
    if (d > worst) worst = d, worst_x = xs[i];
  }
  EXPECT_LE(worst, 2) << "worst at x=" << worst_x;
  ::testing::Test::RecordProperty("max_ulp", static_cast<int>(worst));
}

void check_exp_special_values(ExpFn exp_fn) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> xs = {
      0.0f, -0.0f,  1.0f,    -1.0f,   88.72f,   88.73f, 100.0f,
      inf,  -87.3f, -103.0f, -104.0f, -1000.0f, -inf,   std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> got(xs.size());
  exp_fn(xs.data(), got.data(), static_cast<int64_t>(xs.size()));
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 1.0f);
  EXPECT_LE(ulp_distance(got[2], exp_truth(1.0f)), 1);
  EXPECT_LE(ulp_distance(got[4], exp_truth(88.72f)), 2);
  EXPECT_EQ(got[5], inf);  // exp(88.73) > FLT_MAX
  EXPECT_EQ(got[6], inf);
  EXPECT_EQ(got[7], inf);
  EXPECT_LE(ulp_distance(got[8], exp_truth(-87.3f)), 2);
  EXPECT_LE(ulp_distance(got[9], exp_truth(-103.0f)), 2);  // denormal result
  EXPECT_EQ(got[11], 0.0f);
  EXPECT_EQ(got[12], 0.0f);
  EXPECT_TRUE(std::isnan(got[13]));
}

TEST(VectorExp, WithinTwoUlpOverTheWholeRange) {
  if (!have_level(SimdLevel::Avx512)) GTEST_SKIP() << "no AVX-512";
  check_exp_range(detail::exp_avx512);
}

TEST(VectorExp, SpecialValues) {
  if (!have_level(SimdLevel::Avx512)) GTEST_SKIP() << "no AVX-512";
  check_exp_special_values(detail::exp_avx512);
}

TEST(VectorExp, Avx2WithinTwoUlpOverTheWholeRange) {
  if (!have_level(SimdLevel::Avx2)) GTEST_SKIP() << "no AVX2";
  check_exp_range(detail::exp_avx2);
}

TEST(VectorExp, Avx2SpecialValues) {
  if (!have_level(SimdLevel::Avx2)) GTEST_SKIP() << "no AVX2";
  check_exp_special_values(detail::exp_avx2);
}

// Same reduction and polynomial, and 2^n applied as one exact and one rounding product instead
// of VSCALEFPS: the two vector exps agree bit for bit, so both levels round softmax alike.
TEST(VectorExp, Avx2EqualsAvx512BitForBit) {
  if (!have_level(SimdLevel::Avx512)) GTEST_SKIP() << "no AVX-512";
  std::vector<float> xs;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) xs.push_back(f32_from_bits(static_cast<uint32_t>(u)));
  std::vector<float> a(xs.size()), b(xs.size());
  detail::exp_avx2(xs.data(), a.data(), static_cast<int64_t>(xs.size()));
  detail::exp_avx512(xs.data(), b.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    if (std::isnan(xs[i])) continue;  // NaN payloads may differ
    ASSERT_EQ(f32_bits(a[i]), f32_bits(b[i])) << "x=" << xs[i];
  }
}
#endif

TEST(Conversions, EveryHalfPatternBitExact) {
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    std::vector<float> out(65536 + 3);
    bf16_to_f32(all.data(), out.data(), 65536);
    for (int i = 0; i < 65536; ++i) ASSERT_EQ(f32_bits(out[i]), f32_bits(qs::bf16_to_f32(all[i]))) << i;
    // Odd length: the tail must be converted and nothing after it written.
    out.assign(out.size(), 7.0f);
    f16_to_f32(all.data(), out.data(), 65533);
    for (int i = 0; i < 65533; ++i) {
      const float want = qs::f16_to_f32(all[i]);
      if (std::isnan(want))
        ASSERT_TRUE(std::isnan(out[i])) << i;
      else
        ASSERT_EQ(f32_bits(out[i]), f32_bits(want)) << i;
    }
    EXPECT_EQ(out[65533], 7.0f);
  }
}

TEST(Conversions, F32ToBf16RoundsToNearestEvenLikeScalar) {
  Rng rng(3);
  std::vector<float> in;
  for (int i = 0; i < 200000; ++i) in.push_back(f32_from_bits(static_cast<uint32_t>(rng.next_u64())));
  // Ties, near-ties, denormals, infinities, NaNs (signalling and quiet), the largest values.
  for (uint32_t u : {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x00008000u, 0x00018000u, 0x00000001u,
                     0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0xffffffffu, 0x7f7fffffu, 0x7f7f8000u})
    in.push_back(f32_from_bits(u));
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    std::vector<uint16_t> out(in.size() + 1, 0xabcd);
    f32_to_bf16(in.data(), out.data(), static_cast<int64_t>(in.size()));
    for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], qs::f32_to_bf16(in[i])) << std::hex << f32_bits(in[i]);
    EXPECT_EQ(out.back(), 0xabcd);
  }
}

TEST(RmsNorm, MatchesPortableVersion) {
  Rng rng(5);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int64_t dim : kLengths)
      for (int64_t rows : {1, 3}) {
        const auto x = random_floats(rng, rows * dim, 3.0);
        const auto w = random_floats(rng, dim);
        std::vector<float> want(x.size()), got(x.size());
        detail::rmsnorm_generic(x.data(), w.data(), want.data(), rows, dim, 1e-5f);
        rmsnorm(x.data(), w.data(), got.data(), rows, dim, 1e-5f);
        // Both sum the squares in double (the order differs); the f32 scale they derive
        // from it is the same but for a rare last-bit difference: at most 1 ulp apart.
        for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(ulp_distance(got[i], want[i]), 1) << dim << " " << i;
        // In place (y aliases x).
        auto inplace = x;
        rmsnorm(inplace.data(), w.data(), inplace.data(), rows, dim, 1e-5f);
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(f32_bits(inplace[i]), f32_bits(got[i]));
      }
  }
}

TEST(Rope, BothStylesMatchPortableVersionExactly) {
  Rng rng(6);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int head_dim : {2, 6, 32, 64, 80, 128})
      for (RopeStyle style : {RopeStyle::Half, RopeStyle::Interleaved}) {
        const int64_t tokens = 5;
        const int heads = 3;
        const auto x = random_floats(rng, tokens * heads * head_dim);
        std::vector<float> c(tokens * head_dim / 2), s(c.size());
        for (size_t i = 0; i < c.size(); ++i) {
          const double angle = rng.uniform() * 6.283;
          c[i] = static_cast<float>(std::cos(angle));
          s[i] = static_cast<float>(std::sin(angle));
        }
        auto want = x, got = x;
        detail::rope_generic(want.data(), tokens, heads, head_dim, c.data(), s.data(), style);
        rope(got.data(), tokens, heads, head_dim, c.data(), s.data(), style);
        // Same operations in the same order (two products, one add, nothing fused): identical.
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_EQ(f32_bits(got[i]), f32_bits(want[i]))
              << head_dim << " style " << static_cast<int>(style) << " " << i;
      }
  }
}

TEST(Softmax, CloseToDoublePrecisionTruth) {
  Rng rng(7);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int64_t n : {1, 2, 15, 17, 100, 2051, 128256}) {
      auto x = random_floats(rng, n, 4.0);
      if (n > 3) x[n / 2] = -std::numeric_limits<float>::infinity();  // masked entry
      double mx = -INFINITY, sum = 0;
      for (float v : x) mx = std::max(mx, static_cast<double>(v));
      for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
      auto got = x;
      softmax(got.data(), n);
      // Per element: x - max is rounded in f32 (as the reference does), which moves exp by up
      // to |x - max| * 2^-24 relative; exp within 2 ulp of the truth (libm's within 1); the sum
      // exact enough in double; 1/sum and the product rounded once each: 4 ulp (4.8e-7).
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (std::isinf(x[i])) {
          ASSERT_EQ(got[i], 0.0f);
          continue;
        }
        const double want = std::exp(static_cast<double>(x[i]) - mx) / sum;
        const double rel = 6e-7 + std::fabs(x[i] - mx) * 0x1p-24;
        ASSERT_LE(std::fabs(got[i] - want), rel * want + 1e-38) << "n=" << n << " i=" << i;
        total += got[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-6 + 1e-7 * std::sqrt(static_cast<double>(n)));
    }
  }
}

TEST(LogSumExp, CloseToDoublePrecisionTruth) {
  Rng rng(8);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int64_t n : {1, 2, 17, 100, 2051, 151936}) {
      auto x = random_floats(rng, n, 5.0);
      double mx = -INFINITY, sum = 0;
      for (float v : x) mx = std::max(mx, static_cast<double>(v));
      for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
      const double want = mx + std::log(sum);
      const float got = log_sum_exp(x.data(), n);
      // Terms within 2 ulp and summed in double: log(sum) is off by < 2.4e-7 absolute;
      // adding the max rounds once more (half an ulp of the result).
      EXPECT_NEAR(got, want, 2.4e-7 + std::fabs(want) * 1.2e-7) << "n=" << n;
    }
    EXPECT_EQ(log_sum_exp(nullptr, 0), -std::numeric_limits<float>::infinity());
  }
}

TEST(SiluMul, MatchesPortableVersion) {
  Rng rng(9);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int64_t n : kLengths) {
      auto g = random_floats(rng, n, 6.0), u = random_floats(rng, n);
      if (n > 2) g[1] = -100.0f, g[2] = 90.0f;  // exp over/underflow inside
      std::vector<float> want(n), got(n + 1, 5.0f);
      detail::silu_mul_generic(g.data(), u.data(), want.data(), n);
      silu_mul(g.data(), u.data(), got.data(), n);
      // exp within 2 ulp of libm's; 1 + e, the division and the product add 1.5 ulp.
      for (int64_t i = 0; i < n; ++i) ASSERT_LE(ulp_distance(got[i], want[i]), 4) << n << " " << i << " g=" << g[i];
      EXPECT_EQ(got[n], 5.0f);
      // In place (out aliases gate).
      auto inplace = g;
      silu_mul(inplace.data(), u.data(), inplace.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_bits(inplace[i]), f32_bits(got[i]));
    }
  }
}

TEST(AddInplace, Exact) {
  Rng rng(10);
  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    for (int64_t n : kLengths) {
      auto x = random_floats(rng, n + 1);
      const auto y = random_floats(rng, n);
      const auto before = x;
      add_inplace(x.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], before[i] + y[i]);
      EXPECT_EQ(x[n], before[n]);
    }
  }
}

}  // namespace
}  // namespace qs::kernels
