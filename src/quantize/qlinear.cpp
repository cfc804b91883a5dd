#include "quantize/qlinear.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/qmatmul.h"

namespace qs::quant {

namespace {

using formats::IntMatrix;

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// Packs unsigned codes [N, K] into the kernel layout of `bits` (kernels/qmatmul.h).
void pack_codes(const uint8_t* codes, int64_t N, int64_t K, int bits, std::vector<uint8_t>& lo,
                std::vector<uint8_t>& hi) {
  const int64_t row = kernels::code_row_bytes(bits, K);
  lo.assign(static_cast<size_t>(N * row), 0);
  if (bits == 3) hi.assign(static_cast<size_t>(N * kernels::hi_plane_row_bytes(K)), 0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      const uint8_t c = codes[n * K + k];
      if (bits == 8) lo[n * row + k] = c;
      else if (bits == 4) lo[n * row + k / 2] |= static_cast<uint8_t>((c & 15) << (4 * (k & 1)));
      else {
        lo[n * row + k / 4] |= static_cast<uint8_t>((c & 3) << (2 * (k % 4)));
        hi[n * kernels::hi_plane_row_bytes(K) + k / 8] |= static_cast<uint8_t>(((c >> 2) & 1) << (k % 8));
      }
    }
  }
}

// ---- integer weights ------------------------------------------------------------------------

class IntLinear final : public QuantLinear {
 public:
  IntLinear(const std::string& name, IntMatrix q, const Scheme& s, std::vector<float> bias)
      : QuantLinear(name, q.rows, q.cols, s), q_(std::move(q)) {
    set_bias(std::move(bias));
    const int64_t N = q_.rows, K = q_.cols;
    // Act-order: store columns sorted by group so groups are contiguous for the kernels.
    std::vector<uint8_t> codes = q_.codes;
    if (!q_.g_idx.empty()) {
      perm_.resize(K);
      std::iota(perm_.begin(), perm_.end(), 0);
      std::stable_sort(perm_.begin(), perm_.end(), [&](int32_t a, int32_t b) { return q_.g_idx[a] < q_.g_idx[b]; });
      for (int64_t k = 0; k < K; ++k)
        if (q_.g_idx[perm_[k]] != k / q_.group_size)
          fail("layer ", quote(name), ": act-order groups are not all of size ", q_.group_size);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) codes[n * K + k] = q_.codes[n * K + perm_[k]];
    }
    const int64_t groups = q_.groups_per_row();
    scales_.resize(N * groups);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < groups; ++g) scales_[n * groups + g] = q_.scales[q_.param_index(n, g)];
    if (int8_activations()) {
      require(q_.bits == 8 && q_.symmetric && groups == 1, "layer ", quote(name), ": scheme ", s.name,
              " needs symmetric per-channel 8-bit weights");
      w8_.resize(N * K);
      row_sums_.assign(N, 0);
      for (int64_t i = 0; i < N * K; ++i) {
        w8_[i] = static_cast<int8_t>(static_cast<int>(codes[i]) - 128);
        row_sums_[i / K] += w8_[i];
      }
    } else {
      pack_codes(codes.data(), N, K, q_.bits, lo_, hi_);
      if (!q_.symmetric) {
        zeros_.resize(N * groups);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t g = 0; g < groups; ++g) zeros_[n * groups + g] = q_.zeros[q_.param_index(n, g)];
      }
    }
  }

  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    std::vector<float> permuted;
    if (!perm_.empty()) {
      const int64_t K = in_features();
      permuted.resize(M * K);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) permuted[m * K + k] = x[m * K + perm_[k]];
      x = permuted.data();
    }
    if (int8_activations()) {
      kernels::Int8Args a;
      a.M = M, a.N = out_features(), a.K = in_features();
      a.x = x, a.y = y, a.bias = bias_or_null();
      a.w = w8_.data(), a.w_scale = scales_.data(), a.w_row_sums = row_sums_.data();
      if (scheme().act == ActFormat::LlmInt8) a.outlier_threshold = scheme().outlier_threshold;
      kernels::matmul_int8(a, pool);
      return;
    }
    kernels::WeightOnlyArgs a;
    a.M = M, a.N = out_features(), a.K = in_features();
    a.x = x, a.y = y, a.bias = bias_or_null();
    a.bits = q_.bits;
    a.codes = lo_.data();
    a.codes_hi = hi_.empty() ? nullptr : hi_.data();
    a.group = q_.group_size;
    a.scales = scales_.data();
    a.zeros = zeros_.empty() ? nullptr : zeros_.data();
    kernels::matmul_weight_only(a, pool);
  }
  int64_t weight_bytes() const override {
    const int64_t codes = int8_activations() ? static_cast<int64_t>(w8_.size()) : static_cast<int64_t>(lo_.size() + hi_.size());
    return codes + static_cast<int64_t>(scales_.size()) * 4 + static_cast<int64_t>(zeros_.size());
  }
  std::vector<float> dequantized() const override {
    std::vector<float> w(static_cast<size_t>(q_.rows * q_.cols));
    formats::dequantize_int(q_, w);
    return w;
  }
  QuantStorage storage() const override { return {.int_matrix = &q_}; }

 private:
  bool int8_activations() const {
    return scheme().act == ActFormat::Int8PerToken || scheme().act == ActFormat::LlmInt8;
  }
  IntMatrix q_;
  std::vector<int32_t> perm_;
  std::vector<float> scales_;
  std::vector<uint8_t> lo_, hi_, zeros_;
  std::vector<int8_t> w8_;
  std::vector<int32_t> row_sums_;
};

