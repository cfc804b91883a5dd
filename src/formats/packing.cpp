#include "formats/packing.h"

#include "core/dtype.h"
#include "core/error.h"

namespace qs::formats {

namespace {

int32_t as_int32(uint32_t u) { return static_cast<int32_t>(u); }  // two's complement bit pattern
uint32_t as_uint32(int32_t i) { return static_cast<uint32_t>(i); }

void check_bits(int bits, std::string_view name) {
  require(bits >= 2 && bits <= 8, "packing of layer ", quote(name), " needs 2..8 bits, got ", bits);
}

// Shape checks shared by the packers; `groups` = scale columns.
void check_int_matrix(const IntMatrix& q, std::string_view name) {
  check_bits(q.bits, name);
  require(q.rows > 0 && q.cols > 0 && static_cast<int64_t>(q.codes.size()) == q.rows * q.cols, "layer ",
          quote(name), ": ", q.codes.size(), " codes for shape [", q.rows, ", ", q.cols, "]");
  const int64_t params = q.granularity == IntGranularity::PerTensor ? 1 : q.rows * q.groups_per_row();
  require(static_cast<int64_t>(q.scales.size()) == params && q.zeros.size() == q.scales.size(), "layer ",
          quote(name), ": ", q.scales.size(), " scales and ", q.zeros.size(), " zero points, expected ", params);
}

// Groups per row for the GPTQ/AWQ layouts, which have no per-tensor form.
int64_t gptq_groups(const IntMatrix& q, std::string_view name, const char* format) {
  require(q.granularity != IntGranularity::PerTensor, format, " has no per-tensor scales (layer ", quote(name),
          "); quantize per channel or per group");
  return q.groups_per_row();
}

std::vector<int32_t> trivial_g_idx(int64_t k, int64_t group_size) {
  std::vector<int32_t> g(k);
  for (int64_t c = 0; c < k; ++c) g[c] = static_cast<int32_t>(c / group_size);
  return g;
}

}  // namespace

std::vector<int32_t> pack_rows_int32(std::span<const uint8_t> values, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "pack_rows_int32");
  require(static_cast<int64_t>(values.size()) == rows * cols, "pack_rows_int32: ", values.size(),
          " values for shape [", rows, ", ", cols, "]");
  const int64_t per_word = 32 / bits, words = (cols + per_word - 1) / per_word;
  const uint32_t mask = (1u << bits) - 1;
  std::vector<int32_t> out(rows * words);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t w = 0; w < words; ++w) {
      uint32_t word = 0;
      for (int64_t j = 0; j < per_word && w * per_word + j < cols; ++j) {
        const uint32_t v = values[r * cols + w * per_word + j];
        require(v <= mask, "pack_rows_int32: value ", v, " at [", r, ", ", w * per_word + j, "] needs more than ",
                bits, " bits");
        word |= v << (bits * j);
      }
      out[r * words + w] = as_int32(word);
    }
  }
  return out;
}

std::vector<uint8_t> unpack_rows_int32(std::span<const int32_t> packed, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "unpack_rows_int32");
  const int64_t per_word = 32 / bits, words = (cols + per_word - 1) / per_word;
  require(static_cast<int64_t>(packed.size()) == rows * words, "unpack_rows_int32: ", packed.size(),
          " words, expected ", rows, " x ", words, " for shape [", rows, ", ", cols, "]");
  const uint32_t mask = (1u << bits) - 1;
  std::vector<uint8_t> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] =
          static_cast<uint8_t>((as_uint32(packed[r * words + c / per_word]) >> (bits * (c % per_word))) & mask);
  return out;
}

// ---- compressed-tensors pack-quantized -------------------------------------------------

CompressedTensorsPacked pack_compressed_tensors(const IntMatrix& q, std::string_view name) {
  check_int_matrix(q, name);
  require(q.g_idx.empty(), "compressed-tensors packing of layer ", quote(name),
          " keeps groups in column order; apply the act-order permutation first");
  CompressedTensorsPacked p;
  p.bits = q.bits;
  p.symmetric = q.symmetric;
  p.granularity = q.granularity;
  p.group_size = q.group_size;
  p.weight_shape = {q.rows, q.cols};
  p.weight_packed = pack_rows_int32(q.codes, q.rows, q.cols, q.bits);
  p.weight_scale = q.scales;
  if (!q.symmetric) {
    if (q.granularity == IntGranularity::PerTensor) {
      p.weight_zero_point = {static_cast<int32_t>(q.zeros[0]) - (1 << (q.bits - 1))};
    } else {
      // Packed along N (packed_dim=0): transpose [N, G] -> [G, N], pack rows, transpose back.
      const int64_t groups = q.groups_per_row();
      std::vector<uint8_t> transposed(q.rows * groups);
      for (int64_t r = 0; r < q.rows; ++r)
        for (int64_t g = 0; g < groups; ++g) transposed[g * q.rows + r] = q.zeros[r * groups + g];
      std::vector<int32_t> packed_t = pack_rows_int32(transposed, groups, q.rows, q.bits);
      const int64_t words = static_cast<int64_t>(packed_t.size()) / groups;
      p.weight_zero_point.resize(packed_t.size());
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t w = 0; w < words; ++w) p.weight_zero_point[w * groups + g] = packed_t[g * words + w];
    }
  }
  return p;
}

