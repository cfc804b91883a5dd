// Plain, obviously-correct implementations: the references every fast kernel is tested against.
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/ops_internal.h"

namespace qs::kernels {

void matmul_reference(const MatmulArgs& a) {
  std::vector<float> xr(a.K);
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.ldx;
    for (int64_t k = 0; k < a.K; ++k) xr[k] = a.w_dtype == DType::BF16 ? qs::bf16_to_f32(qs::f32_to_bf16(x[k])) : x[k];
    for (int64_t n = 0; n < a.N; ++n) {
      float acc = 0;
      for (int64_t k = 0; k < a.K; ++k) {
        float w;
        switch (a.w_dtype) {
          case DType::BF16:
            w = qs::bf16_to_f32(static_cast<const uint16_t*>(a.w)[n * a.ldw + k]);
            break;
          case DType::F16:
            w = qs::f16_to_f32(static_cast<const uint16_t*>(a.w)[n * a.ldw + k]);
            break;
          default:
            w = static_cast<const float*>(a.w)[n * a.ldw + k];
        }
        acc = std::fma(xr[k], w, acc);
      }
      a.y[m * a.ldy + n] = acc + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

namespace detail {

// Rows [row0, row1) of the attention output, row = t * n_heads + h, computed as written in the
// contract: scores, softmax (portable version), weighted sum of values.
void attention_rows_generic(const AttentionArgs& a, int64_t row0, int64_t row1) {
  const int group = a.n_heads / a.n_kv_heads;
  std::vector<float> scores;
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t t = row / a.n_heads;
    const int h = static_cast<int>(row % a.n_heads);
    const int64_t len = a.pos0 + t + 1;  // causal: sees positions 0..pos0+t
    scores.resize(len);
    const float* q = a.q + (t * a.n_heads + h) * a.head_dim;
    const float* kh = a.k + (h / group) * a.kv_stride;
    const float* vh = a.v + (h / group) * a.kv_stride;
    for (int64_t p = 0; p < len; ++p) {
      float s = 0;
      for (int d = 0; d < a.head_dim; ++d) s += q[d] * kh[p * a.head_dim + d];
      scores[p] = s * a.scale;
    }
    softmax_generic(scores.data(), len);
    float* o = a.out + (t * a.n_heads + h) * a.head_dim;
    for (int d = 0; d < a.head_dim; ++d) o[d] = 0;
    for (int64_t p = 0; p < len; ++p)
      for (int d = 0; d < a.head_dim; ++d) o[d] += scores[p] * vh[p * a.head_dim + d];
  }
}

}  // namespace detail

void attention_reference(const AttentionArgs& a) { detail::attention_rows_generic(a, 0, a.n_new * a.n_heads); }

}  // namespace qs::kernels
