#include "quantize/files/gptq_awq_checkpoint.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/packing.h"

namespace qs::quant::files {

namespace {

using nlohmann::json;

// Typed access to quantization_config fields with errors naming the field.
class Fields {
 public:
  Fields(const json& j, std::string at) : j_(j), at_(std::move(at)) {
    if (!j_.is_object()) fail(at_, ": expected an object");
  }
  const json* get(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t integer(std::initializer_list<const char*> keys, int64_t fallback) const {
    for (const char* k : keys)
      if (const json* v = get(k)) {
        if (!v->is_number_integer()) fail(at_, ".", k, ": expected an integer");
        return v->get<int64_t>();
      }
    return fallback;
  }
  bool boolean(const char* key, bool fallback) const {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(at_, ".", key, ": expected true or false");
    return v->get<bool>();
  }
  std::string string(std::initializer_list<const char*> keys, const std::string& fallback) const {
    for (const char* k : keys)
      if (const json* v = get(k)) {
        if (!v->is_string()) fail(at_, ".", k, ": expected a string");
        std::string s = v->get<std::string>();
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        return s;
      }
    return fallback;
  }
  const std::string& at() const { return at_; }

 private:
  const json& j_;
  std::string at_;
};

int64_t group_size_of(int64_t configured, int64_t K) { return configured == -1 ? K : configured; }

// The checks shared by both layouts: int32 packed tensors and f16 scales of the expected shapes.
struct Packed {
  const Tensor *qweight, *qzeros, *scales;
};
Packed need_packed(const CheckpointTensors& t, const std::string& name, const char* method,
                   const std::vector<int64_t>& qweight_shape, const std::vector<int64_t>& qzeros_shape,
                   const std::vector<int64_t>& scales_shape) {
  Packed p;
  p.qweight = &t.need(name + ".qweight", cat(method, " qweight"));
  t.expect_dtype(*p.qweight, {DType::I32}, cat(method, " qweight"));
  t.expect_shape(*p.qweight, qweight_shape, cat(method, " qweight"));
  p.qzeros = &t.need(name + ".qzeros", cat(method, " qzeros"));
  t.expect_dtype(*p.qzeros, {DType::I32}, cat(method, " qzeros"));
  t.expect_shape(*p.qzeros, qzeros_shape, cat(method, " qzeros [groups, packed outputs]"));
  p.scales = &t.need(name + ".scales", cat(method, " scales"));
  t.expect_dtype(*p.scales, {DType::F16}, cat(method, " scales are float16"));
  t.expect_shape(*p.scales, scales_shape, cat(method, " scales [groups, outputs]"));
  return p;
}

struct GptqSettings {
  int bits = 4;
  int64_t group_size = 128;  // -1: per channel
  bool sym = true;
  formats::GptqFormat format = formats::GptqFormat::V1;
};

GptqSettings parse_gptq(const json& qc, const std::string& origin) {
  const Fields f(qc, origin + ": quantization_config");
  GptqSettings s;
  s.bits = static_cast<int>(f.integer({"bits"}, 4));
  if (s.bits == 2 || s.bits == 3)
    fail(f.at(), ".bits: ", s.bits, "-bit GPTQ is not supported (",
         s.bits == 2 ? "qstudy has no 2-bit scheme" : "AutoGPTQ packs 3-bit codes across int32 words", "; supported: 4, 8)");
  if (s.bits != 4 && s.bits != 8) fail(f.at(), ".bits: ", s.bits, " is not a GPTQ bit width (supported: 4, 8)");
  s.group_size = f.integer({"group_size"}, 128);
  if (s.group_size != -1 && s.group_size <= 0) fail(f.at(), ".group_size: expected -1 or a positive integer");
  s.sym = f.boolean("sym", true);
  if (f.boolean("is_marlin_format", false)) fail(f.at(), ".is_marlin_format: Marlin-repacked GPTQ is not supported");
  const std::string format = f.string({"checkpoint_format", "format"}, "gptq");
  if (format == "gptq_v2") s.format = formats::GptqFormat::V2;
  else if (format != "gptq")
    fail(f.at(), ".checkpoint_format: ", quote(format), " is not supported (supported: gptq, gptq_v2)");
  return s;
}

class GptqReader {
 public:
  GptqReader(GptqSettings s, std::string origin) : s_(s), origin_(std::move(origin)) {}

