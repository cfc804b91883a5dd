// AVX2 + FMA versions of the row-wise and element-wise operations (ops.h), with the same
// arithmetic as the AVX-512 ones (ops_avx512.cpp) and the portable ones (ops.cpp).
#include "kernels/simd_avx2.h"  // first: see the note there
//
#include <cmath>

#include "kernels/ops_internal.h"

#if QS_HAVE_X86

namespace qs::kernels::detail {

using namespace avx2;

QS_TARGET_AVX2 void exp_avx2(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp(_mm256_loadu_ps(in + i)));
  if (i < n) {
    const __m256i m = lanes8(n - i);
    _mm256_maskstore_ps(out + i, m, exp(_mm256_maskload_ps(in + i, m)));
  }
}

}  // namespace qs::kernels::detail

#endif  // QS_HAVE_X86
