#include "quantize/files/bitsandbytes_checkpoint.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/nf4.h"

namespace qs::quant::files {

namespace {

using nlohmann::json;
using formats::Bnb4Matrix;
using formats::Bnb4Type;

const char* type_name(Bnb4Type t) { return t == Bnb4Type::NF4 ? "nf4" : "fp4"; }

// torch dtype names as bitsandbytes writes them (str(dtype) without "torch.").
const char* torch_dtype_name(DType d) {
  return d == DType::BF16 ? "bfloat16" : d == DType::F16 ? "float16" : "float32";
}

// A double as Python's json.dumps writes a float: shortest round-trip digits, always with a
// fraction or an exponent.
std::string python_float(double v) {
  require(std::isfinite(v), "bitsandbytes: nested_offset ", v, " is not finite");
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// The quant_state blob: JSON of QuantState.as_dict's non-tensor items, in its key order.
std::string quant_state_json(const Bnb4Matrix& m, DType dtype) {
  std::string s = cat("{\"quant_type\": \"", type_name(m.type), "\", \"blocksize\": ", m.blocksize, ", \"dtype\": \"",
                      torch_dtype_name(dtype), "\", \"shape\": [", m.rows, ", ", m.cols, "]");
  if (m.nested)
    s += cat(", \"nested_blocksize\": ", m.nested_absmax.blocksize, ", \"nested_dtype\": \"float32\", \"nested_offset\": ",
             python_float(m.nested_offset));
  return s + "}";
}

// SCB (row absmax) whose f32 quotient SCB / 127 is exactly the row scale s. The scale was
// computed as amax / 127, so such a value exists next to s * 127.
float scb_for_scale(float s, const std::string& layer) {
  const float guess = s * 127.0f;
  const uint32_t bits = f32_bits(guess);
  for (uint32_t d = 0; d <= 64; ++d)
    for (int sign : {1, -1}) {
      const float v = f32_from_bits(bits + static_cast<uint32_t>(sign) * d);
      if (v >= 0 && f32_bits(v / 127.0f) == f32_bits(s)) return v;
    }
  fail("layer ", quote(layer), ": row scale ", s, " is not absmax / 127 of any f32 absmax (not an LLM.int8() scale)");
}

bool ulps_close(float a, float b, uint32_t ulps) {
  if (f32_bits(a) == f32_bits(b)) return true;
  if (!std::isfinite(a) || !std::isfinite(b) || (a < 0) != (b < 0)) return a == b;
  const uint32_t x = f32_bits(std::fabs(a)), y = f32_bits(std::fabs(b));
  return (x > y ? x - y : y - x) <= ulps;
}

struct Settings {
  bool four_bit = false;
  std::string quant_type;  // 4-bit
  bool double_quant = false;
  float threshold = 6.0f;
};

Settings parse_settings(const json& qc, const std::string& origin) {
  if (!qc.is_object()) fail(origin, ": quantization_config must be an object");
  const std::string at = origin + ": quantization_config.";
  auto flag = [&](const char* key) {
    auto it = qc.find(key);
    if (it == qc.end() || it->is_null()) return false;
    if (!it->is_boolean()) fail(at, key, ": expected true or false");
    return it->get<bool>();
  };
  Settings s;
  const bool four = flag("load_in_4bit") || flag("_load_in_4bit");
  const bool eight = flag("load_in_8bit") || flag("_load_in_8bit");
  if (four == eight)
    fail(at, "load_in_4bit / load_in_8bit: expected exactly one of them to be true, got ", four ? "both" : "neither");
  s.four_bit = four;
  if (flag("llm_int8_has_fp16_weight"))
    fail(at, "llm_int8_has_fp16_weight is true: the weights are stored in 16-bit, not quantized");
  if (auto it = qc.find("llm_int8_threshold"); it != qc.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() >= 0) || !std::isfinite(it->get<double>()))
      fail(at, "llm_int8_threshold: expected a number >= 0");
    s.threshold = it->get<float>();
  }
  if (four) {
    s.quant_type = "fp4";  // BitsAndBytesConfig's default
    if (auto it = qc.find("bnb_4bit_quant_type"); it != qc.end() && !it->is_null()) {
      if (!it->is_string() || (it->get<std::string>() != "nf4" && it->get<std::string>() != "fp4"))
        fail(at, "bnb_4bit_quant_type: expected \"nf4\" or \"fp4\"");
      s.quant_type = it->get<std::string>();
    }
    s.double_quant = flag("bnb_4bit_use_double_quant");
    if (auto it = qc.find("bnb_4bit_quant_storage"); it != qc.end() && !it->is_null() && *it != "uint8")
      fail(at, "bnb_4bit_quant_storage: ", it->dump(), " is not supported (expected \"uint8\")");
  }
  return s;
}

class Reader {
 public:
  Reader(Settings s, std::string origin) : s_(std::move(s)), origin_(std::move(origin)) {}

