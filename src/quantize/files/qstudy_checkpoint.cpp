#include "quantize/files/qstudy_checkpoint.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/packing.h"

namespace qs::quant::files {

namespace {

using nlohmann::json;
using formats::IntGranularity;

const char* granularity_name(IntGranularity g) {
  return g == IntGranularity::PerTensor ? "tensor" : g == IntGranularity::PerChannel ? "channel" : "group";
}

json layer_entry(const QuantLinear& q) {
  const Scheme& s = q.scheme();
  const QuantStorage st = q.storage();
  json j = {{"scheme", s.name},
            {"full_name", s.full_name()},
            {"group_size", s.group_size},
            {"symmetric", s.symmetric},
            {"outlier_threshold", s.outlier_threshold}};
  if (st.int_matrix) {
    const auto& m = *st.int_matrix;
    j["storage"] = "int";
    j["bits"] = m.bits;
    j["granularity"] = granularity_name(m.granularity);
    j["matrix_group_size"] = m.group_size;
    j["matrix_symmetric"] = m.symmetric;
  } else if (st.fp8) {
    j["storage"] = "fp8";
    j["granularity"] = st.fp8->granularity == formats::Fp8Granularity::PerTensor ? "tensor" : "channel";
  } else if (st.bnb4) {
    const auto& m = *st.bnb4;
    j["storage"] = "bnb4";
    j["type"] = m.type == formats::Bnb4Type::NF4 ? "nf4" : "fp4";
    j["blocksize"] = m.blocksize;
    j["nested"] = m.nested;
    j["nested_blocksize"] = m.nested ? m.nested_absmax.blocksize : 0;
  } else if (st.mxfp4) {
    j["storage"] = "mxfp4";
  } else if (st.nvfp4) {
    j["storage"] = "nvfp4";
  } else {
    j["storage"] = "gguf";
    j["type"] = s.gguf_type;
  }
  return j;
}

// The storage each weight format uses.
const char* storage_of(WeightFormat w) {
  switch (w) {
    case WeightFormat::Int: return "int";
    case WeightFormat::Fp8E4M3: return "fp8";
    case WeightFormat::Nf4:
    case WeightFormat::Fp4: return "bnb4";
    case WeightFormat::MxFp4: return "mxfp4";
    case WeightFormat::NvFp4: return "nvfp4";
    case WeightFormat::Q8_0:
    case WeightFormat::Q4_0: return "gguf";
  }
  return "";
}

class Entry {
 public:
  Entry(const json& j, std::string at) : j_(j), at_(std::move(at)) {
    if (!j_.is_object()) fail(at_, ": expected an object describing the layer's storage");
  }
  const json& need(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end()) fail(at_, ".", key, ": missing");
    return *it;
  }
  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    const json& v = need(key);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      fail(at_, ".", key, ": expected an integer in [", lo, ", ", hi, "]");
    return v.get<int64_t>();
  }
  bool boolean(const char* key) const {
    const json& v = need(key);
    if (!v.is_boolean()) fail(at_, ".", key, ": expected true or false");
    return v.get<bool>();
  }
  std::string string(const char* key) const {
    const json& v = need(key);
    if (!v.is_string()) fail(at_, ".", key, ": expected a string");
    return v.get<std::string>();
  }
  double number(const char* key) const {
    const json& v = need(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(at_, ".", key, ": expected a finite number");
    return v.get<double>();
  }
  const std::string& at() const { return at_; }

 private:
  const json& j_;
  std::string at_;
};

class Reader {
 public:
  Reader(const json& qc, std::string origin) : origin_(std::move(origin)) {
    const std::string at = origin_ + ": quantization_config";
    if (!qc.is_object()) fail(at, ": expected an object");
    auto v = qc.find("version");
    if (v == qc.end() || !v->is_number_integer() || v->get<int64_t>() != kQstudyFormatVersion)
      fail(at, ".version: expected ", kQstudyFormatVersion, " (the qstudy format version this build reads)");
    auto layers = qc.find("layers");
    if (layers == qc.end() || !layers->is_object()) fail(at, ".layers: expected an object {layer name: storage}");
    layers_ = *layers;
  }