  std::unique_ptr<Linear> operator()(const std::string& name, int64_t N, int64_t K, const TensorStore& store) const {
    const CheckpointTensors t(store);
    if (!t.has(name + ".qweight")) return nullptr;
    const int per_word = 32 / s_.bits;
    const int64_t gs = group_size_of(s_.group_size, K);
    const std::string where = cat(origin_, ": layer ", quote(name));
    if (K % gs != 0) fail(where, ": group size ", gs, " does not divide input size ", K);
    if (K % per_word != 0 || N % per_word != 0)
      fail(where, ": shape [", N, ", ", K, "] is not a multiple of ", per_word, " (GPTQ packs ", per_word,
           " codes per int32)");
    const int64_t G = K / gs;
    const Packed p = need_packed(t, name, "GPTQ", {K / per_word, N}, {G, N / per_word}, {G, N});
    formats::GptqPacked g;
    g.bits = s_.bits;
    g.format = s_.format;
    g.in_features = K, g.out_features = N, g.group_size = gs;
    g.qweight = t.copy<int32_t>(*p.qweight);
    g.qzeros = t.copy<int32_t>(*p.qzeros);
    g.scales = t.copy<uint16_t>(*p.scales);
    for (size_t i = 0; i < g.scales.size(); ++i)
      if (!std::isfinite(f16_to_f32(g.scales[i]))) fail(t.where(*p.scales), ": scale ", i, " is not finite");
    std::vector<int32_t> g_idx;
    if (const Tensor* gi = t.find(name + ".g_idx")) g_idx = read_g_idx(t, *gi, K, gs);
    formats::IntMatrix q = formats::unpack_gptq(g, name);
    q.g_idx = std::move(g_idx);
    if (s_.sym && !q.symmetric)
      fail(t.where(*p.qzeros), ": the config says sym = true but the zero points are not all ", 1 << (s_.bits - 1),
           s_.format == formats::GptqFormat::V1 ? " (stored as z - 1)" : "");
    const Scheme scheme = int_weight_scheme(s_.bits, gs == K ? 0 : gs, q.symmetric, ActFormat::None, where);
    return make_int_linear(name, std::move(q), scheme, read_bias(t, name, N));
  }

 private:
  GptqSettings s_;
  std::string origin_;
};

struct AwqSettings {
  int64_t group_size = 128;
};

AwqSettings parse_awq(const json& qc, const std::string& origin) {
  const Fields f(qc, origin + ": quantization_config");
  const std::string version = f.string({"version"}, "gemm");
  if (version != "gemm")
    fail(f.at(), ".version: AWQ layout ", quote(version), " is not supported (supported: gemm)");
  const std::string backend = f.string({"backend"}, "autoawq");
  if (backend != "autoawq")
    fail(f.at(), ".backend: ", quote(backend), " packs weights differently (supported: autoawq)");
  const int64_t bits = f.integer({"bits", "w_bit"}, 4);
  if (bits != 4) fail(f.at(), ".bits: AWQ GEMM is 4-bit, got ", bits);
  if (!f.boolean("zero_point", true)) fail(f.at(), ".zero_point: AWQ without zero points is not supported");
  AwqSettings s;
  s.group_size = f.integer({"group_size", "q_group_size"}, 128);
  if (s.group_size != -1 && s.group_size <= 0) fail(f.at(), ".group_size: expected -1 or a positive integer");
  return s;
}

class AwqReader {
 public:
  AwqReader(AwqSettings s, std::string origin) : s_(s), origin_(std::move(origin)) {}

  std::unique_ptr<Linear> operator()(const std::string& name, int64_t N, int64_t K, const TensorStore& store) const {
    const CheckpointTensors t(store);
    if (!t.has(name + ".qweight")) return nullptr;
    const int64_t gs = group_size_of(s_.group_size, K);
    const std::string where = cat(origin_, ": layer ", quote(name));
    if (K % gs != 0) fail(where, ": group size ", gs, " does not divide input size ", K);
    if (N % 8 != 0) fail(where, ": output size ", N, " is not a multiple of 8 (AWQ packs 8 outputs per int32)");
    const int64_t G = K / gs;
    const Packed p = need_packed(t, name, "AWQ", {K, N / 8}, {G, N / 8}, {G, N});
    formats::AwqPacked a;
    a.in_features = K, a.out_features = N, a.group_size = gs;
    a.qweight = t.copy<int32_t>(*p.qweight);
    a.qzeros = t.copy<int32_t>(*p.qzeros);
    a.scales = t.copy<uint16_t>(*p.scales);
    for (size_t i = 0; i < a.scales.size(); ++i)
      if (!std::isfinite(f16_to_f32(a.scales[i]))) fail(t.where(*p.scales), ": scale ", i, " is not finite");
    formats::IntMatrix q = formats::unpack_awq_gemm(a, name);
    const Scheme scheme = int_weight_scheme(4, gs == K ? 0 : gs, false, ActFormat::None, where);
    return make_int_linear(name, std::move(q), scheme, read_bias(t, name, N));
  }

 private:
  AwqSettings s_;
  std::string origin_;
};

}  // namespace

LinearFactory gptq_reader(const json& quantization_config, const std::string& origin) {
  auto reader = std::make_shared<GptqReader>(parse_gptq(quantization_config, origin), origin);
  return [reader](const std::string& name, int64_t out, int64_t in, const TensorStore& store) {
    return (*reader)(name, out, in, store);
  };
}

LinearFactory awq_reader(const json& quantization_config, const std::string& origin) {
  auto reader = std::make_shared<AwqReader>(parse_awq(quantization_config, origin), origin);
  return [reader](const std::string& name, int64_t out, int64_t in, const TensorStore& store) {
    return (*reader)(name, out, in, store);
  };
}

}  // namespace qs::quant::files
