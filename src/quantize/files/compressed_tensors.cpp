#include "quantize/files/compressed_tensors.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "core/error.h"
#include "formats/packing.h"

namespace qs::quant::files {

namespace {

using nlohmann::json;
using formats::IntGranularity;
using formats::IntMatrix;

// ---- writing ---------------------------------------------------------------------------------

// QuantizationArgs.model_dump() for the fields qstudy's schemes use.
json quant_args(int bits, const char* type, bool symmetric, std::optional<int64_t> group_size, const char* strategy,
                bool dynamic, const char* actorder, const char* scale_dtype, const char* observer) {
  return {{"actorder", actorder ? json(actorder) : json(nullptr)},
          {"block_structure", nullptr},
          {"dynamic", dynamic},
          {"group_size", group_size ? json(*group_size) : json(nullptr)},
          {"num_bits", bits},
          {"observer", observer ? json(observer) : json(nullptr)},
          {"observer_kwargs", json::object()},
          {"scale_dtype", scale_dtype ? json(scale_dtype) : json(nullptr)},
          {"strategy", strategy},
          {"symmetric", symmetric},
          {"type", type},
          // compressed-tensors serializes zp_dtype only for asymmetric args.
          {"zp_dtype", symmetric ? json(nullptr) : json(std::string("torch.int") + (bits <= 8 ? "8" : "32"))}};
}

// Weights are static; "memoryless_minmax" is compressed-tensors' default weight observer.
constexpr const char* kWeightObserver = "memoryless_minmax";

struct LayerSpec {
  json weights, input = nullptr;
  std::string format;
};

LayerSpec layer_spec(const QuantLinear& q) {
  const std::string problem = compressed_tensors_problem(q);
  if (!problem.empty()) fail("--format compressed-tensors: layer ", quote(q.name()), ": ", problem);
  const Scheme& s = q.scheme();
  const QuantStorage st = q.storage();
  LayerSpec spec;
  if (st.int_matrix) {
    const IntMatrix& m = *st.int_matrix;
    const bool grouped = m.granularity == IntGranularity::PerGroup;
    const char* strategy = grouped ? "group" : m.granularity == IntGranularity::PerChannel ? "channel" : "tensor";
    spec.weights = quant_args(m.bits, "int", m.symmetric, grouped ? std::optional<int64_t>(m.group_size) : std::nullopt,
                              strategy, false, m.g_idx.empty() ? nullptr : "group", nullptr, kWeightObserver);
    if (s.act == ActFormat::Int8PerToken) {
      spec.input = quant_args(8, "int", true, std::nullopt, "token", true, nullptr, nullptr, nullptr);
      spec.format = "int-quantized";
    } else {
      spec.format = "pack-quantized";
    }
  } else if (st.fp8) {
    const bool per_tensor = st.fp8->granularity == formats::Fp8Granularity::PerTensor;
    spec.weights = quant_args(8, "float", true, std::nullopt, per_tensor ? "tensor" : "channel", false, nullptr,
                              nullptr, kWeightObserver);
    spec.input = s.act == ActFormat::Fp8Static
                     ? quant_args(8, "float", true, std::nullopt, "tensor", false, nullptr, nullptr, "static_minmax")
                     : quant_args(8, "float", true, std::nullopt, "token", true, nullptr, nullptr, nullptr);
    spec.format = "float-quantized";
  } else if (st.nvfp4) {
    spec.weights = quant_args(4, "float", true, formats::kNvFp4Block, "tensor_group", false, nullptr,
                              "torch.float8_e4m3fn", kWeightObserver);
    spec.format = "nvfp4-pack-quantized";
  } else {
    spec.weights = quant_args(4, "float", true, formats::kMxBlock, "group", false, nullptr, "torch.uint8",
                              kWeightObserver);
    spec.format = "mxfp4-pack-quantized";
  }
  return spec;
}

// Zero points [N, G] packed along N: int32 [ceil(N / f), G] (pack_to_int32 with packed_dim=0).
std::vector<int32_t> pack_zero_points(const IntMatrix& m) {
  const int64_t groups = m.groups_per_row();
  std::vector<uint8_t> transposed(m.rows * groups);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < groups; ++g) transposed[g * m.rows + r] = m.zeros[m.param_index(r, g)];
  const std::vector<int32_t> packed_t = formats::pack_rows_int32(transposed, groups, m.rows, m.bits);
  const int64_t words = static_cast<int64_t>(packed_t.size()) / groups;
  std::vector<int32_t> out(packed_t.size());
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t w = 0; w < words; ++w) out[w * groups + g] = packed_t[g * words + w];
  return out;
}

