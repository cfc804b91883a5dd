// A persistent pool of worker threads for data-parallel kernels. The calling thread takes
// part as thread 0, so a pool of N threads uses N cores. Workers spin briefly between jobs
// (decode runs thousands of tiny parallel steps a second) and then sleep.
//
// Two kinds of job:
//  - run(fn): fn(thread, n_threads) runs once on every thread (static splits, per-thread work).
//  - run_dynamic(fn): fn claims its work from a shared counter; a worker that has not started by
//    the time the caller finishes its own share is skipped instead of waited for, so a thread
//    descheduled by another process never stalls the call. parallel_for uses it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
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
    run_impl(trampoline<F>, const_cast<void*>(static_cast<const void*>(&fn)), true);
  }
  // Like run, but fn may be skipped on workers that arrive late: fn must claim its work
  // dynamically (e.g. an atomic counter) so that the threads that do run finish it all.
  template <class F>
  void run_dynamic(F&& fn) {
    run_impl(trampoline<F>, const_cast<void*>(static_cast<const void*>(&fn)), false);
  }

  // Calls fn(begin, end) over chunks of [0, n) (boundaries multiples of `align`, a few chunks
  // per thread) claimed dynamically; together the calls cover [0, n) exactly once.
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t align = 1) {
    if (n <= 0) return;
    const int64_t blocks = (n + align - 1) / align;
    const int64_t per_chunk = std::max<int64_t>(1, blocks / (4 * n_threads_));
    const int64_t chunks = (blocks + per_chunk - 1) / per_chunk;
    if (chunks == 1 || n_threads_ == 1) {
      fn(int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    run_dynamic([&](int, int) {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
        const int64_t begin = c * per_chunk * align, end = std::min(n, (c + 1) * per_chunk * align);
        fn(begin, end);
      }
    });
  }

 private:
  using JobFn = void (*)(void*, int, int);
  template <class F>
  static void trampoline(void* ctx, int t, int n) {
    (*static_cast<std::remove_reference_t<F>*>(ctx))(t, n);
  }
  void run_impl(JobFn fn, void* ctx, bool all_threads);
  void worker_loop(int index);

  struct alignas(64) WorkerSlot {
    std::atomic<uint64_t> claimed{0};  // last job generation claimed (run or skipped)
    std::atomic<uint64_t> done{0};     // last job generation this worker finished running
  };

  int n_threads_;
  std::vector<std::thread> workers_;
  std::unique_ptr<WorkerSlot[]> slots_;
  std::atomic<uint64_t> generation_{0};
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
