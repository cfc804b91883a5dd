#include "kernels/matmul_internal.h"
namespace qs::kernels::detail {
void gemv_avx2(const MatmulArgs& a, ThreadPool& pool) { matmul_generic(a, pool); }
void gemm_avx2(const MatmulArgs& a, ThreadPool& pool) { matmul_generic(a, pool); }
}