void int_tensors(const std::string& L, const IntMatrix& m, bool int8_activations, DType dtype,
                 std::vector<PlannedTensor>& out) {
  const int64_t N = m.rows, K = m.cols, G = m.groups_per_row();
  const std::vector<int64_t> scale_shape =
      m.granularity == IntGranularity::PerTensor ? std::vector<int64_t>{1} : std::vector<int64_t>{N, G};
  if (int8_activations) {
    out.push_back(lazy_tensor(L + ".weight", DType::I8, {N, K}, [&m] {
      std::vector<uint8_t> w(m.codes.size());
      for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>(static_cast<int8_t>(m.signed_code(i)));
      return w;
    }));
    out.push_back(float_tensor(L + ".weight_scale", scale_shape, m.scales, dtype));
    return;
  }
  const int64_t per_word = 32 / m.bits;
  out.push_back(lazy_tensor(L + ".weight_packed", DType::I32, {N, (K + per_word - 1) / per_word},
                            [&m] { return to_bytes(formats::pack_rows_int32(m.codes, m.rows, m.cols, m.bits)); }));
  out.push_back(float_tensor(L + ".weight_scale", scale_shape, m.scales, dtype));
  out.push_back(known_tensor(L + ".weight_shape", DType::I64, {2}, to_bytes(std::vector<int64_t>{N, K})));
  if (!m.symmetric) {
    if (m.granularity == IntGranularity::PerTensor)
      out.push_back(known_tensor(L + ".weight_zero_point", DType::I8, {1},
                                 {static_cast<uint8_t>(static_cast<int8_t>(m.zeros[0] - (1 << (m.bits - 1))))}));
    else
      out.push_back(lazy_tensor(L + ".weight_zero_point", DType::I32, {(N + per_word - 1) / per_word, G},
                                [&m] { return to_bytes(pack_zero_points(m)); }));
  }
  if (!m.g_idx.empty()) out.push_back(known_tensor(L + ".weight_g_idx", DType::I32, {K}, to_bytes(m.g_idx)));
}

// Matches compressed-tensors' targets: a module name, a "re:" regular expression matched from the
// start of the name (Python's re.match), or the class name "Linear".
bool target_matches(const std::string& target, const std::string& name, bool allow_class) {
  if (target == name) return true;
  if (allow_class && target == "Linear") return true;
  if (target.rfind("re:", 0) == 0) {
    try {
      return std::regex_search(name, std::regex(target.substr(3)), std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
      return false;  // reported when the config is parsed
    }
  }
  return false;
}

// ---- reading ---------------------------------------------------------------------------------

struct Args {
  bool present = false;
  int bits = 8;
  std::string type = "int";
  bool symmetric = true;
  int64_t group_size = 0;  // 0: none
  std::string strategy;
  bool dynamic = false;
  std::string dynamic_text = "false";
  std::string actorder;  // "", "group", "weight"
};

struct Group {
  std::string name;
  std::vector<std::string> targets;
  Args weights, input;
  std::string format;
};

struct Config {
  std::string origin, format;
  std::vector<Group> groups;
  std::vector<std::string> ignore;
};

const char* kReadableFormats =
    "pack-quantized, int-quantized, float-quantized, naive-quantized, nvfp4-pack-quantized, mxfp4-pack-quantized";

Args parse_args(const json& j, const std::string& where) {
  Args a;
  if (j.is_null()) return a;
  if (!j.is_object()) fail(where, ": expected an object of QuantizationArgs or null");
  a.present = true;
  auto field = [&](const char* key) -> const json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* v = field("num_bits")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > 8)
      fail(where, ".num_bits: expected an integer in 1..8");
    a.bits = v->get<int>();
  }
  if (const json* v = field("type")) {
    if (!v->is_string() || (v->get<std::string>() != "int" && v->get<std::string>() != "float"))
      fail(where, ".type: expected \"int\" or \"float\"");
    a.type = v->get<std::string>();
  }
  if (const json* v = field("symmetric")) {
    if (!v->is_boolean()) fail(where, ".symmetric: expected true or false");
    a.symmetric = v->get<bool>();
  }
  if (const json* v = field("group_size")) {
    if (!v->is_number_integer() || v->get<int64_t>() < -1 || v->get<int64_t>() == 0 || v->get<int64_t>() > (1 << 20))
      fail(where, ".group_size: expected a positive integer, -1 or null");
    a.group_size = std::max<int64_t>(0, v->get<int64_t>());
  }
  const json* strategy = field("strategy");
  if (strategy) {
    if (!strategy->is_string()) fail(where, ".strategy: expected a string");
    a.strategy = strategy->get<std::string>();
  } else {
    // compressed-tensors infers it: no group -> tensor, group_size > 0 -> group, -1 -> channel.
    const json* g = field("group_size");
    a.strategy = !g ? "tensor" : g->get<int64_t>() > 0 ? "group" : "channel";
  }
  static const char* kStrategies[] = {"tensor", "channel", "group", "block", "token", "tensor_group", "attn_head"};
  if (std::find_if(std::begin(kStrategies), std::end(kStrategies), [&](const char* s) { return a.strategy == s; }) ==
      std::end(kStrategies))
    fail(where, ".strategy: unknown strategy ", quote(a.strategy),
         " (expected tensor, channel, group, block, token, tensor_group or attn_head)");
  if ((a.strategy == "group" || a.strategy == "tensor_group") && a.group_size == 0)
    fail(where, ".group_size: strategy ", quote(a.strategy), " needs a positive group_size");
  if (const json* v = field("dynamic")) {
    if (v->is_boolean()) a.dynamic = v->get<bool>(), a.dynamic_text = a.dynamic ? "true" : "false";
    else if (v->is_string() && v->get<std::string>() == "local") a.dynamic = true, a.dynamic_text = "local";
    else fail(where, ".dynamic: expected true, false or \"local\"");
  }
  if (const json* v = field("actorder")) {
    if (v->is_boolean()) a.actorder = v->get<bool>() ? "group" : "";
    else if (v->is_string()) {
      const std::string s = v->get<std::string>();
      a.actorder = s == "dynamic" ? "group" : s == "static" ? "weight" : s;
      if (a.actorder != "group" && a.actorder != "weight")
        fail(where, ".actorder: expected \"group\", \"weight\" or null, got ", quote(s));
    } else {
      fail(where, ".actorder: expected a string, a boolean or null");
    }
  }
  return a;
}