// ---- FP8 ------------------------------------------------------------------------------------

class Fp8Linear final : public QuantLinear {
 public:
  Fp8Linear(const std::string& name, formats::Fp8Matrix q, const Scheme& s, float static_scale, std::vector<float> bias)
      : QuantLinear(name, q.rows, q.cols, s), q_(std::move(q)), static_scale_(static_scale) {
    set_bias(std::move(bias));
    require(q_.format == formats::Fp8Format::E4M3, "layer ", quote(name), ": FP8 weights must be E4M3");
    row_scales_.resize(q_.rows);
    for (int64_t r = 0; r < q_.rows; ++r) row_scales_[r] = q_.scale_of_row(r);
    if (s.act == ActFormat::Fp8Static)
      require(static_scale > 0 && std::isfinite(static_scale), "layer ", quote(name),
              ": w8a8-fp8-static needs a calibrated activation scale > 0");
  }
  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    kernels::Fp8Args a;
    a.M = M, a.N = out_features(), a.K = in_features();
    a.x = x, a.y = y, a.bias = bias_or_null();
    a.w = q_.codes.data(), a.w_scale = row_scales_.data();
    a.act = scheme().act == ActFormat::Fp8Static    ? kernels::Fp8Args::Act::StaticPerTensor
            : scheme().act == ActFormat::Fp8PerToken ? kernels::Fp8Args::Act::DynamicPerToken
                                                     : kernels::Fp8Args::Act::Bf16;
    a.static_x_scale = static_scale_;
    kernels::matmul_fp8(a, pool);
  }
  int64_t weight_bytes() const override { return static_cast<int64_t>(q_.codes.size() + row_scales_.size() * 4); }
  std::vector<float> dequantized() const override {
    std::vector<float> w(static_cast<size_t>(q_.rows * q_.cols));
    formats::dequantize_fp8(q_, w);
    return w;
  }
  float static_activation_scale() const override { return static_scale_; }
  QuantStorage storage() const override { return {.fp8 = &q_, .static_activation_scale = static_scale_}; }

 private:
  formats::Fp8Matrix q_;
  float static_scale_;
  std::vector<float> row_scales_;
};

// ---- 4-bit lookup formats (bitsandbytes NF4/FP4, MXFP4, NVFP4) -------------------------------

