#include "formats/ggml_quants.h"

#include <cctype>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace qs::formats {

namespace {

struct TypeInfo {
  GgmlType type;
  const char* name;
  int64_t block;
  size_t bytes;
};

// ggml's type traits (ggml.c type_traits: blck_size, type_size).
constexpr TypeInfo kTypes[] = {
    {GgmlType::F32, "F32", 1, 4},         {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},     {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},     {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},     {GgmlType::Q8_1, "Q8_1", 32, 36},
    {GgmlType::Q2_K, "Q2_K", 256, 84},    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},   {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},   {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66}, {GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98}, {GgmlType::IQ1_S, "IQ1_S", 256, 50},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18}, {GgmlType::IQ3_S, "IQ3_S", 256, 110},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82},  {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::I8, "I8", 1, 1},           {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},         {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},         {GgmlType::IQ1_M, "IQ1_M", 256, 56},
    {GgmlType::BF16, "BF16", 1, 2},       {GgmlType::TQ1_0, "TQ1_0", 256, 54},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66},  {GgmlType::MXFP4, "MXFP4", 32, 17},
};

const TypeInfo& info(GgmlType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return i;
  fail("ggml type id ", static_cast<uint32_t>(t), " is not a known ggml type");
}

constexpr int64_t QK = 32;    // block of the legacy types
constexpr int64_t QK_K = 256;  // super-block of the K-quants

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// The 6-bit scale and min of group j of a Q4_K / Q5_K super-block (ggml's get_scale_min_k4):
// groups 0-3 keep them in the low 6 bits of bytes j and j + 4; groups 4-7 in the nibbles of
// byte j + 4 with their top two bits in the high bits of bytes j - 4 and j.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequantize_row_q4_0_bytes(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b, x += 18, y += QK) {
    const float d = half_at(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q8_0_bytes(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b, x += 34, y += QK) {
    const float d = half_at(x);
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(x[2 + j])) * d;
  }
}

}  // namespace

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  for (const TypeInfo& i : kTypes)
    if (static_cast<uint32_t>(i.type) == id) return i.type;
  return std::nullopt;
}

std::string_view ggml_type_name(GgmlType t) { return info(t).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const TypeInfo& i : kTypes) {
    std::string_view n = i.name;
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t k = 0; k < n.size() && same; ++k)
      same = std::toupper(static_cast<unsigned char>(name[k])) == static_cast<unsigned char>(n[k]);
    if (same) return i.type;
  }
  return std::nullopt;
}

int64_t ggml_block_size(GgmlType t) { return info(t).block; }
size_t ggml_type_size(GgmlType t) { return info(t).bytes; }

size_t ggml_row_size(GgmlType t, int64_t n) {
  const TypeInfo& i = info(t);
  return static_cast<size_t>(n / i.block) * i.bytes;
}

bool ggml_can_dequantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize_row_q4_1(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b, x += 20, y += QK) {
    const float d = half_at(x), m = half_at(x + 2);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < QK / 2; ++j) {
      const int x0 = qs[j] & 0x0F, x1 = qs[j] >> 4;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + QK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q5_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b, x += 22, y += QK) {
    const float d = half_at(x);
    uint32_t qh;
    std::memcpy(&qh, x + 2, 4);
    const uint8_t* qs = x + 6;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
      y[j + QK / 2] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b, x += 24, y += QK) {
    const float d = half_at(x), m = half_at(x + 2);
    uint32_t qh;
    std::memcpy(&qh, x + 4, 4);
    const uint8_t* qs = x + 8;
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
    }
  }
}

void dequantize_row_q2_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += 84) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = half_at(x + 80), dmin = half_at(x + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_row_q3_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += 110) {
    const uint8_t* hm = x;
    const uint8_t* q = x + 32;
    const uint8_t* packed = x + 96;
    const float d_all = half_at(x + 108);
    // 16 scales of 6 bits: low nibbles in bytes 0-7 (scales 0-7 low, 8-15 high nibble), the
    // top two bits of scale j in bits 2*(j/4) of byte 8 + j % 4.
    int scales[16];
    for (int j = 0; j < 16; ++j) {
      const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
      const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
      scales[j] = (low | (high << 4)) - 32;
    }
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[is++]);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_row_q4_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += 144) {
    const float d = half_at(x), dmin = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(is, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += 176) {
    const float d = half_at(x), dmin = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32, u1 = static_cast<uint8_t>(u1 << 2), u2 = static_cast<uint8_t>(u2 << 2)) {
      uint8_t sc, m;
      scale_min_k4(is, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void dequantize_row_q6_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += 210) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    const float d = half_at(x + 208);
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_row(GgmlType t, const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(src);
  const int64_t block = ggml_block_size(t);
  require(n >= 0 && n % block == 0, "dequantize ", ggml_type_name(t), ": a row of ", n,
          " values is not a multiple of the block size ", block);
  switch (t) {
    case GgmlType::F32: std::memcpy(y, x, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = half_at(x + 2 * i);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, x + 2 * i, 2);
        y[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::Q4_0: dequantize_row_q4_0_bytes(x, y, n); return;
    case GgmlType::Q8_0: dequantize_row_q8_0_bytes(x, y, n); return;
    case GgmlType::Q4_1: dequantize_row_q4_1(x, y, n); return;
    case GgmlType::Q5_0: dequantize_row_q5_0(x, y, n); return;
    case GgmlType::Q5_1: dequantize_row_q5_1(x, y, n); return;
    case GgmlType::Q2_K: dequantize_row_q2_k(x, y, n); return;
    case GgmlType::Q3_K: dequantize_row_q3_k(x, y, n); return;
    case GgmlType::Q4_K: dequantize_row_q4_k(x, y, n); return;
    case GgmlType::Q5_K: dequantize_row_q5_k(x, y, n); return;
    case GgmlType::Q6_K: dequantize_row_q6_k(x, y, n); return;
    default:
      fail("ggml type ", ggml_type_name(t), " cannot be dequantized by qstudy (supported: F32, F16, BF16, Q4_0, "
           "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  }
}

}  // namespace qs::formats