  std::unique_ptr<Linear> operator()(const std::string& name, int64_t N, int64_t K, const TensorStore& store) const {
    const CheckpointTensors t(store);
    const Tensor* state = nullptr;
    for (const char* type : {"nf4", "fp4"})
      if (const Tensor* st = t.find(name + ".weight.quant_state.bitsandbytes__" + type)) state = st;
    if (state) return four_bit(t, *state, name, N, K);
    if (t.has(name + ".SCB")) return eight_bit(t, name, N, K);
    if (const Tensor* w = t.find(name + ".weight"); w && (w->dtype == DType::U8 || w->dtype == DType::I8))
      fail(t.where(*w), ": quantized weight without its state (expected ",
           s_.four_bit ? "weight.quant_state.bitsandbytes__nf4 / __fp4" : "SCB", ")");
    return nullptr;  // a layer left in 16-bit (llm_int8_skip_modules)
  }

 private:
  std::unique_ptr<Linear> four_bit(const CheckpointTensors& t, const Tensor& state, const std::string& name, int64_t N,
                                   int64_t K) const {
    const std::string type = state.name.substr(state.name.rfind("__") + 2);
    if (!s_.four_bit) fail(t.where(state), ": a 4-bit quant state in a load_in_8bit checkpoint");
    if (type != s_.quant_type)
      fail(t.where(state), ": layer is ", type, " but the config says bnb_4bit_quant_type ", quote(s_.quant_type));
    t.expect_dtype(state, {DType::U8}, "UTF-8 JSON bytes");
    const std::string text(static_cast<const char*>(state.data), state.nbytes);
    json j;
    try {
      j = json::parse(text);
    } catch (const json::parse_error& e) {
      fail(t.where(state), ": quant state is not valid JSON (error at byte ", e.byte, ")");
    } catch (const json::out_of_range&) {  // a number beyond double/int64 range
      fail(t.where(state), ": invalid JSON: a number is out of range");
    }
    if (!j.is_object()) fail(t.where(state), ": quant state must be a JSON object");
    static const char* kKeys[] = {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype",
                                  "nested_offset"};
    for (auto it = j.begin(); it != j.end(); ++it)
      if (std::find_if(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return it.key() == k; }) ==
          std::end(kKeys))
        fail(t.where(state), ": unexpected quant state key ", quote(it.key()));
    auto get = [&](const char* key) -> const json& {
      auto it = j.find(key);
      if (it == j.end()) fail(t.where(state), ": quant state has no ", quote(key));
      return *it;
    };
    if (get("quant_type") != type) fail(t.where(state), ": quant state quant_type ", get("quant_type").dump(), ", expected \"", type, "\"");
    const json& bs = get("blocksize");
    const auto power_of_two = [](int64_t v) { return v >= 32 && v <= 4096 && (v & (v - 1)) == 0; };
    if (!bs.is_number_integer() || !power_of_two(bs.get<int64_t>()))
      fail(t.where(state), ": quant state blocksize ", bs.dump(), " is not a power of two in [32, 4096]");
    const json& dtype = get("dtype");
    if (dtype != "bfloat16" && dtype != "float16" && dtype != "float32")
      fail(t.where(state), ": quant state dtype ", dtype.dump(), " is not bfloat16, float16 or float32");
    const json& shape = get("shape");
    if (shape != json::array({N, K}))
      fail(t.where(state), ": quant state shape ", shape.dump(), " disagrees with the layer's [", N, ", ", K, "]");
    Bnb4Matrix m;
    m.type = type == "nf4" ? Bnb4Type::NF4 : Bnb4Type::FP4;
    m.rows = N, m.cols = K;
    m.blocksize = bs.get<int64_t>();
    m.nested = j.contains("nested_offset") || j.contains("nested_blocksize") || j.contains("nested_dtype");
    const int64_t nb = m.n_blocks();
    const std::string W = name + ".weight";
    const Tensor& weight = t.need(W, "packed 4-bit weight");
    t.expect_dtype(weight, {DType::U8}, "two 4-bit codes per byte");
    t.expect_numel(weight, (N * K + 1) / 2, "packed 4-bit weight");
    m.packed = t.copy<uint8_t>(weight);
    const Tensor& map = t.need(W + ".quant_map", "4-bit codebook");
    t.expect_dtype(map, {DType::F32}, "codebook");
    t.expect_numel(map, 16, "16-entry codebook");
    const auto& book = formats::bnb4_codebook(m.type);
    for (int i = 0; i < 16; ++i)
      if (!ulps_close(map.as<float>()[i], book[i], 2))
        fail(t.where(map), ": entry ", i, " is ", map.as<float>()[i], ", expected ", book[i],
             " (the bitsandbytes ", type, " codebook; custom maps are not supported)");
    const Tensor& absmax = t.need(W + ".absmax", "per-block absmax");
    if (!m.nested) {
      t.expect_dtype(absmax, {DType::F32}, "per-block absmax");
      t.expect_numel(absmax, nb, cat("one absmax per block of ", m.blocksize));
      m.absmax = t.copy<float>(absmax);
      for (float a : m.absmax)
        if (!std::isfinite(a) || a < 0) fail(t.where(absmax), ": absmax ", a, " is not a finite value >= 0");
    } else {
      const json& nbs = get("nested_blocksize");
      if (!nbs.is_number_integer() || !power_of_two(nbs.get<int64_t>()))
        fail(t.where(state), ": quant state nested_blocksize ", nbs.dump(), " is not a power of two in [32, 4096]");
      if (get("nested_dtype") != "float32")
        fail(t.where(state), ": quant state nested_dtype ", get("nested_dtype").dump(), ", expected \"float32\"");
      const json& off = get("nested_offset");
      if (!off.is_number() || !std::isfinite(off.get<double>()))
        fail(t.where(state), ": quant state nested_offset must be a finite number");
      m.nested_offset = static_cast<float>(off.get<double>());
      m.nested_absmax.blocksize = nbs.get<int64_t>();
      t.expect_dtype(absmax, {DType::U8}, "8-bit codes of the absmax (double quantization)");
      t.expect_numel(absmax, nb, cat("one absmax code per block of ", m.blocksize));
      m.nested_absmax.codes = t.copy<uint8_t>(absmax);
      const Tensor& absmax2 = t.need(W + ".nested_absmax", "absmax of the absmax (double quantization)");
      t.expect_dtype(absmax2, {DType::F32}, "nested absmax");
      t.expect_numel(absmax2, (nb + m.nested_absmax.blocksize - 1) / m.nested_absmax.blocksize,
                     cat("one per ", m.nested_absmax.blocksize, " absmax codes"));
      m.nested_absmax.absmax = t.copy<float>(absmax2);
      for (float a : m.nested_absmax.absmax)
        if (!std::isfinite(a) || a < 0) fail(t.where(absmax2), ": absmax ", a, " is not a finite value >= 0");
      const Tensor& map2 = t.need(W + ".nested_quant_map", "8-bit dynamic map (double quantization)");
      t.expect_dtype(map2, {DType::F32}, "dynamic map");
      t.expect_numel(map2, 256, "256-entry dynamic map");
      // torch's linspace may differ from the exact map by an ulp or two (formats/nf4.h).
      const auto& dyn = formats::bnb_dynamic_map();
      for (int i = 0; i < 256; ++i)
        if (!ulps_close(map2.as<float>()[i], dyn[i], 4))
          fail(t.where(map2), ": entry ", i, " is ", map2.as<float>()[i], ", expected ", dyn[i],
               " (bitsandbytes' signed dynamic map; custom maps are not supported)");
    }
    Scheme s = find_scheme(type + std::string(m.nested ? "-dq" : ""));
    s.group_size = m.blocksize;
    return make_bnb4_linear(name, std::move(m), s, read_bias(t, name, N));
  }

