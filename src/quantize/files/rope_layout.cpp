#include "quantize/files/rope_layout.h"

#include <algorithm>

#include "core/error.h"
#include "quantize/qlinear.h"

namespace qs::quant::files {

namespace {

// src[r]: the Meta row that becomes Hugging Face row r.
std::vector<int64_t> source_rows(int n_heads, int head_dim) {
  std::vector<int64_t> src(static_cast<size_t>(n_heads) * head_dim);
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int t = 0; t < 2; ++t)
      for (int i = 0; i < half; ++i) src[h * head_dim + t * half + i] = h * head_dim + 2 * i + t;
  return src;
}

// Rows of `row_len` elements of `v`, reordered by `src`.
template <class T>
std::vector<T> permute_rows(const std::vector<T>& v, const std::vector<int64_t>& src, const std::string& name) {
  const int64_t rows = static_cast<int64_t>(src.size());
  require(rows > 0 && v.size() % rows == 0, "layer ", quote(name), ": ", v.size(), " values do not split into ", rows,
          " rows");
  const int64_t len = static_cast<int64_t>(v.size()) / rows;
  std::vector<T> out(v.size());
  for (int64_t r = 0; r < rows; ++r) std::copy_n(v.begin() + src[r] * len, len, out.begin() + r * len);
  return out;
}

}  // namespace

std::unique_ptr<Linear> to_rotate_half_rows(const Linear& layer, int n_heads, int head_dim) {
  const std::string& name = layer.name();
  const int64_t N = layer.out_features(), K = layer.in_features();
  require(head_dim % 2 == 0 && N == int64_t{n_heads} * head_dim, "layer ", quote(name), ": ", N,
          " rows are not ", n_heads, " heads of an even head_dim ", head_dim);
  const std::vector<int64_t> src = source_rows(n_heads, head_dim);
  std::vector<float> bias = layer.bias().empty() ? std::vector<float>{} : permute_rows(layer.bias(), src, name);
  const auto* q = dynamic_cast<const QuantLinear*>(&layer);
  if (!q) {
    const std::string fmt = layer.format();
    require(fmt == "bf16" || fmt == "f32", "layer ", quote(name), ": a ", fmt,
            " dense weight cannot be re-laid out (bf16 and f32 can)");
    auto out = make_owned_dense_linear(name, permute_rows(layer.dequantized(), src, name), N, K,
                                       fmt == "bf16" ? DType::BF16 : DType::F32);
    out->set_bias(std::move(bias));
    return out;
  }
  const QuantStorage st = q->storage();
  const Scheme& s = q->scheme();
  if (st.int_matrix) {
    formats::IntMatrix m = *st.int_matrix;
    m.codes = permute_rows(m.codes, src, name);
    if (m.granularity != formats::IntGranularity::PerTensor) {
      m.scales = permute_rows(m.scales, src, name);
      m.zeros = permute_rows(m.zeros, src, name);
    }
    return make_int_linear(name, std::move(m), s, std::move(bias));
  }
  if (st.fp8) {
    formats::Fp8Matrix m = *st.fp8;
    m.codes = permute_rows(m.codes, src, name);
    if (m.granularity == formats::Fp8Granularity::PerChannel) m.scales = permute_rows(m.scales, src, name);
    return make_fp8_linear(name, std::move(m), s, st.static_activation_scale, std::move(bias));
  }
  if (st.mxfp4) {
    formats::MxFp4Matrix m = *st.mxfp4;
    m.packed = permute_rows(m.packed, src, name);
    m.scales = permute_rows(m.scales, src, name);
    return make_mxfp4_linear(name, std::move(m), s, std::move(bias));
  }
  if (st.nvfp4) {
    formats::NvFp4Matrix m = *st.nvfp4;
    m.packed = permute_rows(m.packed, src, name);
    m.block_scales = permute_rows(m.block_scales, src, name);
    return make_nvfp4_linear(name, std::move(m), s, std::move(bias));
  }
  if (st.gguf_blocks) return make_gguf_linear(name, permute_rows(*st.gguf_blocks, src, name), N, K, s, std::move(bias));
  formats::Bnb4Matrix m = *st.bnb4;
  require(K % m.blocksize == 0, "layer ", quote(name), ": bitsandbytes blocks of ", m.blocksize,
          " span rows of ", K, " inputs, so rows cannot be moved exactly");
  m.packed = permute_rows(m.packed, src, name);
  if (!m.nested) {
    m.absmax = permute_rows(m.absmax, src, name);
  } else {
    const int64_t per_row = K / m.blocksize, group = m.nested_absmax.blocksize;
    for (int64_t r = 0; r < N; ++r)
      require((r * per_row) / group == (src[r] * per_row) / group && ((r + 1) * per_row - 1) / group == (r * per_row) / group,
              "layer ", quote(name), ": moving row ", src[r], " to ", r,
              " crosses a group of the double-quantized statistics (blocks of ", group, ")");
    m.nested_absmax.codes = permute_rows(m.nested_absmax.codes, src, name);
  }
  return make_bnb4_linear(name, std::move(m), s, std::move(bias));
}

}  // namespace qs::quant::files
