// Portable low-bit kernels: the contracts of qmatmul.h in plain C++, parallel over W rows. Each
// W row is decoded once per call into an exact f32 buffer (bf16-rounded dequantized weights,
// decoded e4m3 values, int8 codes) and dotted with every prepared row of x using 16 independent
// partial sums, a loop shape compilers vectorize without reassociating anything. The products
// are exact (bf16 x bf16, e4m3 x e4m3, integers), so the sums differ from the reference's only in
// order. The row bodies are always_inline and instantiated twice: for the baseline target and
// for AVX2+FMA (SimdLevel::Avx2), where the same loops run on 256-bit vectors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/qmatmul_internal.h"

namespace qs::kernels::qdetail {

namespace {

using detail::parallel_chunks;
using detail::scratch;

#define QS_ALWAYS_INLINE inline __attribute__((always_inline))

constexpr int kLanes = 16;
constexpr int64_t kRowsPerChunk = 16;

QS_ALWAYS_INLINE float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// sum a[k] * b[k] with exact products (see above): 16 partial sums, then their sum.
QS_ALWAYS_INLINE float dot_f32(const float* a, const float* b, int64_t K) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[k + l] * b[k + l];
  float s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; k < K; ++k) s += a[k] * b[k];
  return s;
}

QS_ALWAYS_INLINE int32_t dot_i8(const int8_t* a, const int8_t* b, int64_t K) {
  int32_t acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<int32_t>(a[k + l]) * static_cast<int32_t>(b[k + l]);
  int32_t s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; k < K; ++k) s += static_cast<int32_t>(a[k]) * static_cast<int32_t>(b[k]);
  return s;
}

// ---- WeightOnly ------------------------------------------------------------------------------

// Unsigned code of element k of row n (layouts of qmatmul.h).
QS_ALWAYS_INLINE int wo_code(const WeightOnlyArgs& a, const uint8_t* lo, const uint8_t* hi, int64_t k) {
  if (a.bits == 8) return lo[k];
  if (a.bits == 4) return (lo[k >> 1] >> (4 * (k & 1))) & 15;
  return ((lo[k >> 2] >> (2 * (k & 3))) & 3) | (((hi[k >> 3] >> (k & 7)) & 1) << 2);
}

// W row n -> w[0..K): round_bf16(value(code) * scale), per group through a table of the 2^bits
// weights the group can hold (8-bit: computed per weight).
QS_ALWAYS_INLINE void wo_decode_row(const WeightOnlyArgs& a, int64_t n, float* w) {
  const int64_t groups = a.K / a.group;
  const uint8_t* lo = a.codes + n * code_row_bytes(a.bits, a.K);
  const uint8_t* hi = a.codes_hi ? a.codes_hi + n * hi_plane_row_bytes(a.K) : nullptr;
  const int sym_zero = 1 << (a.bits - 1);
  for (int64_t g = 0; g < groups; ++g) {
    const float s = a.scales[n * groups + g];
    const int z = a.zeros ? a.zeros[n * groups + g] : sym_zero;
    const int64_t k0 = g * a.group, k1 = k0 + a.group;
    if (a.bits == 8) {
      for (int64_t k = k0; k < k1; ++k) w[k] = round_bf16(static_cast<float>(lo[k] - z) * s);
      continue;
    }
    float table[16];
    for (int c = 0; c < (1 << a.bits); ++c) table[c] = round_bf16((a.lut ? a.lut[c] : static_cast<float>(c - z)) * s);
    for (int64_t k = k0; k < k1; ++k) w[k] = table[wo_code(a, lo, hi, k)];
  }
}

QS_ALWAYS_INLINE void wo_rows(const WeightOnlyArgs& a, const float* xr, int64_t n0, int64_t n1) {
  float* w = scratch<float>(1, static_cast<size_t>(a.K));
  for (int64_t n = n0; n < n1; ++n) {
    wo_decode_row(a, n, w);
    for (int64_t m = 0; m < a.M; ++m)
      a.y[m * a.N + n] = dot_f32(xr + m * a.K, w, a.K) + (a.bias ? a.bias[n] : 0.0f);
  }
}
void wo_rows_generic(const WeightOnlyArgs& a, const float* xr, int64_t n0, int64_t n1) { wo_rows(a, xr, n0, n1); }
QS_TARGET_AVX2 void wo_rows_avx2(const WeightOnlyArgs& a, const float* xr, int64_t n0, int64_t n1) {
  wo_rows(a, xr, n0, n1);
}