  std::unique_ptr<Linear> operator()(const std::string& name, int64_t N, int64_t K, const TensorStore& store) const {
    auto it = layers_.find(name);
    if (it == layers_.end()) return nullptr;
    const Entry e(*it, cat(origin_, ": quantization_config.layers.", name));
    const CheckpointTensors t(store);
    const Scheme s = scheme_of(e);
    const std::string storage = e.string("storage");
    if (storage != storage_of(s.weight))
      fail(e.at(), ".storage: ", quote(storage), " does not hold scheme ", s.name, " (expected ", storage_of(s.weight), ")");
    std::vector<float> bias = read_bias(t, name, N);
    const std::string L = name + ".";
    if (storage == "int") return int_layer(e, t, s, name, N, K, std::move(bias));
    if (storage == "fp8") {
      const bool per_tensor = e.string("granularity") == "tensor";
      formats::Fp8Matrix q;
      q.granularity = per_tensor ? formats::Fp8Granularity::PerTensor : formats::Fp8Granularity::PerChannel;
      q.rows = N, q.cols = K;
      q.codes = bytes(t, L + "q_codes", DType::F8_E4M3, {N, K});
      q.scales = f32(t, L + "q_scales", per_tensor ? 1 : N);
      float input_scale = 0;
      if (const Tensor* is = t.find(L + "q_input_scale")) input_scale = f32(t, is->name, 1)[0];
      if (s.act == ActFormat::Fp8Static && !(input_scale > 0))
        fail(origin_, ": layer ", quote(name), ": ", s.name, " needs q_input_scale > 0");
      return make_fp8_linear(name, std::move(q), s, input_scale, std::move(bias));
    }
    if (storage == "bnb4") {
      formats::Bnb4Matrix q;
      q.type = e.string("type") == "nf4" ? formats::Bnb4Type::NF4 : formats::Bnb4Type::FP4;
      if ((q.type == formats::Bnb4Type::NF4) != (s.weight == WeightFormat::Nf4))
        fail(e.at(), ".type: ", e.string("type"), " does not match scheme ", s.name);
      q.rows = N, q.cols = K;
      q.blocksize = e.integer("blocksize", 1, 1 << 20);
      q.nested = e.boolean("nested");
      q.packed = bytes(t, L + "q_codes", DType::U8, {(N * K + 1) / 2});
      const int64_t nb = q.n_blocks();
      if (q.nested) {
        q.nested_absmax.blocksize = e.integer("nested_blocksize", 1, 1 << 20);
        q.nested_absmax.codes = bytes(t, L + "q_absmax_codes", DType::U8, {nb});
        q.nested_absmax.absmax = f32(t, L + "q_absmax_scales", (nb + q.nested_absmax.blocksize - 1) / q.nested_absmax.blocksize);
        q.nested_offset = f32(t, L + "q_absmax_offset", 1)[0];
      } else {
        q.absmax = f32(t, L + "q_absmax", nb);
      }
      return make_bnb4_linear(name, std::move(q), s, std::move(bias));
    }
    if (storage == "mxfp4" || storage == "nvfp4") {
      const bool nv = storage == "nvfp4";
      const int64_t block = nv ? formats::kNvFp4Block : formats::kMxBlock;
      if (K % block) fail(e.at(), ": blocks of ", block, " do not divide input size ", K);
      std::vector<uint8_t> packed = bytes(t, L + "q_codes", DType::U8, {N, K / 2});
      std::vector<uint8_t> scales = bytes(t, L + "q_scales", nv ? DType::F8_E4M3 : DType::U8, {N, K / block});
      if (!nv) {
        formats::MxFp4Matrix q;
        q.rows = N, q.cols = K, q.packed = std::move(packed), q.scales = std::move(scales);
        return make_mxfp4_linear(name, std::move(q), s, std::move(bias));
      }
      formats::NvFp4Matrix q;
      q.rows = N, q.cols = K, q.packed = std::move(packed), q.block_scales = std::move(scales);
      q.global_scale = f32(t, L + "q_global_scale", 1)[0];
      return make_nvfp4_linear(name, std::move(q), s, std::move(bias));
    }
    // gguf
    if (e.string("type") != s.gguf_type) fail(e.at(), ".type: ", e.string("type"), " does not match scheme ", s.name);
    if (K % 32) fail(e.at(), ": blocks of 32 do not divide input size ", K);
    const int64_t block = s.weight == WeightFormat::Q4_0 ? 18 : 34;
    return make_gguf_linear(name, bytes(t, L + "q_blocks", DType::U8, {N, K / 32 * block}), N, K, s, std::move(bias));
  }

