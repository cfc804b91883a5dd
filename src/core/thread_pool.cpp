#include "core/thread_pool.h"

#include <memory>
#include <mutex>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QS_CPU_RELAX() _mm_pause()
#else
#define QS_CPU_RELAX() ((void)0)
#endif

namespace qs {

namespace {
thread_local bool t_inside_job = false;
constexpr int kSpinIterations = 1 << 14;  // about 50-100 us of polling before sleeping
}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), slots_(new WorkerSlot[n_threads < 1 ? 1 : n_threads]) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

// Protocol: job g is published by bumping generation_ to g. Each worker's turn at job g is
// claimed exactly once by a CAS of its slot from g-1 to g: by the worker (which then runs the
// job and sets done = g) or, for dynamic jobs, by the caller once its own share is finished
// (the worker then skips). The caller waits only for workers that claimed their turn, and
// job_fn_ is never replaced while a worker that claimed the current job is still running.
void ThreadPool::run_impl(JobFn fn, void* ctx, bool all_threads) {
  if (n_threads_ == 1 || t_inside_job) {
    bool was = t_inside_job;
    t_inside_job = true;
    fn(ctx, 0, 1);
    t_inside_job = was;
    return;
  }
  job_fn_ = fn;
  job_ctx_ = ctx;
  const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  generation_.store(g, std::memory_order_release);
  generation_.notify_all();
  t_inside_job = true;
  fn(ctx, 0, n_threads_);
  t_inside_job = false;
  for (int i = 1; i < n_threads_; ++i) {
    WorkerSlot& slot = slots_[i];
    if (!all_threads) {
      uint64_t expected = g - 1;
      if (slot.claimed.compare_exchange_strong(expected, g, std::memory_order_acq_rel)) continue;  // skipped
    }
    for (int spin = 0;; ++spin) {
      const uint64_t d = slot.done.load(std::memory_order_acquire);
      if (d == g) break;
      if (spin < kSpinIterations) QS_CPU_RELAX();
      else slot.done.wait(d, std::memory_order_acquire);
    }
  }
}

void ThreadPool::worker_loop(int index) {
  WorkerSlot& slot = slots_[index];
  uint64_t seen = 0;
  t_inside_job = true;
  for (;;) {
    uint64_t g;
    for (int spin = 0;; ++spin) {
      g = generation_.load(std::memory_order_acquire);
      if (g != seen) break;
      if (spin < kSpinIterations) QS_CPU_RELAX();
      else generation_.wait(seen, std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    uint64_t expected = g - 1;
    if (!slot.claimed.compare_exchange_strong(expected, g, std::memory_order_acq_rel)) continue;  // the caller skipped us
    job_fn_(job_ctx_, index, n_threads_);
    slot.done.store(g, std::memory_order_release);
    slot.done.notify_one();
  }
}

namespace {
std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;
int g_requested_threads = 0;
}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_default_threads(int n_threads) {
  require(n_threads >= 0, "--threads: expected a non-negative count, got ", n_threads);
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  int n = n_threads == 0 ? hardware_threads() : n_threads;
  if (g_pool && g_pool->size() == n) return;
  g_pool.reset();
  g_requested_threads = n;
}

ThreadPool& default_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(g_requested_threads ? g_requested_threads : hardware_threads());
  return *g_pool;
}

}  // namespace qs