std::vector<std::string> string_list(const json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) fail(where, ": expected a list of strings");
  for (const auto& v : j) {
    if (!v.is_string()) fail(where, ": expected a list of strings");
    out.push_back(v.get<std::string>());
    if (out.back().rfind("re:", 0) == 0) {
      // std::regex compiles recursively; real targets are short.
      if (out.back().size() > 512) fail(where, ": regular expression longer than 512 characters");
      try {
        std::regex check(out.back().substr(3));
      } catch (const std::regex_error&) {
        fail(where, ": ", quote(out.back()), " is not a valid regular expression");
      }
    }
  }
  return out;
}

// An optional section that must be absent, null or empty for qstudy to read the checkpoint.
void require_empty(const json& qc, const char* key, const std::string& origin, const char* why) {
  auto it = qc.find(key);
  if (it == qc.end() || it->is_null() || (it->is_object() && it->empty())) return;
  if (std::string(key) == "sparsity_config" && it->is_object()) {
    auto f = it->find("format");
    if (f != it->end() && *f == "dense") return;
  }
  fail(origin, ": quantization_config.", key, " is set; ", why);
}

Config parse_config(const json& qc, const std::string& origin) {
  if (!qc.is_object()) fail(origin, ": quantization_config must be an object");
  Config c;
  c.origin = origin;
  const std::string at = origin + ": quantization_config";
  if (auto it = qc.find("quantization_status"); it != qc.end() && !it->is_null()) {
    if (!it->is_string()) fail(at, ".quantization_status: expected a string");
    if (it->get<std::string>() != "compressed")
      fail(at, ".quantization_status is ", quote(it->get<std::string>()),
           ", expected \"compressed\" (other states hold unquantized weights with fake-quant parameters)");
  }
  if (auto it = qc.find("format"); it != qc.end() && !it->is_null()) {
    if (!it->is_string()) fail(at, ".format: expected a string");
    c.format = it->get<std::string>();
  }
  require_empty(qc, "sparsity_config", origin, "sparse checkpoints are not supported");
  require_empty(qc, "transform_config", origin, "rotation transforms (Hadamard etc.) are not supported");
  require_empty(qc, "kv_cache_scheme", origin, "KV-cache quantization is not supported");
  auto groups = qc.find("config_groups");
  if (groups == qc.end() || !groups->is_object() || groups->empty())
    fail(at, ".config_groups: expected a non-empty object of quantization schemes");
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    const std::string where = at + ".config_groups." + it.key();
    if (!it->is_object())
      fail(where, ": expected a QuantizationScheme object (preset names with target lists are not expanded)");
    Group g;
    g.name = it.key();
    auto targets = it->find("targets");
    if (targets == it->end()) fail(where, ".targets: missing (expected a list of layer names or classes)");
    g.targets = string_list(*targets, where + ".targets");
    g.weights = parse_args(it->value("weights", json()), where + ".weights");
    g.input = parse_args(it->value("input_activations", json()), where + ".input_activations");
    if (!it->value("output_activations", json()).is_null())
      fail(where, ".output_activations is set; output quantization is not supported");
    if (auto f = it->find("format"); f != it->end() && !f->is_null()) {
      if (!f->is_string()) fail(where, ".format: expected a string");
      g.format = f->get<std::string>();
    }
    if (g.format.empty() && (c.format.empty() || c.format == "mixed-precision"))
      fail(where, ".format: missing (the config's format is ", c.format.empty() ? "absent" : "\"mixed-precision\"",
           ")");
    c.groups.push_back(std::move(g));
  }
  if (auto it = qc.find("ignore"); it != qc.end()) c.ignore = string_list(*it, at + ".ignore");
  return c;
}