 private:
  Scheme scheme_of(const Entry& e) const {
    const std::string base = e.string("scheme");
    const Scheme* found = nullptr;
    for (const auto& s : all_schemes())
      if (s.name == base) found = &s;
    if (!found) fail(e.at(), ".scheme: unknown scheme ", quote(base));
    Scheme s = *found;
    s.group_size = e.integer("group_size", 0, int64_t{1} << 30);
    s.symmetric = e.boolean("symmetric");
    s.outlier_threshold = static_cast<float>(e.number("outlier_threshold"));
    const std::string full = e.string("full_name");
    if (s.full_name() != full)
      fail(e.at(), ".full_name: ", quote(full), " disagrees with the scheme's parameters (", s.full_name(), ")");
    return s;
  }

  std::unique_ptr<Linear> int_layer(const Entry& e, const CheckpointTensors& t, const Scheme& s,
                                    const std::string& name, int64_t N, int64_t K, std::vector<float> bias) const {
    const std::string L = name + ".";
    formats::IntMatrix q;
    q.bits = static_cast<int>(e.integer("bits", 2, 8));
    q.symmetric = e.boolean("matrix_symmetric");
    const std::string gran = e.string("granularity");
    q.granularity = gran == "tensor" ? IntGranularity::PerTensor : gran == "channel" ? IntGranularity::PerChannel
                    : gran == "group" ? IntGranularity::PerGroup
                                      : (fail(e.at(), ".granularity: expected tensor, channel or group"), IntGranularity::PerGroup);
    q.rows = N, q.cols = K;
    q.group_size = q.granularity == IntGranularity::PerGroup ? e.integer("matrix_group_size", 1, K) : K;
    if (K % q.group_size) fail(e.at(), ": group size ", q.group_size, " does not divide input size ", K);
    const bool int8_acts = s.act == ActFormat::Int8PerToken || s.act == ActFormat::LlmInt8;
    if (int8_acts && (q.bits != 8 || !q.symmetric || q.granularity == IntGranularity::PerGroup))
      fail(e.at(), ": scheme ", s.name, " needs symmetric 8-bit per-channel weights");
    const int64_t params = q.granularity == IntGranularity::PerTensor ? 1 : N * q.groups_per_row();
    const int64_t per_word = 32 / q.bits;
    const Tensor& codes = t.need(L + "q_codes", "packed integer codes");
    t.expect_dtype(codes, {DType::I32}, "codes packed along K");
    t.expect_shape(codes, {N, (K + per_word - 1) / per_word}, "codes packed along K");
    q.codes = formats::unpack_rows_int32(t.copy<int32_t>(codes), N, K, q.bits);
    const Tensor& scales = t.need(L + "q_scales", "integer scales");
    t.expect_dtype(scales, {DType::F32}, "scales");
    t.expect_numel(scales, params, "one scale per row and group");
    q.scales = t.copy<float>(scales);
    if (q.symmetric) q.zeros.assign(params, static_cast<uint8_t>(1 << (q.bits - 1)));
    else q.zeros = bytes(t, L + "q_zeros", DType::U8, q.granularity == IntGranularity::PerTensor
                                                            ? std::vector<int64_t>{1}
                                                            : std::vector<int64_t>{N, q.groups_per_row()});
    if (const Tensor* g = t.find(L + "q_g_idx")) q.g_idx = read_g_idx(t, *g, K, q.group_size);
    return make_int_linear(name, std::move(q), s, std::move(bias));
  }

  static std::vector<uint8_t> bytes(const CheckpointTensors& t, const std::string& name, DType dtype,
                                    const std::vector<int64_t>& shape) {
    const Tensor& x = t.need(name, "qstudy storage");
    t.expect_dtype(x, {dtype}, "qstudy storage");
    t.expect_shape(x, shape, "qstudy storage");
    return t.copy<uint8_t>(x);
  }
  static std::vector<float> f32(const CheckpointTensors& t, const std::string& name, int64_t numel) {
    const Tensor& x = t.need(name, "qstudy storage");
    t.expect_dtype(x, {DType::F32}, "qstudy storage");
    t.expect_numel(x, numel, "qstudy storage");
    std::vector<float> v = t.copy<float>(x);
    for (float f : v)
      if (!std::isfinite(f)) fail(t.where(x), ": value ", f, " is not finite");
    return v;
  }

  json layers_;
  std::string origin_;
};

}  // namespace

json qstudy_config(const std::vector<ModelLinear>& layers) {
  json entries = json::object();
  for (const auto& l : layers)
    if (l.quant) entries[l.name] = layer_entry(*l.quant);
  require(!entries.empty(), "--format qstudy: the model has no quantized layers");
  return {{"quant_method", "qstudy"}, {"version", kQstudyFormatVersion}, {"layers", entries}};
}

