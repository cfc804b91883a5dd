// Dense linear algebra for the quantization algorithms, on OpenBLAS (BLAS and LAPACK).
//
// Threading: qstudy's cores belong to qs::ThreadPool. GEMMs are cut into tiles of a fixed
// size (never derived from the thread count) that pool threads run with OpenBLAS set to one
// thread, so every result is bit-identical whatever the number of threads. LAPACK
// factorizations, which do not tile that way, run on OpenBLAS's own threads, set to the
// pool's size for the duration of the call. OpenBLAS's thread count is process-wide state:
// BlasThreads sets it for a scope and restores it, and callers assume no other thread calls
// OpenBLAS meanwhile.
#pragma once

#include <cstdint>
#include <span>

namespace qs::quant {

// Sets OpenBLAS's thread count for the lifetime of the object, then restores it.
class BlasThreads {
 public:
  explicit BlasThreads(int n_threads);
  ~BlasThreads();
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int saved_;
};

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C with op(A) [m, k], op(B) [k, n]
// (cblas_sgemm). One OpenBLAS call; single-threaded under BlasThreads(1).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

struct CholeskyFailure {
  const char* routine = nullptr;  // "spotrf" or "spotri"; nullptr on success
  int info = 0;                   // LAPACK info (> 0: leading minor `info` is not positive definite)
  explicit operator bool() const { return routine != nullptr; }
};

// A [k, k] symmetric positive definite, row-major; only its upper triangle and diagonal are
// read. Replaces it with the upper Cholesky factor U of A^-1 (A^-1 = U^T U; strict lower
// triangle zero), computed as GPTQ does with torch.linalg.cholesky, torch.cholesky_inverse,
// torch.linalg.cholesky(upper=True), i.e. LAPACK spotrf('L'), spotri('L'), spotrf('U'): with
// one OpenBLAS thread the result is bit-identical to torch's on the same OpenBLAS. (OpenBLAS's
// threaded factorizations round differently with each thread count.) On failure returns the
// failing routine and its info, leaving `a` undefined. `threads`: OpenBLAS threads.
CholeskyFailure upper_cholesky_of_inverse(std::span<float> a, int64_t k, int threads);

// Mirrors the strict lower triangle of a row-major [k, k] matrix onto the upper one.
void copy_lower_to_upper(std::span<float> a, int64_t k);
// Mirrors the strict upper triangle onto the lower one.
void copy_upper_to_lower(std::span<float> a, int64_t k);

}  // namespace qs::quant