const Group* group_of(const Config& c, const std::string& name) {
  for (const auto& t : c.ignore)
    if (target_matches(t, name, true)) return nullptr;
  for (const auto& g : c.groups)
    for (const auto& t : g.targets)
      if (target_matches(t, name, false)) return &g;
  for (const auto& g : c.groups)
    for (const auto& t : g.targets)
      if (t == "Linear") return &g;
  return nullptr;
}

int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Signed int8 zero points [N, G] (or [1]) -> unsigned.
std::vector<uint8_t> unsigned_zero_points(const CheckpointTensors& t, const Tensor& zp, int bits, int64_t count,
                                          const std::string& what) {
  t.expect_dtype(zp, {DType::I8}, what);
  t.expect_numel(zp, count, what);
  std::vector<uint8_t> out(count);
  const int mid = 1 << (bits - 1);
  for (int64_t i = 0; i < count; ++i) {
    const int z = static_cast<int>(static_cast<const int8_t*>(zp.data)[i]) + mid;
    if (z < 0 || z >= (1 << bits))
      fail(t.where(zp), ": zero point ", z - mid, " is outside the signed ", bits, "-bit range (", what, ")");
    out[i] = static_cast<uint8_t>(z);
  }
  return out;
}

class Reader {
 public:
  Reader(Config c) : c_(std::move(c)) {}

  std::unique_ptr<Linear> operator()(const std::string& name, int64_t N, int64_t K, const TensorStore& store) const {
    const Group* g = group_of(c_, name);
    if (!g) return nullptr;
    if (!g->weights.present) return nullptr;  // activation-only groups leave the weight dense
    const CheckpointTensors t(store);
    const std::string format = g->format.empty() ? c_.format : g->format;
    const std::string where = cat(c_.origin, ": layer ", quote(name), " (group ", g->name, ", format ", format, ")");
    std::vector<float> bias = read_bias(t, name, N);
    if (format == "pack-quantized") return packed(t, *g, name, N, K, where, std::move(bias));
    if (format == "int-quantized" || (format == "naive-quantized" && g->weights.type == "int"))
      return int8(t, *g, name, N, K, where, std::move(bias));
    if (format == "float-quantized" || format == "naive-quantized") return fp8(t, *g, name, N, K, where, std::move(bias));
    if (format == "nvfp4-pack-quantized" || format == "mxfp4-pack-quantized")
      return fp4(t, *g, name, N, K, where, format == "nvfp4-pack-quantized", std::move(bias));
    if (format == "dense")
      fail(where, ": weights are stored unquantized (format \"dense\"); load the model as a dense checkpoint");
    fail(where, ": format ", quote(format), " is not supported (supported: ", kReadableFormats, ")");
  }

 private:
  static void no_activations(const Group& g, const std::string& where, const char* what) {
    if (g.input.present)
      fail(where, ": ", what, " with quantized input activations (", g.input.type, g.input.bits,
           ") is not supported; qstudy runs it with 16-bit activations only");
  }

  static int64_t weight_groups(const Args& w, int64_t K, const std::string& where, int64_t& group_size) {
    if (w.strategy == "group") {
      if (K % w.group_size != 0) fail(where, ": group size ", w.group_size, " does not divide input size ", K);
      group_size = w.group_size;
      return K / w.group_size;
    }
    if (w.strategy == "channel") {
      group_size = 0;
      return 1;
    }
    fail(where, ": weight strategy ", quote(w.strategy), " is not supported for integer weights (expected group or channel)");
  }