IntMatrix unpack_compressed_tensors(const CompressedTensorsPacked& p, std::string_view name) {
  check_bits(p.bits, name);
  IntMatrix q;
  q.bits = p.bits;
  q.symmetric = p.symmetric;
  q.granularity = p.granularity;
  q.rows = p.weight_shape[0];
  q.cols = p.weight_shape[1];
  require(q.rows > 0 && q.cols > 0, "layer ", quote(name), ": weight_shape must be positive, got [", q.rows, ", ",
          q.cols, "]");
  q.group_size = p.granularity == IntGranularity::PerGroup ? p.group_size : q.cols;
  require(q.group_size > 0 && q.cols % q.group_size == 0, "group size ", q.group_size, " does not divide input size ",
          q.cols, " of layer ", quote(name));
  const int64_t groups = q.groups_per_row();
  const int64_t params = p.granularity == IntGranularity::PerTensor ? 1 : q.rows * groups;
  require(static_cast<int64_t>(p.weight_scale.size()) == params, "layer ", quote(name), ": weight_scale has ",
          p.weight_scale.size(), " values, expected ", params);
  q.codes = unpack_rows_int32(p.weight_packed, q.rows, q.cols, p.bits);
  q.scales = p.weight_scale;
  const int mid = 1 << (p.bits - 1);
  if (p.symmetric) {
    q.zeros.assign(params, static_cast<uint8_t>(mid));
  } else if (p.granularity == IntGranularity::PerTensor) {
    require(p.weight_zero_point.size() == 1, "layer ", quote(name), ": per-tensor weight_zero_point has ",
            p.weight_zero_point.size(), " values, expected 1");
    const int z = p.weight_zero_point[0] + mid;
    require(z >= 0 && z < (1 << p.bits), "layer ", quote(name), ": zero point ", p.weight_zero_point[0],
            " is outside the ", p.bits, "-bit range");
    q.zeros = {static_cast<uint8_t>(z)};
  } else {
    const int64_t per_word = 32 / p.bits, words = (q.rows + per_word - 1) / per_word;
    require(static_cast<int64_t>(p.weight_zero_point.size()) == words * groups, "layer ", quote(name),
            ": weight_zero_point has ", p.weight_zero_point.size(), " words, expected ", words, " x ", groups);
    std::vector<int32_t> transposed(words * groups);
    for (int64_t w = 0; w < words; ++w)
      for (int64_t g = 0; g < groups; ++g) transposed[g * words + w] = p.weight_zero_point[w * groups + g];
    std::vector<uint8_t> zeros_t = unpack_rows_int32(transposed, groups, q.rows, p.bits);
    q.zeros.resize(params);
    for (int64_t r = 0; r < q.rows; ++r)
      for (int64_t g = 0; g < groups; ++g) q.zeros[r * groups + g] = zeros_t[g * q.rows + r];
  }
  return q;
}

// ---- AutoGPTQ --------------------------------------------------------------------------