  std::unique_ptr<Linear> eight_bit(const CheckpointTensors& t, const std::string& name, int64_t N, int64_t K) const {
    const Tensor& scb = t.need(name + ".SCB", "LLM.int8() row absmax");
    if (s_.four_bit) fail(t.where(scb), ": an 8-bit SCB in a load_in_4bit checkpoint");
    const Tensor& weight = t.need(name + ".weight", "LLM.int8() weight");
    t.expect_dtype(weight, {DType::I8}, "int8 row-wise codes");
    t.expect_shape(weight, {N, K}, "weight [out, in]");
    t.expect_numel(scb, N, "one absmax per output row");
    if (const Tensor* f = t.find(name + ".weight_format")) {
      t.expect_dtype(*f, {DType::U8, DType::I32, DType::I64}, "weight_format");
      t.expect_numel(*f, 1, "weight_format");
      const int64_t v = f->dtype == DType::U8 ? f->as<uint8_t>()[0] : f->dtype == DType::I32 ? f->as<int32_t>()[0] : f->as<int64_t>()[0];
      if (v != 0)
        fail(t.where(*f), ": weight_format ", v,
             " is a GPU tile layout (col32 / col_turing / col_ampere); only row-major (0) is supported");
    }
    formats::IntMatrix q;
    q.bits = 8;
    q.symmetric = true;
    q.granularity = formats::IntGranularity::PerChannel;
    q.rows = N, q.cols = K, q.group_size = K;
    const std::vector<float> absmax = t.floats(scb, "SCB");
    q.scales.resize(N);
    for (int64_t r = 0; r < N; ++r) {
      if (!std::isfinite(absmax[r]) || absmax[r] < 0) fail(t.where(scb), ": SCB[", r, "] = ", absmax[r], " is not a finite value >= 0");
      q.scales[r] = absmax[r] / 127.0f;
    }
    q.zeros.assign(N, 128);
    q.codes.resize(N * K);
    const int8_t* codes = weight.as<int8_t>();
    for (int64_t i = 0; i < N * K; ++i) q.codes[i] = static_cast<uint8_t>(codes[i] + 128);
    Scheme s = find_scheme("llm-int8");
    s.outlier_threshold = s_.threshold;
    return make_int_linear(name, std::move(q), s, read_bias(t, name, N));
  }

