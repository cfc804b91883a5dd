#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

namespace qs {
namespace {

TEST(ThreadPool, EveryThreadRunsOnce) {
  for (int n : {1, 2, 3, 4}) {
    ThreadPool pool(n);
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 200; ++rep) pool.run([&](int t, int nt) {
      EXPECT_EQ(nt, n);
      hits[t]++;
    });
    for (int t = 0; t < n; ++t) EXPECT_EQ(hits[t].load(), 200);
  }
}

TEST(ThreadPool, ParallelForCoversRangeOnceWithAlignedBoundaries) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 7, 16, 100, 1001}) {
    std::vector<int> seen(n, 0);
    pool.parallel_for(
        n,
        [&](int64_t b, int64_t e) {
          EXPECT_EQ(b % 8, 0);
          for (int64_t i = b; i < e; ++i) seen[i]++;
        },
        8);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << i;
  }
}

TEST(ThreadPool, NestedRunExecutesInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.run([&](int, int) { pool.run([&](int t, int nt) {
    EXPECT_EQ(t, 0);
    EXPECT_EQ(nt, 1);
    inner++;
  }); });
  EXPECT_EQ(inner.load(), 2);
}

}  // namespace
}  // namespace qs
