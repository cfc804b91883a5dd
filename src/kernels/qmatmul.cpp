// Entry points of the low-bit kernels. Until the SIMD versions land, each runs its reference in
// parallel over output rows.
#include "kernels/qmatmul.h"

#include <type_traits>
#include <vector>

namespace qs::kernels {

namespace {
template <class Args, class Fn>
void split_rows(const Args& a, ThreadPool& pool, Fn&& adjust) {
  pool.parallel_for(a.N, [&](int64_t n0, int64_t n1) {
    Args part = a;
    part.N = n1 - n0;
    adjust(part, n0);
    // Outputs of the part land in a scratch block, then are scattered into y's columns.
    std::vector<float> y(part.M * part.N);
    part.y = y.data();
    part.bias = a.bias ? a.bias + n0 : nullptr;
    if constexpr (std::is_same_v<Args, WeightOnlyArgs>) matmul_weight_only_reference(part);
    else if constexpr (std::is_same_v<Args, Int8Args>) matmul_int8_reference(part);
    else if constexpr (std::is_same_v<Args, Fp8Args>) matmul_fp8_reference(part);
    else matmul_gguf_reference(part);
    for (int64_t m = 0; m < a.M; ++m)
      for (int64_t n = 0; n < part.N; ++n) a.y[m * a.N + n0 + n] = y[m * part.N + n];
  });
}
}  // namespace

void matmul_weight_only(const WeightOnlyArgs& a, ThreadPool& pool) {
  // Flat blocks equal per-row groups when the group divides K; otherwise blocks straddle rows
  // (only on odd toy shapes) and the reference runs as is.
  if (a.flat_groups && a.K % a.group != 0) return matmul_weight_only_reference(a);
  split_rows(a, pool, [&](WeightOnlyArgs& p, int64_t n0) {
    const int64_t groups = a.K / a.group;
    p.codes = a.codes + n0 * code_row_bytes(a.bits, a.K);
    if (a.codes_hi) p.codes_hi = a.codes_hi + n0 * hi_plane_row_bytes(a.K);
    p.scales = a.scales + n0 * groups;
    if (a.zeros) p.zeros = a.zeros + n0 * groups;
  });
}

void matmul_int8(const Int8Args& a, ThreadPool& pool) {
  split_rows(a, pool, [&](Int8Args& p, int64_t n0) {
    p.w = a.w + n0 * a.K;
    p.w_scale = a.w_scale + n0;
    if (a.w_row_sums) p.w_row_sums = a.w_row_sums + n0;
  });
}

void matmul_fp8(const Fp8Args& a, ThreadPool& pool) {
  split_rows(a, pool, [&](Fp8Args& p, int64_t n0) {
    p.w = a.w + n0 * a.K;
    p.w_scale = a.w_scale + n0;
  });
}

void matmul_gguf(const GgufArgs& a, ThreadPool& pool) {
  split_rows(a, pool, [&](GgufArgs& p, int64_t n0) {
    const size_t block = a.q4_0 ? 18 : 34;
    p.blocks = static_cast<const uint8_t*>(a.blocks) + n0 * (a.K / 32) * block;
  });
}

}  // namespace qs::kernels