std::vector<PlannedTensor> qstudy_tensors(const ModelLinear& layer) {
  const QuantStorage st = layer.quant->storage();
  const std::string L = layer.name + ".";
  std::vector<PlannedTensor> out;
  if (st.int_matrix) {
    const auto& m = *st.int_matrix;
    const int64_t per_word = 32 / m.bits;
    out.push_back(lazy_tensor(L + "q_codes", DType::I32, {m.rows, (m.cols + per_word - 1) / per_word},
                              [&m] { return to_bytes(formats::pack_rows_int32(m.codes, m.rows, m.cols, m.bits)); }));
    const std::vector<int64_t> pshape = m.granularity == IntGranularity::PerTensor
                                            ? std::vector<int64_t>{1}
                                            : std::vector<int64_t>{m.rows, m.groups_per_row()};
    out.push_back(known_tensor(L + "q_scales", DType::F32, pshape, to_bytes(m.scales)));
    if (!m.symmetric) out.push_back(known_tensor(L + "q_zeros", DType::U8, pshape, m.zeros));
    if (!m.g_idx.empty()) out.push_back(known_tensor(L + "q_g_idx", DType::I32, {m.cols}, to_bytes(m.g_idx)));
  } else if (st.fp8) {
    const auto& m = *st.fp8;
    out.push_back(lazy_tensor(L + "q_codes", DType::F8_E4M3, {m.rows, m.cols}, [&m] { return m.codes; }));
    out.push_back(known_tensor(L + "q_scales", DType::F32, {static_cast<int64_t>(m.scales.size())}, to_bytes(m.scales)));
    if (st.static_activation_scale > 0)
      out.push_back(known_tensor(L + "q_input_scale", DType::F32, {1}, to_bytes(&st.static_activation_scale, 4)));
  } else if (st.bnb4) {
    const auto& m = *st.bnb4;
    out.push_back(lazy_tensor(L + "q_codes", DType::U8, {static_cast<int64_t>(m.packed.size())}, [&m] { return m.packed; }));
    if (m.nested) {
      out.push_back(known_tensor(L + "q_absmax_codes", DType::U8, {m.n_blocks()}, m.nested_absmax.codes));
      out.push_back(known_tensor(L + "q_absmax_scales", DType::F32,
                                 {static_cast<int64_t>(m.nested_absmax.absmax.size())}, to_bytes(m.nested_absmax.absmax)));
      out.push_back(known_tensor(L + "q_absmax_offset", DType::F32, {1}, to_bytes(&m.nested_offset, 4)));
    } else {
      out.push_back(known_tensor(L + "q_absmax", DType::F32, {m.n_blocks()}, to_bytes(m.absmax)));
    }
  } else if (st.mxfp4) {
    const auto& m = *st.mxfp4;
    out.push_back(lazy_tensor(L + "q_codes", DType::U8, {m.rows, m.cols / 2}, [&m] { return m.packed; }));
    out.push_back(lazy_tensor(L + "q_scales", DType::U8, {m.rows, m.cols / formats::kMxBlock}, [&m] { return m.scales; }));
  } else if (st.nvfp4) {
    const auto& m = *st.nvfp4;
    out.push_back(lazy_tensor(L + "q_codes", DType::U8, {m.rows, m.cols / 2}, [&m] { return m.packed; }));
    out.push_back(lazy_tensor(L + "q_scales", DType::F8_E4M3, {m.rows, m.cols / formats::kNvFp4Block},
                              [&m] { return m.block_scales; }));
    out.push_back(known_tensor(L + "q_global_scale", DType::F32, {1}, to_bytes(&m.global_scale, 4)));
  } else {
    const auto& blocks = *st.gguf_blocks;
    const int64_t N = layer.linear->out_features();
    out.push_back(lazy_tensor(L + "q_blocks", DType::U8, {N, static_cast<int64_t>(blocks.size()) / N},
                              [&blocks] { return blocks; }));
  }
  return out;
}

LinearFactory qstudy_reader(const json& quantization_config, const std::string& origin) {
  auto reader = std::make_shared<Reader>(quantization_config, origin);
  return [reader](const std::string& name, int64_t out, int64_t in, const TensorStore& store) {
    return (*reader)(name, out, in, store);
  };
}

}  // namespace qs::quant::files
