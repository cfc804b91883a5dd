// attention at every SIMD level against attention_reference: prefill blocks (n_new > 1) with
// and without earlier context (pos0 > 0), decode (n_new = 1) with long contexts (key chunks
// merged across threads), GQA groups 1/2/4/8, head_dim 64/128/80 and odd sizes. The KV cache
// beyond the filled positions and the rest of each head's stride are NaN: never read.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernel_test_util.h"
#include "kernels/ops.h"

namespace qs::kernels {
namespace {

using testing::available_levels;
using testing::ScopedLevel;

struct Case {
  int64_t n_new, pos0;
  int n_heads, n_kv_heads, head_dim;
};

void check(const Case& c, ThreadPool& pool, uint64_t seed) {
  Rng rng(seed);
  const int64_t filled = c.pos0 + c.n_new;
  const int64_t kv_stride = (filled + 5) * c.head_dim;  // spare positions, poisoned
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> k(c.n_kv_heads * kv_stride, nan), v(k.size(), nan);
  for (int g = 0; g < c.n_kv_heads; ++g)
    for (int64_t i = 0; i < filled * c.head_dim; ++i) {
      k[g * kv_stride + i] = static_cast<float>(rng.normal());
      v[g * kv_stride + i] = static_cast<float>(rng.normal());
    }
  std::vector<float> q(c.n_new * c.n_heads * c.head_dim);
  for (auto& x : q) x = static_cast<float>(rng.normal() * 1.5);
  AttentionArgs a;
  a.q = q.data(), a.n_new = c.n_new, a.pos0 = c.pos0;
  a.k = k.data(), a.v = v.data(), a.kv_stride = kv_stride;
  a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> want(q.size());
  a.out = want.data();
  attention_reference(a);

  // Tolerance per output element: out = sum_p prob_p v_p. Scores differ only in the order of
  // the f32 sums of q.k (~sqrt(d) ulps of sum|q k|, times the scale: < 1e-5 absolute here),
  // which moves each probability by that much relative; the softmax and the weighted sum
  // add a few ulps of sum_p prob_p |v_p|. 2e-5 * sum_p prob_p |v_p| (+1e-6 for the score
  // shifts) covers this with margin, while a wrong, missing or unmasked key moves outputs by
  // ~prob_p |v_p|, orders of magnitude more for the context lengths tested.
  const int group = c.n_heads / c.n_kv_heads;
  std::vector<double> scale(q.size());
  for (int64_t t = 0; t < c.n_new; ++t)
    for (int h = 0; h < c.n_heads; ++h) {
      const float* qr = q.data() + (t * c.n_heads + h) * c.head_dim;
      const float* kh = k.data() + (h / group) * kv_stride;
      const float* vh = v.data() + (h / group) * kv_stride;
      const int64_t len = c.pos0 + t + 1;
      std::vector<double> s(len);
      double mx = -INFINITY, sum = 0;
      for (int64_t p = 0; p < len; ++p) {
        double d = 0;
        for (int i = 0; i < c.head_dim; ++i) d += static_cast<double>(qr[i]) * kh[p * c.head_dim + i];
        s[p] = d * a.scale;
        mx = std::max(mx, s[p]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int i = 0; i < c.head_dim; ++i) {
        double acc = 0;
        for (int64_t p = 0; p < len; ++p) acc += s[p] / sum * std::fabs(vh[p * c.head_dim + i]);
        scale[(t * c.n_heads + h) * c.head_dim + i] = acc;
      }
    }

  for (SimdLevel level : available_levels()) {
    ScopedLevel scoped(level);
    std::vector<float> got(q.size(), nan);
    a.out = got.data();
    attention(a, pool);
    int bad = 0;
    for (size_t i = 0; i < got.size() && bad < 5; ++i) {
      const double tol = 2e-5 * scale[i] + 1e-6;
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ++bad;
        ADD_FAILURE() << testing::level_name(level) << " n_new=" << c.n_new << " pos0=" << c.pos0
                      << " heads=" << c.n_heads << "/" << c.n_kv_heads << " d=" << c.head_dim << " at " << i << ": got "
                      << got[i] << " want " << want[i] << " tol " << tol;
      }
    }
  }
}

TEST(Attention, PrefillMatchesReference) {
  ThreadPool pool(2);
  uint64_t seed = 1;
  for (int head_dim : {64, 128, 80})
    for (int groups : {1, 2, 4, 8})
      for (int64_t pos0 : {0, 37})
        for (int64_t n_new : {2, 7, 70}) check({n_new, pos0, 8, 8 / groups, head_dim}, pool, seed++);
}

TEST(Attention, DecodeMatchesReference) {
  ThreadPool pool(2);
  uint64_t seed = 100;
  for (int head_dim : {64, 128, 80})
    for (int groups : {1, 4, 8})
      for (int64_t pos0 : {0, 1, 63, 64, 300, 2500}) check({1, pos0, 8, 8 / groups, head_dim}, pool, seed++);
}

TEST(Attention, OddShapes) {
  ThreadPool pool(3);
  uint64_t seed = 200;
  // Tiny and odd head sizes, a group of 7 (Qwen2.5-0.5B: 14 heads / 2 KV heads), one query
  // block that is not a multiple of the row tile, MQA (one KV head for all).
  check({5, 3, 14, 2, 64}, pool, seed++);
  check({33, 0, 14, 2, 64}, pool, seed++);
  check({1, 700, 14, 2, 64}, pool, seed++);
  check({9, 11, 4, 1, 17}, pool, seed++);
  check({3, 70, 6, 3, 1}, pool, seed++);
  check({20, 0, 2, 1, 200}, pool, seed++);
  check({130, 0, 32, 8, 64}, pool, seed++);
  // Head sizes that are not a multiple of the 8- or 16-float vectors, with key chunks.
  check({1, 900, 8, 2, 12}, pool, seed++);
  check({50, 5, 12, 3, 36}, pool, seed++);
  check({3, 600, 4, 1, 17}, pool, seed++);
  check({2, 2000, 4, 4, 72}, pool, seed++);
}

// Few queries after a long context split into key chunks (2 KV heads on 3 threads: 5 chunks
// of 256 keys): the last chunk [1024, 1027) starts after the first queries' positions
// (1020..1023), so those rows see no key in it and must not turn it into NaN.
TEST(Attention, KeyChunkWithNoVisibleKey) {
  ThreadPool pool(3);
  check({7, 1020, 4, 2, 64}, pool, 300);
  check({7, 1020, 14, 2, 80}, pool, 301);
}

TEST(Attention, RejectsBadHeads) {
  ThreadPool pool(1);
  std::vector<float> buf(64);
  AttentionArgs a;
  a.q = a.k = a.v = buf.data(), a.out = buf.data();
  a.n_new = 1, a.kv_stride = 64, a.n_heads = 3, a.n_kv_heads = 2, a.head_dim = 4, a.scale = 1;
  EXPECT_THROW(attention(a, pool), Error);
}

}  // namespace
}  // namespace qs::kernels