class Lut4Linear : public QuantLinear {
 public:
  Lut4Linear(const std::string& name, int64_t out, int64_t in, const Scheme& s, std::vector<float> bias)
      : QuantLinear(name, out, in, s) {
    set_bias(std::move(bias));
  }
  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    kernels::WeightOnlyArgs a;
    a.M = M, a.N = out_features(), a.K = in_features();
    a.x = x, a.y = y, a.bias = bias_or_null();
    a.bits = 4;
    a.codes = packed_.data();
    a.group = group_;
    a.scales = scales_.data();
    a.lut = lut_.data();
    a.flat_groups = flat_;
    kernels::matmul_weight_only(a, pool);
  }
  int64_t weight_bytes() const override { return static_cast<int64_t>(packed_.size() + scales_.size() * 4); }

 protected:
  // codes: one unsigned 4-bit code per weight [N, K]; scales per group.
  void set_kernel_data(const std::vector<uint8_t>& codes, std::vector<float> scales, int64_t group, bool flat,
                       const float* lut) {
    std::vector<uint8_t> unused;
    pack_codes(codes.data(), out_features(), in_features(), 4, packed_, unused);
    scales_ = std::move(scales);
    group_ = group;
    flat_ = flat;
    std::copy(lut, lut + 16, lut_.begin());
  }

 private:
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;
  std::array<float, 16> lut_{};
  int64_t group_ = 0;
  bool flat_ = false;
};

class Bnb4Linear final : public Lut4Linear {
 public:
  Bnb4Linear(const std::string& name, formats::Bnb4Matrix q, const Scheme& s, std::vector<float> bias)
      : Lut4Linear(name, q.rows, q.cols, s, std::move(bias)), q_(std::move(q)) {
    std::vector<uint8_t> codes(static_cast<size_t>(q_.numel()));
    for (int64_t i = 0; i < q_.numel(); ++i) codes[i] = q_.code(i);
    set_kernel_data(codes, formats::bnb4_block_absmax(q_), q_.blocksize, true, formats::bnb4_codebook(q_.type).data());
  }
  std::vector<float> dequantized() const override {
    std::vector<float> w(static_cast<size_t>(q_.numel()));
    formats::dequantize_bnb4(q_, w);
    return w;
  }
  QuantStorage storage() const override { return {.bnb4 = &q_}; }

 private:
  formats::Bnb4Matrix q_;
};

std::array<float, 16> e2m1_table() {
  std::array<float, 16> t{};
  for (int c = 0; c < 16; ++c) t[c] = formats::e2m1_to_f32(static_cast<uint8_t>(c));
  return t;
}

class MxFp4Linear final : public Lut4Linear {
 public:
  MxFp4Linear(const std::string& name, formats::MxFp4Matrix q, const Scheme& s, std::vector<float> bias)
      : Lut4Linear(name, q.rows, q.cols, s, std::move(bias)), q_(std::move(q)) {
    std::vector<uint8_t> codes(static_cast<size_t>(q_.rows * q_.cols));
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = q_.code(static_cast<int64_t>(i));
    std::vector<float> scales(q_.scales.size());
    for (size_t i = 0; i < scales.size(); ++i) scales[i] = formats::e8m0_to_f32(q_.scales[i]);
    const auto lut = e2m1_table();
    set_kernel_data(codes, std::move(scales), formats::kMxBlock, false, lut.data());
  }
  std::vector<float> dequantized() const override {
    std::vector<float> w(static_cast<size_t>(q_.rows * q_.cols));
    formats::dequantize_mxfp4(q_, w);
    return w;
  }
  QuantStorage storage() const override { return {.mxfp4 = &q_}; }

 private:
  formats::MxFp4Matrix q_;
};