  Settings s_;
  std::string origin_;
};

}  // namespace

std::string bitsandbytes_problem(const QuantLinear& layer) {
  const QuantStorage st = layer.storage();
  if (st.bnb4) return "";
  if (st.int_matrix && layer.scheme().act == ActFormat::LlmInt8) {
    const auto& m = *st.int_matrix;
    return m.bits == 8 && m.symmetric && m.granularity == formats::IntGranularity::PerChannel && m.g_idx.empty()
               ? ""
               : "LLM.int8() needs symmetric 8-bit per-row weights";
  }
  return cat("scheme ", layer.scheme().full_name(), " is not a bitsandbytes format (nf4, nf4-dq, fp4, fp4-dq, llm-int8)");
}

json bitsandbytes_config(const std::vector<ModelLinear>& layers, DType model_dtype) {
  const QuantLinear* first = nullptr;
  json skip = json::array();
  bool head_seen = false;
  for (const auto& l : layers) {
    head_seen |= l.name == "lm_head";
    if (!l.quant) {
      skip.push_back(l.name);
      continue;
    }
    const std::string problem = bitsandbytes_problem(*l.quant);
    if (!problem.empty()) fail("layer ", quote(l.name), ": ", problem);
    if (!first) {
      first = l.quant;
      continue;
    }
    const QuantStorage a = first->storage(), b = l.quant->storage();
    const bool same = a.bnb4 ? b.bnb4 && a.bnb4->type == b.bnb4->type && a.bnb4->nested == b.bnb4->nested
                             : b.int_matrix && first->scheme().outlier_threshold == l.quant->scheme().outlier_threshold;
    if (!same)
      fail("--format bitsandbytes: layer ", quote(l.name), " (", l.quant->format(), ") differs from layer ",
           quote(first->name()), " (", first->format(),
           "); one bitsandbytes config covers the whole model (use --format qstudy for a mix)");
  }
  require(first != nullptr, "--format bitsandbytes: the model has no quantized layers");
  if (!head_seen) skip.push_back("lm_head");
  const formats::Bnb4Matrix* m = first->storage().bnb4;
  const bool four = m != nullptr;
  return {{"_load_in_4bit", four},
          {"_load_in_8bit", !four},
          {"bnb_4bit_compute_dtype", torch_dtype_name(model_dtype)},
          {"bnb_4bit_quant_storage", "uint8"},
          {"bnb_4bit_quant_type", four ? type_name(m->type) : "fp4"},
          {"bnb_4bit_use_double_quant", four && m->nested},
          {"llm_int8_enable_fp32_cpu_offload", false},
          {"llm_int8_has_fp16_weight", false},
          {"llm_int8_skip_modules", skip},
          {"llm_int8_threshold", four ? 6.0 : static_cast<double>(first->scheme().outlier_threshold)},
          {"load_in_4bit", four},
          {"load_in_8bit", !four},
          {"quant_method", "bitsandbytes"}};
}

