// Internals of matmul (src/kernels only): the per-instruction-set GEMV and GEMM entry points
// that matmul.cpp dispatches to, and the small helpers they share.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/aligned.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"

namespace qs::kernels::detail {

// All entry points take validated arguments with M, N > 0 and K >= 1.
// Portable C++ (any M): W rows widened block by block, 4x4 register tiles of dot products.
void matmul_generic(const MatmulArgs& a, ThreadPool& pool);
// GEMV family: W read in place, one pass over W for up to kGemvGroupRows rows of x at a time.
void gemv_avx2(const MatmulArgs& a, ThreadPool& pool);
void gemv_avx512(const MatmulArgs& a, ThreadPool& pool, bool bf16_dot);
// GEMM family: x packed once per block, W packed panel by panel on the fly, register tiles.
void gemm_avx2(const MatmulArgs& a, ThreadPool& pool);
void gemm_avx512(const MatmulArgs& a, ThreadPool& pool, bool bf16_dot);

// Rows of x that one GEMV pass handles together (the kernels are instantiated up to this).
constexpr int kGemvGroupRows = 8;

// Splits [0, n) into chunks of `chunk` and hands them out dynamically (an atomic counter), so a
// thread slowed down by another process on its core simply takes fewer chunks.
template <class F>
void parallel_chunks(ThreadPool& pool, int64_t n, int64_t chunk, F&& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(chunk, 1);
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_chunks == 1 || pool.size() == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::atomic<int64_t> next{0};
  pool.run_dynamic([&](int, int) {
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) break;
      fn(c * chunk, std::min(n, (c + 1) * chunk));
    }
  });
}

// A chunk size giving each thread about `per_thread` chunks, rounded up to a multiple of `align`.
inline int64_t chunk_for(int64_t n, int threads, int64_t per_thread, int64_t align) {
  int64_t c = (n + threads * per_thread - 1) / (threads * per_thread);
  c = (c + align - 1) / align * align;
  return std::max<int64_t>(c, align);
}

// Per-thread scratch that only grows (kernels run thousands of times a second; no malloc churn).
// `slot` separates independent buffers used at the same time by one thread.
template <class T>
T* scratch(int slot, size_t count) {
  thread_local AlignedVector<char> buffers[4];
  auto& b = buffers[slot];
  const size_t bytes = count * sizeof(T) + 64;
  if (b.size() < bytes) {
    b.clear();
    b.shrink_to_fit();
    b.resize(bytes);
  }
  return reinterpret_cast<T*>(b.data());
}

inline const char* w_row(const MatmulArgs& a, int64_t n) {
  return static_cast<const char*>(a.w) + n * a.ldw * static_cast<int64_t>(dtype_size(a.w_dtype));
}

}  // namespace qs::kernels::detail