class NvFp4Linear final : public Lut4Linear {
 public:
  NvFp4Linear(const std::string& name, formats::NvFp4Matrix q, const Scheme& s, std::vector<float> bias)
      : Lut4Linear(name, q.rows, q.cols, s, std::move(bias)), q_(std::move(q)) {
    std::vector<uint8_t> codes(static_cast<size_t>(q_.rows * q_.cols));
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = q_.code(static_cast<int64_t>(i));
    std::vector<float> scales(q_.block_scales.size());
    for (size_t i = 0; i < scales.size(); ++i)
      scales[i] = formats::fp8_e4m3_to_f32(q_.block_scales[i]) * q_.global_scale;
    const auto lut = e2m1_table();
    set_kernel_data(codes, std::move(scales), formats::kNvFp4Block, false, lut.data());
  }
  std::vector<float> dequantized() const override {
    std::vector<float> w(static_cast<size_t>(q_.rows * q_.cols));
    formats::dequantize_nvfp4(q_, w);
    return w;
  }
  QuantStorage storage() const override { return {.nvfp4 = &q_}; }

 private:
  formats::NvFp4Matrix q_;
};

// ---- GGUF blocks ----------------------------------------------------------------------------

class GgufLinear final : public QuantLinear {
 public:
  GgufLinear(const std::string& name, std::vector<uint8_t> blocks, int64_t out, int64_t in, const Scheme& s,
             std::vector<float> bias)
      : QuantLinear(name, out, in, s), blocks_(std::move(blocks)) {
    set_bias(std::move(bias));
    const size_t block = s.weight == WeightFormat::Q4_0 ? sizeof(formats::BlockQ4_0) : sizeof(formats::BlockQ8_0);
    require(in % 32 == 0 && blocks_.size() == static_cast<size_t>(out * (in / 32)) * block, "layer ", quote(name),
            ": GGUF ", s.gguf_type, " data has ", blocks_.size(), " bytes, expected ", out * (in / 32) * block);
  }
  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    kernels::GgufArgs a;
    a.M = M, a.N = out_features(), a.K = in_features();
    a.x = x, a.y = y, a.bias = bias_or_null();
    a.blocks = blocks_.data();
    a.q4_0 = q4();
    kernels::matmul_gguf(a, pool);
  }
  int64_t weight_bytes() const override { return static_cast<int64_t>(blocks_.size()); }
  std::vector<float> dequantized() const override {
    const int64_t K = in_features(), nb = K / 32;
    std::vector<float> w(static_cast<size_t>(out_features() * K));
    for (int64_t n = 0; n < out_features(); ++n) {
      std::span<float> row(w.data() + n * K, static_cast<size_t>(K));
      if (q4())
        formats::dequantize_row_q4_0({reinterpret_cast<const formats::BlockQ4_0*>(blocks_.data()) + n * nb,
                                      static_cast<size_t>(nb)}, row);
      else
        formats::dequantize_row_q8_0({reinterpret_cast<const formats::BlockQ8_0*>(blocks_.data()) + n * nb,
                                      static_cast<size_t>(nb)}, row);
    }
    return w;
  }
  QuantStorage storage() const override { return {.gguf_blocks = &blocks_}; }

 private:
  bool q4() const { return scheme().weight == WeightFormat::Q4_0; }
  std::vector<uint8_t> blocks_;
};

template <class Block>
std::vector<uint8_t> as_bytes(const std::vector<Block>& blocks) {
  std::vector<uint8_t> out(blocks.size() * sizeof(Block));
  std::memcpy(out.data(), blocks.data(), out.size());
  return out;
}

}  // namespace

// ---- QuantLinear ----------------------------------------------------------------------------