std::vector<PlannedTensor> bitsandbytes_tensors(const ModelLinear& layer, DType model_dtype) {
  const QuantLinear& q = *layer.quant;
  const std::string problem = bitsandbytes_problem(q);
  if (!problem.empty()) fail("--format bitsandbytes: layer ", quote(layer.name), ": ", problem);
  const QuantStorage st = q.storage();
  const std::string W = layer.name + ".weight";
  std::vector<PlannedTensor> out;
  if (st.bnb4) {
    const Bnb4Matrix& m = *st.bnb4;
    const int64_t nb = m.n_blocks();
    require(static_cast<int64_t>(m.packed.size()) == (m.numel() + 1) / 2, "layer ", quote(layer.name), ": ",
            m.packed.size(), " packed bytes, expected ", (m.numel() + 1) / 2);
    out.push_back(lazy_tensor(W, DType::U8, {(m.numel() + 1) / 2, 1}, [&m] { return m.packed; }));
    if (m.nested) out.push_back(known_tensor(W + ".absmax", DType::U8, {nb}, m.nested_absmax.codes));
    else out.push_back(known_tensor(W + ".absmax", DType::F32, {nb}, to_bytes(m.absmax)));
    const auto& book = formats::bnb4_codebook(m.type);
    out.push_back(known_tensor(W + ".quant_map", DType::F32, {16}, to_bytes(book.data(), sizeof(float) * 16)));
    if (m.nested) {
      out.push_back(known_tensor(W + ".nested_absmax", DType::F32,
                                 {static_cast<int64_t>(m.nested_absmax.absmax.size())}, to_bytes(m.nested_absmax.absmax)));
      const auto& dyn = formats::bnb_dynamic_map();
      out.push_back(known_tensor(W + ".nested_quant_map", DType::F32, {256}, to_bytes(dyn.data(), sizeof(float) * 256)));
    }
    const std::string blob = quant_state_json(m, model_dtype);
    out.push_back(known_tensor(W + ".quant_state.bitsandbytes__" + type_name(m.type), DType::U8,
                               {static_cast<int64_t>(blob.size())}, to_bytes(blob.data(), blob.size())));
    return out;
  }
  const formats::IntMatrix& m = *st.int_matrix;
  out.push_back(lazy_tensor(W, DType::I8, {m.rows, m.cols}, [&m] {
    std::vector<uint8_t> codes(m.codes.size());
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(static_cast<int8_t>(m.signed_code(i)));
    return codes;
  }));
  std::vector<float> scb(m.rows);
  for (int64_t r = 0; r < m.rows; ++r) scb[r] = scb_for_scale(m.scales[r], layer.name);
  out.push_back(known_tensor(layer.name + ".SCB", DType::F32, {m.rows}, to_bytes(scb)));
  out.push_back(known_tensor(layer.name + ".weight_format", DType::U8, {}, {0}));
  return out;
}

LinearFactory bitsandbytes_reader(const json& quantization_config, const std::string& origin) {
  auto reader = std::make_shared<Reader>(parse_settings(quantization_config, origin), origin);
  return [reader](const std::string& name, int64_t out, int64_t in, const TensorStore& store) {
    return (*reader)(name, out, in, store);
  };
}

}  // namespace qs::quant::files