  std::unique_ptr<Linear> packed(const CheckpointTensors& t, const Group& g, const std::string& name, int64_t N,
                                 int64_t K, const std::string& where, std::vector<float> bias) const {
    const Args& w = g.weights;
    if (w.type != "int") fail(where, ": pack-quantized needs int weights, got type ", quote(w.type));
    no_activations(g, where, "pack-quantized");
    int64_t group_size = 0;
    const int64_t G = weight_groups(w, K, where, group_size);
    const Scheme scheme = int_weight_scheme(w.bits, group_size, w.symmetric, ActFormat::None, where);
    const int64_t per_word = 32 / w.bits;
    const Tensor& packed = t.need(name + ".weight_packed", "pack-quantized weight_packed");
    t.expect_dtype(packed, {DType::I32}, "pack-quantized weight_packed");
    t.expect_shape(packed, {N, div_up(K, per_word)}, cat("weight_packed of ", N, "x", K, " ", w.bits, "-bit codes"));
    if (const Tensor* shape = t.find(name + ".weight_shape")) {
      t.expect_dtype(*shape, {DType::I64, DType::I32}, "weight_shape");
      t.expect_numel(*shape, 2, "weight_shape [rows, cols]");
      const int64_t r = shape->dtype == DType::I64 ? shape->as<int64_t>()[0] : shape->as<int32_t>()[0];
      const int64_t k = shape->dtype == DType::I64 ? shape->as<int64_t>()[1] : shape->as<int32_t>()[1];
      if (r != N || k != K)
        fail(t.where(*shape), ": weight_shape is [", r, ", ", k, "] but the layer is [", N, ", ", K, "]");
    } else {
      t.need(name + ".weight_shape", "pack-quantized weight_shape");
    }
    const Tensor& scale = t.need(name + ".weight_scale", "pack-quantized weight_scale");
    t.expect_shape(scale, {N, G}, "weight_scale, one per output row and group");
    formats::CompressedTensorsPacked p;
    p.bits = w.bits;
    p.symmetric = w.symmetric;
    p.granularity = G == 1 && group_size == 0 ? IntGranularity::PerChannel : IntGranularity::PerGroup;
    p.group_size = group_size;
    p.weight_shape = {N, K};
    p.weight_packed = t.copy<int32_t>(packed);
    p.weight_scale = t.floats(scale, "weight_scale");
    check_scales(t, scale, p.weight_scale);
    std::vector<uint8_t> unpacked_zeros;
    if (!w.symmetric) {
      const Tensor& zp = t.need(name + ".weight_zero_point", "asymmetric weights need weight_zero_point");
      if (zp.dtype == DType::I32) {
        t.expect_shape(zp, {div_up(N, per_word), G}, "weight_zero_point packed along rows");
        p.weight_zero_point = t.copy<int32_t>(zp);
      } else {
        unpacked_zeros = unsigned_zero_points(t, zp, w.bits, N * G, "weight_zero_point [rows, groups]");
        p.symmetric = true;  // unpack the codes; the zero points are set below
      }
    }
    IntMatrix q = formats::unpack_compressed_tensors(p, name);
    if (!unpacked_zeros.empty()) {
      q.symmetric = false;
      q.zeros = std::move(unpacked_zeros);
    }
    if (const Tensor* gi = t.find(name + ".weight_g_idx")) {
      if (group_size == 0) fail(t.where(*gi), ": g_idx needs group quantization, the layer is per channel");
      q.g_idx = read_g_idx(t, *gi, K, group_size);
    } else if (w.actorder == "group") {
      t.need(name + ".weight_g_idx", "actorder \"group\" needs weight_g_idx");
    }
    return make_int_linear(name, std::move(q), scheme, std::move(bias));
  }