void QuantLinear::fake_quant_activations(const float* x, int64_t M, float* out) const {
  const int64_t K = in_features();
  switch (scheme_.act) {
    case ActFormat::None:
      for (int64_t i = 0; i < M * K; ++i) out[i] = round_bf16(x[i]);
      return;
    case ActFormat::Int8PerToken: {
      std::vector<int8_t> q(K);
      for (int64_t m = 0; m < M; ++m) {
        const float s = kernels::quantize_row_int8(x + m * K, K, q.data());
        for (int64_t k = 0; k < K; ++k) out[m * K + k] = q[k] * s;
      }
      return;
    }
    case ActFormat::LlmInt8: {
      std::vector<char> outlier(K, 0);
      for (int64_t i = 0; i < M * K; ++i)
        if (std::fabs(x[i]) > scheme_.outlier_threshold) outlier[i % K] = 1;
      std::vector<float> rest(K);
      std::vector<int8_t> q(K);
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t k = 0; k < K; ++k) rest[k] = outlier[k] ? 0.0f : x[m * K + k];
        const float s = kernels::quantize_row_int8(rest.data(), K, q.data());
        for (int64_t k = 0; k < K; ++k) out[m * K + k] = outlier[k] ? x[m * K + k] : q[k] * s;
      }
      return;
    }
    case ActFormat::Fp8PerToken:
    case ActFormat::Fp8Static: {
      for (int64_t m = 0; m < M; ++m) {
        const float* row = x + m * K;
        float s;
        if (scheme_.act == ActFormat::Fp8Static) {
          s = static_activation_scale();
        } else {
          float amax = 0;
          for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(row[k]));
          s = std::max(amax / formats::kFp8E4M3Max, formats::kFp8MinTokenScale);
        }
        for (int64_t k = 0; k < K; ++k)
          out[m * K + k] = formats::fp8_e4m3_to_f32(formats::f32_to_fp8_e4m3(row[k] / s)) * s;
      }
      return;
    }
    case ActFormat::Q8_0Blocks: {
      std::vector<formats::BlockQ8_0> blocks(K / 32);
      for (int64_t m = 0; m < M; ++m) {
        formats::quantize_row_q8_0({x + m * K, static_cast<size_t>(K)}, blocks);
        formats::dequantize_row_q8_0(blocks, {out + m * K, static_cast<size_t>(K)});
      }
      return;
    }
  }
}

void QuantLinear::reference_forward(const float* x, int64_t M, float* y) const {
  const int64_t N = out_features(), K = in_features();
  std::vector<float> xq(M * K);
  fake_quant_activations(x, M, xq.data());
  std::vector<float> w = dequantized();
  if (scheme_.weight_only())
    for (auto& v : w) v = round_bf16(v);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(xq[m * K + k]) * w[n * K + k];
      y[m * N + n] = static_cast<float>(acc) + (bias().empty() ? 0.0f : bias()[n]);
    }
}

// ---- factories ------------------------------------------------------------------------------

std::unique_ptr<QuantLinear> make_int_linear(const std::string& name, formats::IntMatrix q, const Scheme& scheme,
                                             std::vector<float> bias) {
  return std::make_unique<IntLinear>(name, std::move(q), scheme, std::move(bias));
}
std::unique_ptr<QuantLinear> make_fp8_linear(const std::string& name, formats::Fp8Matrix q, const Scheme& scheme,
                                             float static_act_scale, std::vector<float> bias) {
  return std::make_unique<Fp8Linear>(name, std::move(q), scheme, static_act_scale, std::move(bias));
}
std::unique_ptr<QuantLinear> make_bnb4_linear(const std::string& name, formats::Bnb4Matrix q, const Scheme& scheme,
                                              std::vector<float> bias) {
  return std::make_unique<Bnb4Linear>(name, std::move(q), scheme, std::move(bias));
}
std::unique_ptr<QuantLinear> make_mxfp4_linear(const std::string& name, formats::MxFp4Matrix q, const Scheme& scheme,
                                               std::vector<float> bias) {
  return std::make_unique<MxFp4Linear>(name, std::move(q), scheme, std::move(bias));
}
std::unique_ptr<QuantLinear> make_nvfp4_linear(const std::string& name, formats::NvFp4Matrix q, const Scheme& scheme,
                                               std::vector<float> bias) {
  return std::make_unique<NvFp4Linear>(name, std::move(q), scheme, std::move(bias));
}
std::unique_ptr<QuantLinear> make_gguf_linear(const std::string& name, std::vector<uint8_t> blocks, int64_t out,
                                              int64_t in, const Scheme& scheme, std::vector<float> bias) {
  return std::make_unique<GgufLinear>(name, std::move(blocks), out, in, scheme, std::move(bias));
}

