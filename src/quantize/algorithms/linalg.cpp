#include "quantize/algorithms/linalg.h"

#include <cblas.h>

#include <algorithm>

#include "core/error.h"

// LAPACK (Fortran interface, column-major, hidden string lengths last). OpenBLAS implements
// spotrf natively and builds spotri from reference LAPACK on its own strtri/slauum.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t uplo_len);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t uplo_len);
}

namespace qs::quant {

BlasThreads::BlasThreads(int n_threads) : saved_(openblas_get_num_threads()) {
  if (n_threads < 1) n_threads = 1;
  if (n_threads != saved_) openblas_set_num_threads(n_threads);
}

BlasThreads::~BlasThreads() {
  if (openblas_get_num_threads() != saved_) openblas_set_num_threads(saved_);
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

CholeskyFailure upper_cholesky_of_inverse(std::span<float> a, int64_t k, int threads) {
  require(k > 0 && k < (int64_t{1} << 31) && a.size() == static_cast<size_t>(k * k),
          "Cholesky: matrix of ", a.size(), " values is not [", k, ", ", k, "]");
  // A symmetric row-major matrix is the same array in column-major order; LAPACK's column-
  // major lower triangle is our upper one and vice versa. The calls are torch's: potrf('L'),
  // potri('L'), then potrf('U') on the full symmetric inverse, whose column-major upper factor
  // U (H^-1 = U^T U) lands in our lower triangle as U^T and is transposed into place.
  BlasThreads blas(threads);
  const int n = static_cast<int>(k);
  const char lower = 'L', upper = 'U';
  int info = 0;
  spotrf_(&lower, &n, a.data(), &n, &info, 1);
  if (info != 0) return {"spotrf", info};
  spotri_(&lower, &n, a.data(), &n, &info, 1);
  if (info != 0) return {"spotri", info};
  copy_upper_to_lower(a, k);
  spotrf_(&upper, &n, a.data(), &n, &info, 1);
  if (info != 0) return {"spotrf", info};
  copy_lower_to_upper(a, k);
  for (int64_t i = 1; i < k; ++i) std::fill_n(a.data() + i * k, i, 0.0f);
  return {};
}

namespace {
// Copies one strict triangle of a row-major [k, k] matrix onto the other, in 64 x 64 tiles so
// that the transposed side is not walked one cache line per element for large k.
void mirror(std::span<float> a, int64_t k, bool lower_to_upper) {
  constexpr int64_t kB = 64;
  for (int64_t i0 = 0; i0 < k; i0 += kB)
    for (int64_t j0 = i0; j0 < k; j0 += kB)
      for (int64_t i = i0; i < std::min(i0 + kB, k); ++i)
        for (int64_t j = std::max(j0, i + 1); j < std::min(j0 + kB, k); ++j) {
          if (lower_to_upper) a[i * k + j] = a[j * k + i];
          else a[j * k + i] = a[i * k + j];
        }
}
}  // namespace

void copy_lower_to_upper(std::span<float> a, int64_t k) { mirror(a, k, true); }
void copy_upper_to_lower(std::span<float> a, int64_t k) { mirror(a, k, false); }

}  // namespace qs::quant