GptqPacked pack_gptq(const IntMatrix& q, GptqFormat format, std::string_view name) {
  check_int_matrix(q, name);
  require(q.bits == 2 || q.bits == 4 || q.bits == 8, "AutoGPTQ packing of layer ", quote(name),
          " supports 2, 4 or 8 bits, got ", q.bits);
  const int64_t groups = gptq_groups(q, name, "AutoGPTQ");
  const int64_t per_word = 32 / q.bits, n = q.rows, k = q.cols;
  require(k % per_word == 0, "AutoGPTQ packs ", per_word, " inputs per int32; input size ", k, " of layer ",
          quote(name), " is not a multiple");
  require(n % per_word == 0, "AutoGPTQ packs ", per_word, " zero points per int32; output size ", n, " of layer ",
          quote(name), " is not a multiple");
  GptqPacked p;
  p.bits = q.bits;
  p.format = format;
  p.in_features = k;
  p.out_features = n;
  p.group_size = q.group_size;
  p.g_idx = q.g_idx.empty() ? trivial_g_idx(k, q.group_size) : q.g_idx;
  require(static_cast<int64_t>(p.g_idx.size()) == k, "layer ", quote(name), ": g_idx has ", p.g_idx.size(),
          " entries, expected ", k);

  const int64_t qrows = k / per_word;
  p.qweight.resize(qrows * n);
  for (int64_t r = 0; r < qrows; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      uint32_t word = 0;
      for (int64_t j = 0; j < per_word; ++j) word |= static_cast<uint32_t>(q.codes[o * k + r * per_word + j]) << (q.bits * j);
      p.qweight[r * n + o] = as_int32(word);
    }
  }
  const int64_t zcols = n / per_word;
  const uint32_t mask = (1u << q.bits) - 1;
  p.qzeros.resize(groups * zcols);
  p.scales.resize(groups * n);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t c = 0; c < zcols; ++c) {
      uint32_t word = 0;
      for (int64_t j = 0; j < per_word; ++j) {
        const int64_t o = c * per_word + j;
        int z = q.zeros[q.param_index(o, g)];
        if (format == GptqFormat::V1) {
          require(z > 0, "AutoGPTQ v1 format cannot store zero point 0 (output ", o, ", group ", g, ") of layer ",
                  quote(name), "; use the v2 format");
          z -= 1;
        }
        word |= (static_cast<uint32_t>(z) & mask) << (q.bits * j);
      }
      p.qzeros[g * zcols + c] = as_int32(word);
    }
    for (int64_t o = 0; o < n; ++o) p.scales[g * n + o] = f32_to_f16(q.scales[q.param_index(o, g)]);
  }
  return p;
}

IntMatrix unpack_gptq(const GptqPacked& p, std::string_view name) {
  require(p.bits == 2 || p.bits == 4 || p.bits == 8, "AutoGPTQ layer ", quote(name), " has ", p.bits,
          " bits; 2, 4 or 8 supported");
  const int64_t per_word = 32 / p.bits, n = p.out_features, k = p.in_features;
  require(n > 0 && k > 0 && k % per_word == 0 && n % per_word == 0, "AutoGPTQ layer ", quote(name), ": shape [", n,
          ", ", k, "] is not packable in ", per_word, "s");
  require(p.group_size > 0 && k % p.group_size == 0, "group size ", p.group_size, " does not divide input size ", k,
          " of layer ", quote(name));
  const int64_t groups = k / p.group_size, zcols = n / per_word;
  require(static_cast<int64_t>(p.qweight.size()) == k / per_word * n, "AutoGPTQ layer ", quote(name),
          ": qweight has ", p.qweight.size(), " words, expected ", k / per_word * n);
  require(static_cast<int64_t>(p.qzeros.size()) == groups * zcols, "AutoGPTQ layer ", quote(name), ": qzeros has ",
          p.qzeros.size(), " words, expected ", groups * zcols);
  require(static_cast<int64_t>(p.scales.size()) == groups * n, "AutoGPTQ layer ", quote(name), ": scales has ",
          p.scales.size(), " values, expected ", groups * n);
  require(p.g_idx.empty() || static_cast<int64_t>(p.g_idx.size()) == k, "AutoGPTQ layer ", quote(name),
          ": g_idx has ", p.g_idx.size(), " entries, expected ", k);
  IntMatrix q;
  q.bits = p.bits;
  q.granularity = groups == 1 ? IntGranularity::PerChannel : IntGranularity::PerGroup;
  q.rows = n;
  q.cols = k;
  q.group_size = p.group_size;
  const uint32_t mask = (1u << p.bits) - 1;
  q.codes.resize(n * k);
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t o = 0; o < n; ++o)
      q.codes[o * k + kk] = static_cast<uint8_t>(
          (as_uint32(p.qweight[(kk / per_word) * n + o]) >> (p.bits * (kk % per_word))) & mask);
  q.scales.resize(n * groups);
  q.zeros.resize(n * groups);
  bool all_mid = true;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t o = 0; o < n; ++o) {
      uint32_t z = (as_uint32(p.qzeros[g * zcols + o / per_word]) >> (p.bits * (o % per_word))) & mask;
      if (p.format == GptqFormat::V1) z += 1;  // may read 2^bits for a wrapped 0, as AutoGPTQ does
      if (z > 255) fail("AutoGPTQ layer ", quote(name), ": zero point ", z, " does not fit 8 bits");
      q.zeros[o * groups + g] = static_cast<uint8_t>(z);
      q.scales[o * groups + g] = f16_to_f32(p.scales[g * n + o]);
      all_mid &= z == (1u << (p.bits - 1));
    }
  }
  q.symmetric = all_mid;
  if (!p.g_idx.empty()) {
    for (int64_t kk = 0; kk < k; ++kk) {
      if (p.g_idx[kk] < 0 || p.g_idx[kk] >= groups)
        fail("AutoGPTQ layer ", quote(name), ": g_idx[", kk, "] = ", p.g_idx[kk], " is outside [0, ", groups, ")");
      if (p.g_idx[kk] != kk / p.group_size) q.g_idx = p.g_idx;
    }
  }
  return q;
}