  std::unique_ptr<Linear> int8(const CheckpointTensors& t, const Group& g, const std::string& name, int64_t N,
                               int64_t K, const std::string& where, std::vector<float> bias) const {
    const Args& w = g.weights;
    ActFormat act = ActFormat::None;
    if (g.input.present) {
      const Args& in = g.input;
      if (in.type != "int" || in.bits != 8 || !in.symmetric || in.strategy != "token" || !in.dynamic)
        fail(where, ": input activations ", in.type, in.bits, " ", in.symmetric ? "symmetric" : "asymmetric", " ",
             in.strategy, in.dynamic ? " dynamic" : " static",
             " are not supported (qstudy runs int8 activations as dynamic symmetric per-token)");
      act = ActFormat::Int8PerToken;
    }
    int64_t group_size = 0;
    IntGranularity gran = IntGranularity::PerChannel;
    int64_t params = N;
    if (w.strategy == "tensor") {
      gran = IntGranularity::PerTensor;
      params = 1;
    } else {
      const int64_t G = weight_groups(w, K, where, group_size);
      gran = group_size ? IntGranularity::PerGroup : IntGranularity::PerChannel;
      params = N * G;
    }
    const Scheme scheme = int_weight_scheme(w.bits, group_size, w.symmetric, act, where);
    const Tensor& weight = t.need(name + ".weight", "int-quantized weight");
    t.expect_dtype(weight, {DType::I8}, "int-quantized weight (signed codes)");
    t.expect_shape(weight, {N, K}, "weight [out, in]");
    const Tensor& scale = t.need(name + ".weight_scale", "int-quantized weight_scale");
    t.expect_numel(scale, params, "weight_scale");
    IntMatrix q;
    q.bits = w.bits;
    q.symmetric = w.symmetric;
    q.granularity = gran;
    q.rows = N;
    q.cols = K;
    q.group_size = group_size ? group_size : K;
    q.scales = t.floats(scale, "weight_scale");
    check_scales(t, scale, q.scales);
    const int mid = 1 << (w.bits - 1);
    q.codes.resize(N * K);
    const int8_t* codes = weight.as<int8_t>();
    for (int64_t i = 0; i < N * K; ++i) {
      const int c = codes[i] + mid;
      if (c < 0 || c >= (1 << w.bits))
        fail(t.where(weight), ": code ", static_cast<int>(codes[i]), " at index ", i, " is outside the signed ",
             w.bits, "-bit range");
      q.codes[i] = static_cast<uint8_t>(c);
    }
    if (w.symmetric) q.zeros.assign(params, static_cast<uint8_t>(mid));
    else q.zeros = unsigned_zero_points(t, t.need(name + ".weight_zero_point", "asymmetric weights need weight_zero_point"),
                                       w.bits, params, "weight_zero_point");
    return make_int_linear(name, std::move(q), scheme, std::move(bias));
  }

  std::unique_ptr<Linear> fp8(const CheckpointTensors& t, const Group& g, const std::string& name, int64_t N,
                              int64_t K, const std::string& where, std::vector<float> bias) const {
    const Args& w = g.weights;
    if (w.type != "float" || w.bits != 8) fail(where, ": float-quantized needs 8-bit float weights, got ", w.type, w.bits);
    if (w.strategy != "channel" && w.strategy != "tensor")
      fail(where, ": FP8 weight strategy ", quote(w.strategy), " is not supported (expected channel or tensor)");
    if (!g.input.present)
      fail(where, ": FP8 weights with 16-bit activations (W8A16-FP8) have no qstudy scheme; supported: w8a8-fp8 "
           "(dynamic per-token) and w8a8-fp8-static (static per-tensor)");
    const Args& in = g.input;
    std::string scheme_name;
    if (in.type == "float" && in.bits == 8 && in.strategy == "token" && in.dynamic) scheme_name = "w8a8-fp8";
    else if (in.type == "float" && in.bits == 8 && in.strategy == "tensor" && !in.dynamic) scheme_name = "w8a8-fp8-static";
    else
      fail(where, ": input activations ", in.type, in.bits, " ", in.strategy, in.dynamic ? " dynamic" : " static",
           " are not supported (expected float8 dynamic per-token or static per-tensor)");
    const Tensor& weight = t.need(name + ".weight", "float-quantized weight");
    t.expect_dtype(weight, {DType::F8_E4M3}, "FP8 E4M3 weight");
    t.expect_shape(weight, {N, K}, "weight [out, in]");
    const bool per_tensor = w.strategy == "tensor";
    const Tensor& scale = t.need(name + ".weight_scale", "float-quantized weight_scale");
    t.expect_numel(scale, per_tensor ? 1 : N, per_tensor ? "per-tensor weight_scale" : "weight_scale, one per output row");
    formats::Fp8Matrix q;
    q.format = formats::Fp8Format::E4M3;
    q.granularity = per_tensor ? formats::Fp8Granularity::PerTensor : formats::Fp8Granularity::PerChannel;
    q.rows = N;
    q.cols = K;
    q.codes = t.copy<uint8_t>(weight);
    q.scales = t.floats(scale, "weight_scale");
    check_scales(t, scale, q.scales);
    float input_scale = 0;
    if (scheme_name == "w8a8-fp8-static") {
      const Tensor& is = t.need(name + ".input_scale", "static activations need input_scale");
      t.expect_numel(is, 1, "per-tensor input_scale");
      input_scale = t.floats(is, "input_scale")[0];
      if (!(input_scale > 0) || !std::isfinite(input_scale))
        fail(t.where(is), ": input_scale ", input_scale, " must be finite and > 0");
    }
    return make_fp8_linear(name, std::move(q), find_scheme(scheme_name), input_scale, std::move(bias));
  }

