// A persistent pool of worker threads for data-parallel kernels. The calling thread takes
// part as thread 0, so a pool of N threads uses N cores. Workers spin briefly between jobs
// (decode runs thousands of tiny parallel steps a second) and then sleep.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace qs {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(thread_index, n_threads) once on every thread and returns when all are done.
  // Called from inside a job (nested), it runs fn(0, 1) on the calling thread.
  template <class F>
  void run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_impl(
        [](void* ctx, int t, int n) { (*static_cast<Fn*>(ctx))(t, n); }, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into one contiguous range per thread, boundaries multiples of `align`,
  // and calls fn(begin, end) for each non-empty range.
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t align = 1) {
    if (n <= 0) return;
    run([&](int t, int nt) {
      int64_t blocks = (n + align - 1) / align;
      int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
      int64_t begin = b0 * align, end = b1 * align < n ? b1 * align : n;
      if (begin < end) fn(begin, end);
    });
  }

 private:
  using JobFn = void (*)(void*, int, int);
  void run_impl(JobFn fn, void* ctx);
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  JobFn job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
};

// The process-wide pool used by the model and kernels. Its size is set once from --threads
// (default: all online cores) before first use.
ThreadPool& default_pool();
void set_default_threads(int n_threads);
int hardware_threads();

}  // namespace qs
