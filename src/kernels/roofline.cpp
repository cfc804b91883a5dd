#include "kernels/simd_avx512.h"  // first: see the note there
//
#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/aligned.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/timer.h"
#include "kernels/roofline.h"

namespace qs::kernels {

namespace {

// Makes a result observable so the loop computing it is not optimized away (a store to an
// unread variable is not enough: clang proves it dead and drops the whole loop).
template <class T>
inline void keep(const T& value) {
  asm volatile("" : : "m"(value) : "memory");
}
// Loop inputs the compiler cannot see (clang would otherwise evaluate constant loops).
volatile float g_one = 0.999f, g_small = 1e-3f;

constexpr int kRepeats = 6;

// The read loops prefetch 16 KiB ahead into L2, as the GEMV does: on Zen 4 a plain load
// stream reaches about 20 GB/s per core, this about 25 (the bound should be what a kernel can
// actually get, or the GEMV would appear to beat its roofline).
constexpr int kPrefetchAhead = 16384;

#if QS_HAVE_X86
QS_TARGET_AVX512 float read_avx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + kPrefetchAhead, _MM_HINT_T1);
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return avx512::hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

QS_TARGET_AVX2 float read_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + kPrefetchAhead, _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + kPrefetchAhead + 64, _MM_HINT_T1);
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}
#endif

float read_generic(const float* p, size_t n) {
  float a[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) a[l] += p[i + l];
  float s = 0;
  for (float v : a) s += v;
  return s;
}

float read_all(const float* p, size_t n) {
  switch (simd_level()) {
#if QS_HAVE_X86
    case SimdLevel::Avx512:
      return read_avx512(p, n);
    case SimdLevel::Avx2:
      return read_avx2(p, n);
#endif
    default:
      return read_generic(p, n);
  }
}

// Register-only loops: 12 independent accumulators (more than latency x throughput on
// current cores), `iters` rounds; returns FLOPs done.
constexpr int64_t kIters = int64_t{1} << 22;

#if QS_HAVE_X86
QS_TARGET_AVX512 double fma_loop_avx512() {
  __m512 acc[12];
  const float one = g_one, small = g_small;
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(small * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(one), b = _mm512_set1_ps(small);
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(kIters) * 12 * 16 * 2;
}

QS_TARGET_AVX512_BF16 double dot_loop_avx512_bf16() {
  __m512 acc[12];
  const float one = g_one, small = g_small;
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(small * static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(static_cast<short>(f32_to_bf16(one)));
  const __m512bh b = (__m512bh)_mm512_set1_epi16(static_cast<short>(f32_to_bf16(small)));
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(kIters) * 12 * 32 * 2;
}

// u8 x s8 -> s32 (VPDPBUSD): 64 multiply-adds per instruction, the int8 kernels' operation.
QS_TARGET_AVX512_VNNI double dot_loop_avx512_vnni() {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  const char one = static_cast<char>(g_one + 0.5f);  // 1, unknown to the compiler
  const __m512i a = _mm512_set1_epi8(one), b = _mm512_set1_epi8(one);
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_epi32(s, acc[i]);
  keep(s);
  return static_cast<double>(kIters) * 12 * 64 * 2;
}

QS_TARGET_AVX2 double fma_loop_avx2() {
  __m256 acc[12];
  const float one = g_one, small = g_small;
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(small * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(one), b = _mm256_set1_ps(small);
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(kIters) * 12 * 8 * 2;
}
#endif

// Portable: what the generic kernels get from the compiler (mul + add on SSE2 vectors).
double mul_add_loop_generic() {
  float acc[12][4];
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 4; ++l) acc[i][l] = static_cast<float>(i + l);
  const float a = g_one, b = g_small;
  for (int64_t it = 0; it < kIters / 4; ++it)
    for (int i = 0; i < 12; ++i)
      for (int l = 0; l < 4; ++l) acc[i][l] = acc[i][l] * a + b;
  float s = 0;
  for (auto& r : acc)
    for (float v : r) s += v;
  keep(s);
  return static_cast<double>(kIters / 4) * 12 * 4 * 2;
}

double flop_loop(DType dtype) {
  switch (simd_level()) {
#if QS_HAVE_X86
    case SimdLevel::Avx512:
      if (dtype == DType::BF16 && use_avx512_bf16()) return dot_loop_avx512_bf16();
      if (dtype == DType::I8 && use_avx512_vnni()) return dot_loop_avx512_vnni();
      return fma_loop_avx512();
    case SimdLevel::Avx2:
      return fma_loop_avx2();
#endif
    default:
      return mul_add_loop_generic();
  }
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

double measure_memory_bandwidth_gbs(ThreadPool& pool, size_t bytes) {
  const size_t n = std::max<size_t>(bytes / sizeof(float), 1 << 16) / 64 * 64;
  AlignedVector<float> buf(n);
  // Touch every page from the thread that will read it (first-touch placement), with values
  // that keep the sums finite.
  pool.parallel_for(
      static_cast<int64_t>(n), [&](int64_t b, int64_t e) { std::fill(buf.data() + b, buf.data() + e, 1e-3f); }, 64);
  // Timed in windows of 1/8 of the buffer (128 MiB of the default 1 GiB, still 4x a 32 MiB
  // L3), walking through the buffer so no window is in cache when read again; the best window
  // counts. Short windows catch the moments other processes leave the memory bus alone, as the
  // kernels compared against this bound do (a decode GEMV reads 1-32 MiB per call).
  const size_t windows = 8;
  const size_t window = std::max<size_t>(n / windows / 64 * 64, 64);
  double best = 0;
  for (size_t rep = 0; rep < windows * 2; ++rep) {
    const float* base = buf.data() + (rep % windows) * window;
    const size_t len = std::min(window, n - (rep % windows) * window);
    std::atomic<float> total{0};
    Stopwatch sw;
    pool.parallel_for(
        static_cast<int64_t>(len),
        [&](int64_t b, int64_t e) {
          const float s = read_all(base + b, static_cast<size_t>(e - b));
          float cur = total.load();
          while (!total.compare_exchange_weak(cur, cur + s)) {
          }
        },
        64);
    const double secs = sw.seconds();
    keep(total);
    best = std::max(best, static_cast<double>(len * sizeof(float)) / secs / 1e9);
  }
  return best;
}

double measure_peak_gflops(DType dtype, ThreadPool& pool) {
  double best = 0;
  for (int rep = 0; rep < kRepeats; ++rep) {
    std::atomic<double> rate{0};  // sum over threads of FLOPs per second of that thread's CPU time
    pool.run([&](int, int) {
      const double t0 = thread_cpu_seconds();
      const double f = flop_loop(dtype);
      const double r = f / std::max(thread_cpu_seconds() - t0, 1e-9);
      double cur = rate.load();
      while (!rate.compare_exchange_weak(cur, cur + r)) {
      }
    });
    best = std::max(best, rate.load() / 1e9);
  }
  return best;
}

}  // namespace qs::kernels