  std::unique_ptr<Linear> fp4(const CheckpointTensors& t, const Group& g, const std::string& name, int64_t N, int64_t K,
                              const std::string& where, bool nv, std::vector<float> bias) const {
    const Args& w = g.weights;
    const int64_t block = nv ? formats::kNvFp4Block : formats::kMxBlock;
    if (w.type != "float" || w.bits != 4 || w.group_size != block)
      fail(where, ": ", nv ? "NVFP4" : "MXFP4", " needs 4-bit float weights in groups of ", block, ", got ", w.type,
           w.bits, " group_size ", w.group_size);
    no_activations(g, where, nv ? "NVFP4" : "MXFP4");
    if (K % block != 0) fail(where, ": blocks of ", block, " do not divide input size ", K);
    const Tensor& packed = t.need(name + ".weight_packed", "FP4 weight_packed");
    t.expect_dtype(packed, {DType::U8}, "two E2M1 codes per byte");
    t.expect_shape(packed, {N, K / 2}, "weight_packed [out, in / 2]");
    const Tensor& scale = t.need(name + ".weight_scale", "FP4 block scales");
    t.expect_dtype(scale, {nv ? DType::F8_E4M3 : DType::U8}, nv ? "NVFP4 block scales are FP8 E4M3" : "MXFP4 scales are E8M0 (uint8)");
    t.expect_shape(scale, {N, K / block}, "weight_scale, one per block");
    if (!nv) {
      formats::MxFp4Matrix q;
      q.rows = N, q.cols = K;
      q.packed = t.copy<uint8_t>(packed);
      q.scales = t.copy<uint8_t>(scale);
      return make_mxfp4_linear(name, std::move(q), find_scheme("mxfp4"), std::move(bias));
    }
    const Tensor& gs = t.need(name + ".weight_global_scale", "NVFP4 weight_global_scale");
    t.expect_numel(gs, 1, "one weight_global_scale per tensor");
    const float r = t.floats(gs, "weight_global_scale")[0];
    if (!(r > 0) || !std::isfinite(r)) fail(t.where(gs), ": weight_global_scale ", r, " must be finite and > 0");
    formats::NvFp4Matrix q;
    q.rows = N, q.cols = K;
    q.packed = t.copy<uint8_t>(packed);
    q.block_scales = t.copy<uint8_t>(scale);
    q.global_scale = 1.0f / r;  // as vLLM: weight_scale_2 = 1 / weight_global_scale
    const auto& meta = t.shard_metadata(gs);
    if (auto it = meta.find("qstudy.nvfp4_global_scale." + name); it != meta.end()) {
      float exact = 0;
      if (parse_f32_hex(it->second, exact) && exact > 0 && f32_bits(1.0f / exact) == f32_bits(r)) q.global_scale = exact;
    }
    return make_nvfp4_linear(name, std::move(q), find_scheme("nvfp4"), std::move(bias));
  }

  static void check_scales(const CheckpointTensors& t, const Tensor& tensor, const std::vector<float>& scales) {
    for (size_t i = 0; i < scales.size(); ++i)
      if (!std::isfinite(scales[i])) fail(t.where(tensor), ": scale ", i, " is not finite");
  }

  Config c_;
};

}  // namespace

std::string compressed_tensors_problem(const QuantLinear& layer) {
  const Scheme& s = layer.scheme();
  const QuantStorage st = layer.storage();
  if (st.int_matrix) {
    const IntMatrix& m = *st.int_matrix;
    if (s.act == ActFormat::LlmInt8) return "llm-int8 (LLM.int8() outliers) has no compressed-tensors form; use bitsandbytes";
    if (s.act == ActFormat::Int8PerToken)
      return m.bits == 8 && m.symmetric && m.granularity != IntGranularity::PerGroup
                 ? ""
                 : "int8 per-token activations need symmetric 8-bit per-channel weights";
    if (s.act != ActFormat::None) return "unsupported activation format for integer weights";
    if (m.granularity == IntGranularity::PerTensor) return "per-tensor integer weights are not a pack-quantized layout";
    for (uint8_t z : m.zeros)
      if (z >= (1 << m.bits))
        return cat("zero point ", int{z}, " does not fit ", m.bits, " bits (an AutoGPTQ v1 zero of 0 read back as ",
                   1 << m.bits, ")");
    return "";
  }
  if (st.fp8)
    return s.act == ActFormat::Fp8PerToken || s.act == ActFormat::Fp8Static
               ? ""
               : "FP8 weights need FP8 activations (w8a8-fp8 or w8a8-fp8-static)";
  if (st.nvfp4 || st.mxfp4) return "";
  if (st.bnb4) return "bitsandbytes NF4/FP4 has no compressed-tensors form; use bitsandbytes";
  if (st.gguf_blocks) return "GGUF blocks have no compressed-tensors form; use gguf or qstudy";
  return "unknown storage";
}