// ---- Int8 ------------------------------------------------------------------------------------

QS_ALWAYS_INLINE void int8_rows(const Int8Args& a, const int8_t* q, const float* sx, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* w = a.w + n * a.K;
    for (int64_t m = 0; m < a.M; ++m)
      a.y[m * a.N + n] = sx[m] * a.w_scale[n] * static_cast<float>(dot_i8(q + m * a.K, w, a.K));
  }
}
void int8_rows_generic(const Int8Args& a, const int8_t* q, const float* sx, int64_t n0, int64_t n1) {
  int8_rows(a, q, sx, n0, n1);
}
QS_TARGET_AVX2 void int8_rows_avx2(const Int8Args& a, const int8_t* q, const float* sx, int64_t n0, int64_t n1) {
  int8_rows(a, q, sx, n0, n1);
}

// ---- Fp8 -------------------------------------------------------------------------------------

QS_ALWAYS_INLINE void fp8_rows(const Fp8Args& a, const float* xq, const float* sx, int64_t n0, int64_t n1) {
  float* w = scratch<float>(1, static_cast<size_t>(a.K));
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* codes = a.w + n * a.K;
    for (int64_t k = 0; k < a.K; ++k) w[k] = formats::fp8_e4m3_to_f32(codes[k]);
    for (int64_t m = 0; m < a.M; ++m)
      a.y[m * a.N + n] = dot_f32(xq + m * a.K, w, a.K) * sx[m] * a.w_scale[n] + (a.bias ? a.bias[n] : 0.0f);
  }
}
void fp8_rows_generic(const Fp8Args& a, const float* xq, const float* sx, int64_t n0, int64_t n1) {
  fp8_rows(a, xq, sx, n0, n1);
}
QS_TARGET_AVX2 void fp8_rows_avx2(const Fp8Args& a, const float* xq, const float* sx, int64_t n0, int64_t n1) {
  fp8_rows(a, xq, sx, n0, n1);
}

// ---- GGUF ------------------------------------------------------------------------------------

// x as Q8_0 blocks: codes [M][K] and block scales (f16 widened) [M][K/32].
QS_ALWAYS_INLINE void gguf_rows(const GgufArgs& a, const int8_t* xq, const float* dx, int64_t n0, int64_t n1) {
  const int64_t nb = a.K / 32;
  int8_t* w = scratch<int8_t>(1, static_cast<size_t>(a.K));
  float* dw = scratch<float>(2, static_cast<size_t>(nb));
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t b = 0; b < nb; ++b) {
      int8_t* wb = w + b * 32;
      if (a.q4_0) {
        const auto& blk = static_cast<const formats::BlockQ4_0*>(a.blocks)[n * nb + b];
        dw[b] = f16_to_f32(blk.d);
        for (int j = 0; j < 16; ++j) {
          wb[j] = static_cast<int8_t>((blk.qs[j] & 15) - 8);
          wb[j + 16] = static_cast<int8_t>((blk.qs[j] >> 4) - 8);
        }
      } else {
        const auto& blk = static_cast<const formats::BlockQ8_0*>(a.blocks)[n * nb + b];
        dw[b] = f16_to_f32(blk.d);
        for (int j = 0; j < 32; ++j) wb[j] = blk.qs[j];
      }
    }
    for (int64_t m = 0; m < a.M; ++m) {
      float sum = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;
        for (int j = 0; j < 32; ++j) dot += static_cast<int32_t>(w[b * 32 + j]) * xq[m * a.K + b * 32 + j];
        sum += static_cast<float>(dot) * (dw[b] * dx[m * nb + b]);
      }
      a.y[m * a.N + n] = sum + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}
