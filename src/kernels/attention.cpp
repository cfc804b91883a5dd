// attention: argument checks, dispatch, and the portable version (the reference's rows,
// spread over the pool).
#include "core/cpu.h"
#include "core/error.h"
#include "kernels/matmul_internal.h"
#include "kernels/ops.h"
#include "kernels/ops_internal.h"

namespace qs::kernels {

void attention(const AttentionArgs& a, ThreadPool& pool) {
  require(a.n_new >= 0 && a.pos0 >= 0, "attention: negative n_new=", a.n_new, " or pos0=", a.pos0);
  if (a.n_new == 0) return;
  require(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0, "attention: n_heads (", a.n_heads,
          ") must be a positive multiple of n_kv_heads (", a.n_kv_heads, ")");
  require(a.head_dim > 0, "attention: head_dim must be positive, got ", a.head_dim);
  require(a.kv_stride >= (a.pos0 + a.n_new) * a.head_dim || a.n_kv_heads == 1, "attention: kv_stride ", a.kv_stride,
          " is smaller than the filled positions (", a.pos0 + a.n_new, " x ", a.head_dim, ")");
  require(a.q && a.k && a.v && a.out, "attention: null buffer");
#if QS_HAVE_X86
  if (simd_level() == SimdLevel::Avx512) return detail::attention_avx512(a, pool);
  if (simd_level() == SimdLevel::Avx2) return detail::attention_avx2(a, pool);
#endif
  const int64_t rows = a.n_new * a.n_heads;
  detail::parallel_chunks(pool, rows, detail::chunk_for(rows, pool.size(), 4, 1),
                          [&](int64_t r0, int64_t r1) { detail::attention_rows_generic(a, r0, r1); });
}

}  // namespace qs::kernels