json compressed_tensors_config(const std::vector<ModelLinear>& layers) {
  std::vector<std::string> keys;
  std::vector<LayerSpec> specs;
  std::vector<std::vector<std::string>> members;
  std::vector<std::string> ignore;
  bool head_seen = false;
  for (const auto& l : layers) {
    head_seen |= l.name == "lm_head";
    if (!l.quant) {
      ignore.push_back(l.name);
      continue;
    }
    LayerSpec spec = layer_spec(*l.quant);
    const std::string key = json{{"w", spec.weights}, {"i", spec.input}, {"f", spec.format}}.dump();
    size_t i = std::find(keys.begin(), keys.end(), key) - keys.begin();
    if (i == keys.size()) {
      keys.push_back(key);
      specs.push_back(std::move(spec));
      members.emplace_back();
    }
    members[i].push_back(l.name);
  }
  require(!specs.empty(), "--format compressed-tensors: the model has no quantized layers");
  // A head tied to the embedding is still a Linear module in transformers, left unquantized.
  if (!head_seen) ignore.push_back("lm_head");
  json groups = json::object();
  std::string format = specs[0].format;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].format != format) format = "mixed-precision";
    groups["group_" + std::to_string(i)] = {
        {"format", specs[i].format},
        {"input_activations", specs[i].input},
        {"output_activations", nullptr},
        {"targets", specs.size() == 1 ? json::array({"Linear"}) : json(members[i])},
        {"weights", specs[i].weights}};
  }
  return {{"config_groups", groups},
          {"format", format},
          {"global_compression_ratio", nullptr},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"quant_method", "compressed-tensors"},
          {"quantization_status", "compressed"},
          {"sparsity_config", json::object()},
          {"transform_config", json::object()},
          {"version", kCompressedTensorsVersion}};
}

std::vector<PlannedTensor> compressed_tensors_tensors(const ModelLinear& layer, DType model_dtype) {
  const QuantLinear& q = *layer.quant;
  layer_spec(q);  // refuses what the format cannot hold
  const QuantStorage st = q.storage();
  const std::string& L = layer.name;
  std::vector<PlannedTensor> out;
  if (st.int_matrix) {
    int_tensors(L, *st.int_matrix, q.scheme().act == ActFormat::Int8PerToken, model_dtype, out);
  } else if (st.fp8) {
    const formats::Fp8Matrix& m = *st.fp8;
    out.push_back(lazy_tensor(L + ".weight", DType::F8_E4M3, {m.rows, m.cols}, [&m] { return m.codes; }));
    const bool per_tensor = m.granularity == formats::Fp8Granularity::PerTensor;
    out.push_back(float_tensor(L + ".weight_scale", per_tensor ? std::vector<int64_t>{1} : std::vector<int64_t>{m.rows, 1},
                               m.scales, model_dtype));
    if (q.scheme().act == ActFormat::Fp8Static)
      out.push_back(float_tensor(L + ".input_scale", {1}, {st.static_activation_scale}, model_dtype));
  } else if (st.nvfp4) {
    const formats::NvFp4Matrix& m = *st.nvfp4;
    out.push_back(lazy_tensor(L + ".weight_packed", DType::U8, {m.rows, m.cols / 2}, [&m] { return m.packed; }));
    out.push_back(lazy_tensor(L + ".weight_scale", DType::F8_E4M3, {m.rows, m.cols / formats::kNvFp4Block},
                              [&m] { return m.block_scales; }));
    const float r = 1.0f / m.global_scale;
    PlannedTensor gs = known_tensor(L + ".weight_global_scale", DType::F32, {1}, to_bytes(&r, 4));
    if (f32_bits(1.0f / r) != f32_bits(m.global_scale))
      gs.metadata["qstudy.nvfp4_global_scale." + L] = f32_hex(m.global_scale);
    out.push_back(std::move(gs));
  } else {
    const formats::MxFp4Matrix& m = *st.mxfp4;
    out.push_back(lazy_tensor(L + ".weight_packed", DType::U8, {m.rows, m.cols / 2}, [&m] { return m.packed; }));
    out.push_back(lazy_tensor(L + ".weight_scale", DType::U8, {m.rows, m.cols / formats::kMxBlock},
                              [&m] { return m.scales; }));
  }
  return out;
}

LinearFactory compressed_tensors_reader(const json& quantization_config, const std::string& origin) {
  auto reader = std::make_shared<Reader>(parse_config(quantization_config, origin));
  return [reader](const std::string& name, int64_t out, int64_t in, const TensorStore& store) {
    return (*reader)(name, out, in, store);
  };
}

}  // namespace qs::quant::files