void gguf_rows_generic(const GgufArgs& a, const int8_t* xq, const float* dx, int64_t n0, int64_t n1) {
  gguf_rows(a, xq, dx, n0, n1);
}
QS_TARGET_AVX2 void gguf_rows_avx2(const GgufArgs& a, const int8_t* xq, const float* dx, int64_t n0, int64_t n1) {
  gguf_rows(a, xq, dx, n0, n1);
}

}  // namespace

void weight_only_portable(const WeightOnlyArgs& a, ThreadPool& pool, bool avx2) {
  std::vector<float> xr(static_cast<size_t>(a.M * a.K));
  for (int64_t i = 0; i < a.M * a.K; ++i) xr[i] = round_bf16(a.x[i]);
  auto* rows = avx2 ? &wo_rows_avx2 : &wo_rows_generic;
  parallel_chunks(pool, a.N, kRowsPerChunk, [&](int64_t n0, int64_t n1) { rows(a, xr.data(), n0, n1); });
}

void int8_portable(const Int8Args& a, ThreadPool& pool, bool avx2) {
  const std::vector<int32_t> cols = llm_int8_outlier_columns(a);
  std::vector<int8_t> q(static_cast<size_t>(a.M * a.K));
  std::vector<float> sx(static_cast<size_t>(a.M)), xin(static_cast<size_t>(a.K));
  for (int64_t m = 0; m < a.M; ++m) {
    std::copy(a.x + m * a.K, a.x + (m + 1) * a.K, xin.begin());
    for (int32_t k : cols) xin[k] = 0.0f;
    int8_t* qm = q.data() + m * a.K;
    if (a.static_x_scale > 0) {
      sx[m] = a.static_x_scale;
      for (int64_t k = 0; k < a.K; ++k)
        qm[k] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, std::nearbyint(xin[k] / sx[m]))));
    } else {
      sx[m] = quantize_row_int8(xin.data(), a.K, qm);
    }
  }
  auto* rows = avx2 ? &int8_rows_avx2 : &int8_rows_generic;
  parallel_chunks(pool, a.N, kRowsPerChunk, [&](int64_t n0, int64_t n1) {
    rows(a, q.data(), sx.data(), n0, n1);
    llm_int8_finish(a, cols, 0, a.M, n0, n1);
  });
}

void fp8_portable(const Fp8Args& a, ThreadPool& pool, bool avx2) {
  std::vector<float> xq(static_cast<size_t>(a.M * a.K)), sx(static_cast<size_t>(a.M));
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    float* out = xq.data() + m * a.K;
    sx[m] = fp8_row_scale(a, x);
    for (int64_t k = 0; k < a.K; ++k)
      out[k] = a.act == Fp8Args::Act::Bf16 ? round_bf16(x[k])
                                           : formats::fp8_e4m3_to_f32(formats::f32_to_fp8_e4m3(x[k] / sx[m]));
  }
  auto* rows = avx2 ? &fp8_rows_avx2 : &fp8_rows_generic;
  parallel_chunks(pool, a.N, kRowsPerChunk, [&](int64_t n0, int64_t n1) { rows(a, xq.data(), sx.data(), n0, n1); });
}

void gguf_portable(const GgufArgs& a, ThreadPool& pool, bool avx2) {
  const int64_t nb = a.K / 32;
  std::vector<formats::BlockQ8_0> blocks(static_cast<size_t>(nb));
  std::vector<int8_t> xq(static_cast<size_t>(a.M * a.K));
  std::vector<float> dx(static_cast<size_t>(a.M * nb));
  for (int64_t m = 0; m < a.M; ++m) {
    formats::quantize_row_q8_0({a.x + m * a.K, static_cast<size_t>(a.K)}, blocks);
    for (int64_t b = 0; b < nb; ++b) {
      dx[m * nb + b] = f16_to_f32(blocks[b].d);
      std::copy(blocks[b].qs, blocks[b].qs + 32, xq.begin() + m * a.K + b * 32);
    }
  }
  auto* rows = avx2 ? &gguf_rows_avx2 : &gguf_rows_generic;
  parallel_chunks(pool, a.N, kRowsPerChunk, [&](int64_t n0, int64_t n1) { rows(a, xq.data(), dx.data(), n0, n1); });
}

}  // namespace qs::kernels::qdetail