// ---- AutoAWQ GEMM ----------------------------------------------------------------------

AwqPacked pack_awq_gemm(const IntMatrix& q, std::string_view name) {
  check_int_matrix(q, name);
  require(q.bits == 4, "AutoAWQ GEMM packing of layer ", quote(name), " is 4-bit only, got ", q.bits, " bits");
  require(q.g_idx.empty(), "AutoAWQ has no act-order (g_idx) for layer ", quote(name));
  const int64_t groups = gptq_groups(q, name, "AutoAWQ");
  const int64_t n = q.rows, k = q.cols;
  require(n % 8 == 0, "AutoAWQ packs 8 outputs per int32; output size ", n, " of layer ", quote(name),
          " is not a multiple of 8");
  AwqPacked p;
  p.in_features = k;
  p.out_features = n;
  p.group_size = q.group_size;
  const int64_t words = n / 8;
  p.qweight.resize(k * words);
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t c = 0; c < words; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) word |= static_cast<uint32_t>(q.codes[(8 * c + kAwqPackOrder[i]) * k + kk]) << (4 * i);
      p.qweight[kk * words + c] = as_int32(word);
    }
  }
  p.qzeros.resize(groups * words);
  p.scales.resize(groups * n);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t c = 0; c < words; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i)
        word |= static_cast<uint32_t>(q.zeros[q.param_index(8 * c + kAwqPackOrder[i], g)]) << (4 * i);
      p.qzeros[g * words + c] = as_int32(word);
    }
    for (int64_t o = 0; o < n; ++o) p.scales[g * n + o] = f32_to_f16(q.scales[q.param_index(o, g)]);
  }
  return p;
}

IntMatrix unpack_awq_gemm(const AwqPacked& p, std::string_view name) {
  const int64_t n = p.out_features, k = p.in_features;
  require(n > 0 && k > 0 && n % 8 == 0, "AutoAWQ layer ", quote(name), ": shape [", n, ", ", k,
          "] needs an output size that is a multiple of 8");
  require(p.group_size > 0 && k % p.group_size == 0, "group size ", p.group_size, " does not divide input size ", k,
          " of layer ", quote(name));
  const int64_t groups = k / p.group_size, words = n / 8;
  require(static_cast<int64_t>(p.qweight.size()) == k * words, "AutoAWQ layer ", quote(name), ": qweight has ",
          p.qweight.size(), " words, expected ", k * words);
  require(static_cast<int64_t>(p.qzeros.size()) == groups * words, "AutoAWQ layer ", quote(name),
          ": qzeros has ", p.qzeros.size(), " words, expected ", groups * words);
  require(static_cast<int64_t>(p.scales.size()) == groups * n, "AutoAWQ layer ", quote(name), ": scales has ",
          p.scales.size(), " values, expected ", groups * n);
  IntMatrix q;
  q.bits = 4;
  q.symmetric = false;
  q.granularity = groups == 1 ? IntGranularity::PerChannel : IntGranularity::PerGroup;
  q.rows = n;
  q.cols = k;
  q.group_size = p.group_size;
  q.codes.resize(n * k);
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t c = 0; c < words; ++c) {
      const uint32_t word = as_uint32(p.qweight[kk * words + c]);
      for (int i = 0; i < 8; ++i) q.codes[(8 * c + kAwqPackOrder[i]) * k + kk] = static_cast<uint8_t>((word >> (4 * i)) & 15);
    }
  q.scales.resize(n * groups);
  q.zeros.resize(n * groups);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < words; ++c) {
      const uint32_t word = as_uint32(p.qzeros[g * words + c]);
      for (int i = 0; i < 8; ++i) {
        const int64_t o = 8 * c + kAwqPackOrder[i];
        q.zeros[o * groups + g] = static_cast<uint8_t>((word >> (4 * i)) & 15);
        q.scales[o * groups + g] = f16_to_f32(p.scales[g * n + o]);
      }
    }
  return q;
}

}  // namespace qs::formats
