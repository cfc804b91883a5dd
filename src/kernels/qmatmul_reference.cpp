// Straightforward implementations of the qmatmul.h contracts: the references the fast kernels
// are tested against. They still compute from the codes (no dequantized copy of W).
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "kernels/qmatmul.h"

namespace qs::kernels {

namespace {

float round_bf16(float v) { return qs::bf16_to_f32(qs::f32_to_bf16(v)); }

// Unsigned code of element k of row n.
int weight_code(const WeightOnlyArgs& a, int64_t n, int64_t k) {
  const int64_t row = code_row_bytes(a.bits, a.K);
  if (a.bits == 8) return a.codes[n * row + k];
  if (a.bits == 4) {
    const uint8_t byte = a.codes[n * row + k / 2];
    return (k & 1) ? byte >> 4 : byte & 15;
  }
  const uint8_t lo = (a.codes[n * row + k / 4] >> (2 * (k % 4))) & 3;
  const uint8_t hi = (a.codes_hi[n * hi_plane_row_bytes(a.K) + k / 8] >> (k % 8)) & 1;
  return lo | (hi << 2);
}

}  // namespace

void matmul_weight_only_reference(const WeightOnlyArgs& a) {
  const int64_t groups = a.K / a.group;
  std::vector<float> xr(a.K), w(a.K);
  for (int64_t n = 0; n < a.N; ++n) {
    for (int64_t k = 0; k < a.K; ++k) {
      const int code = weight_code(a, n, k);
      const int64_t g = a.flat_groups ? (n * a.K + k) / a.group : n * groups + k / a.group;
      float value;
      if (a.lut) value = a.lut[code];
      else value = static_cast<float>(code - (a.zeros ? a.zeros[g] : (1 << (a.bits - 1))));
      w[k] = round_bf16(value * a.scales[g]);
    }
    for (int64_t m = 0; m < a.M; ++m) {
      const float* x = a.x + m * a.K;
      float acc = 0;
      for (int64_t k = 0; k < a.K; ++k) acc = std::fma(round_bf16(x[k]), w[k], acc);
      a.y[m * a.N + n] = acc + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

float quantize_row_int8(const float* x, int64_t K, int8_t* q) {
  float amax = 0;
  for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  const float scale = amax > 0 ? amax / 127.0f : 1.0f;
  for (int64_t k = 0; k < K; ++k) {
    const float v = std::nearbyint(x[k] / scale);  // half to even
    q[k] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, v)));
  }
  return scale;
}

void matmul_int8_reference(const Int8Args& a) {
  std::vector<int8_t> q(a.K);
  std::vector<float> xin(a.K);
  std::vector<char> outlier(a.K, 0);
  if (a.outlier_threshold > 0)
    for (int64_t m = 0; m < a.M; ++m)
      for (int64_t k = 0; k < a.K; ++k)
        if (std::fabs(a.x[m * a.K + k]) > a.outlier_threshold) outlier[k] = 1;
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    for (int64_t k = 0; k < a.K; ++k) xin[k] = outlier[k] ? 0.0f : x[k];
    float sx;
    if (a.static_x_scale > 0) {
      sx = a.static_x_scale;
      for (int64_t k = 0; k < a.K; ++k)
        q[k] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, std::nearbyint(xin[k] / sx))));
    } else {
      sx = quantize_row_int8(xin.data(), a.K, q.data());
    }
    for (int64_t n = 0; n < a.N; ++n) {
      const int8_t* w = a.w + n * a.K;
      int32_t acc = 0;
      for (int64_t k = 0; k < a.K; ++k) acc += static_cast<int32_t>(q[k]) * w[k];
      float y = sx * a.w_scale[n] * static_cast<float>(acc);
      if (a.outlier_threshold > 0) {
        float f = 0;
        for (int64_t k = 0; k < a.K; ++k)
          if (outlier[k]) f = std::fma(x[k], static_cast<float>(w[k]) * a.w_scale[n], f);
        y += f;
      }
      a.y[m * a.N + n] = y + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

void matmul_fp8_reference(const Fp8Args& a) {
  std::vector<float> xq(a.K);
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    float sx = 1.0f;
    if (a.act == Fp8Args::Act::Bf16) {
      for (int64_t k = 0; k < a.K; ++k) xq[k] = round_bf16(x[k]);
    } else {
      if (a.act == Fp8Args::Act::StaticPerTensor) {
        sx = a.static_x_scale;
      } else {
        float amax = 0;
        for (int64_t k = 0; k < a.K; ++k) amax = std::max(amax, std::fabs(x[k]));
        sx = std::max(amax / formats::kFp8E4M3Max, formats::kFp8MinTokenScale);
      }
      for (int64_t k = 0; k < a.K; ++k) xq[k] = formats::fp8_e4m3_to_f32(formats::f32_to_fp8_e4m3(x[k] / sx));
    }
    for (int64_t n = 0; n < a.N; ++n) {
      const uint8_t* w = a.w + n * a.K;
      float acc = 0;
      for (int64_t k = 0; k < a.K; ++k) acc = std::fma(xq[k], formats::fp8_e4m3_to_f32(w[k]), acc);
      a.y[m * a.N + n] = acc * sx * a.w_scale[n] + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

void matmul_gguf_reference(const GgufArgs& a) {
  const int64_t nb = a.K / 32;
  std::vector<formats::BlockQ8_0> xq(nb);
  for (int64_t m = 0; m < a.M; ++m) {
    formats::quantize_row_q8_0({a.x + m * a.K, static_cast<size_t>(a.K)}, xq);
    for (int64_t n = 0; n < a.N; ++n) {
      float sum = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const float dx = qs::f16_to_f32(xq[b].d);
        int32_t dot = 0;
        float dw;
        if (a.q4_0) {
          const auto& blk = static_cast<const formats::BlockQ4_0*>(a.blocks)[n * nb + b];
          dw = qs::f16_to_f32(blk.d);
          for (int j = 0; j < 16; ++j) {
            dot += ((blk.qs[j] & 15) - 8) * xq[b].qs[j];
            dot += ((blk.qs[j] >> 4) - 8) * xq[b].qs[j + 16];
          }
        } else {
          const auto& blk = static_cast<const formats::BlockQ8_0*>(a.blocks)[n * nb + b];
          dw = qs::f16_to_f32(blk.d);
          for (int j = 0; j < 32; ++j) dot += blk.qs[j] * xq[b].qs[j];
        }
        sum += static_cast<float>(dot) * (dw * dx);
      }
      a.y[m * a.N + n] = sum + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

}  // namespace qs::kernels