formats::ScaleDType scale_dtype_for(const Linear& layer) {
  const std::string f = layer.format();
  return f == "bf16" ? formats::ScaleDType::BF16 : f == "f16" ? formats::ScaleDType::F16 : formats::ScaleDType::F32;
}

formats::IntQuantConfig int_config(const Scheme& s, int64_t in, formats::ScaleDType scale_dtype) {
  formats::IntQuantConfig c;
  c.scale_dtype = scale_dtype;
  c.bits = s.bits;
  c.symmetric = s.symmetric;
  if (s.group_size == 0 || s.group_size >= in) {
    c.granularity = formats::IntGranularity::PerChannel;
    c.group_size = in;
  } else {
    c.granularity = formats::IntGranularity::PerGroup;
    c.group_size = s.group_size;
  }
  // LLM.int8() uses bitsandbytes' vector-wise absmax / 127; per-token int8 activations pair with
  // compressed-tensors' full-range symmetric int8 weights (amax / 127.5).
  c.range = s.act == ActFormat::LlmInt8 ? formats::SymmetricRange::Restricted : formats::SymmetricRange::Full;
  return c;
}

bool fits(const Scheme& s, int64_t in, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  switch (s.weight) {
    case WeightFormat::Int:
      if (s.group_size > 0 && s.group_size < in && in % s.group_size != 0)
        return no(cat("group size ", s.group_size, " does not divide input size ", in));
      return true;
    case WeightFormat::MxFp4:
      if (in % formats::kMxBlock) return no(cat("MXFP4 blocks of 32 do not divide input size ", in));
      return true;
    case WeightFormat::NvFp4:
      if (in % formats::kNvFp4Block) return no(cat("NVFP4 blocks of 16 do not divide input size ", in));
      return true;
    case WeightFormat::Q8_0:
    case WeightFormat::Q4_0:
      if (in % 32) return no(cat(s.gguf_type, " blocks of 32 do not divide input size ", in));
      return true;
    default:
      return true;
  }
}

std::unique_ptr<QuantLinear> quantize_rtn(const std::string& name, std::span<const float> w, int64_t out, int64_t in,
                                          const Scheme& s, const RtnOptions& o, std::vector<float> bias) {
  std::string why;
  if (!fits(s, in, &why)) fail("layer ", quote(name), ": ", why);
  switch (s.weight) {
    case WeightFormat::Int: {
      formats::MseSearch mse;
      formats::IntMatrix q =
          formats::quantize_int(w, out, in, int_config(s, in, o.scale_dtype), name, o.mse_clip ? &mse : nullptr);
      return make_int_linear(name, std::move(q), s, std::move(bias));
    }
    case WeightFormat::Fp8E4M3:
      return make_fp8_linear(name,
                             formats::quantize_fp8(w, out, in, formats::Fp8Format::E4M3,
                                                   formats::Fp8Granularity::PerChannel, name),
                             s, o.static_act_scale, std::move(bias));
    case WeightFormat::Nf4:
    case WeightFormat::Fp4:
      return make_bnb4_linear(name,
                              formats::quantize_bnb4(w, out, in,
                                                     s.weight == WeightFormat::Nf4 ? formats::Bnb4Type::NF4
                                                                                   : formats::Bnb4Type::FP4,
                                                     s.double_quant, name, s.group_size),
                              s, std::move(bias));
    case WeightFormat::MxFp4:
      return make_mxfp4_linear(name, formats::quantize_mxfp4(w, out, in, name), s, std::move(bias));
    case WeightFormat::NvFp4:
      return make_nvfp4_linear(name, formats::quantize_nvfp4(w, out, in, name), s, std::move(bias));
    case WeightFormat::Q8_0:
      return make_gguf_linear(name, as_bytes(formats::quantize_q8_0(w, out, in, name)), out, in, s, std::move(bias));
    case WeightFormat::Q4_0:
      return make_gguf_linear(name, as_bytes(formats::quantize_q4_0(w, out, in, name)), out, in, s, std::move(bias));
  }
  fail("layer ", quote(name), ": scheme ", s.name, " has no quantizer");
}

}  // namespace qs::quant
