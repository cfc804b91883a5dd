#include "quantize/files/hf_checkpoint.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "quantize/files/rope_layout.h"

namespace qs::quant::files {

namespace fs = std::filesystem;

// ---- writing ---------------------------------------------------------------------------------

int64_t PlannedTensor::nbytes() const {
  int64_t n = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<uint8_t> to_bytes(const void* data, size_t nbytes) {
  std::vector<uint8_t> out(nbytes);
  if (nbytes) std::memcpy(out.data(), data, nbytes);
  return out;
}

PlannedTensor known_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  PlannedTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  require(static_cast<int64_t>(bytes.size()) == t.nbytes(), "tensor ", quote(t.name), ": ", bytes.size(),
          " bytes for shape and dtype needing ", t.nbytes());
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  t.produce = [shared] { return *shared; };
  return t;
}

PlannedTensor lazy_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                          std::function<std::vector<uint8_t>()> produce) {
  PlannedTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.produce = std::move(produce);
  return t;
}

std::vector<uint8_t> encode_floats(std::span<const float> values, DType dtype) {
  std::vector<uint8_t> out(values.size() * dtype_size(dtype));
  switch (dtype) {
    case DType::F32:
      if (!values.empty()) std::memcpy(out.data(), values.data(), values.size() * 4);
      break;
    case DType::BF16:
    case DType::F16:
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    default:
      fail("encode_floats: dtype ", dtype_name(dtype), " is not a float dtype");
  }
  return out;
}

DType lossless_dtype(std::span<const float> values, DType preferred) {
  if (preferred != DType::BF16 && preferred != DType::F16) return DType::F32;
  for (float v : values) {
    const float back = preferred == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : f16_to_f32(f32_to_f16(v));
    if (f32_bits(back) != f32_bits(v)) return DType::F32;
  }
  return preferred;
}

PlannedTensor float_tensor(std::string name, std::vector<int64_t> shape, std::vector<float> values, DType preferred) {
  const DType dtype = lossless_dtype(values, preferred);
  return known_tensor(std::move(name), dtype, std::move(shape), encode_floats(values, dtype));
}

std::vector<ModelLinear> model_linears(const Model& model) {
  std::vector<ModelLinear> out;
  auto add = [&](const Linear* lin) { out.push_back({lin->name(), lin, dynamic_cast<const QuantLinear*>(lin)}); };
  for (auto& layer : const_cast<Model&>(model).weights().layers)
    for (auto& [role, slot] : layer.linears()) add(slot->get());
  if (!model.weights().lm_head_is_embed) add(model.weights().lm_head.get());
  return out;
}

DType model_dtype(const Model& model) { return model.weights().embed.dtype; }

PlannedTensor dense_weight(const ModelLinear& layer) {
  const std::string fmt = layer.linear->format();
  const DType dtype = fmt == "bf16" ? DType::BF16 : fmt == "f16" ? DType::F16 : fmt == "f32" ? DType::F32 : DType::U8;
  if (dtype == DType::U8)
    fail("layer ", quote(layer.name), ": format ", quote(fmt), " is neither quantized nor a 16/32-bit dense weight");
  PlannedTensor t;
  t.name = layer.name + ".weight";
  t.dtype = dtype;
  t.shape = {layer.linear->out_features(), layer.linear->in_features()};
  const Linear* lin = layer.linear;
  // Exact: the weight came from this dtype and converts back bit for bit.
  t.produce = [lin, dtype] { return encode_floats(lin->dequantized(), dtype); };
  return t;
}

void add_bias(const ModelLinear& layer, DType dtype, std::vector<PlannedTensor>& out) {
  const auto& b = layer.linear->bias();
  if (!b.empty()) out.push_back(float_tensor(layer.name + ".bias", {static_cast<int64_t>(b.size())}, b, dtype));
}

std::vector<PlannedTensor> plan_model_tensors(
    const Model& model, const std::function<std::vector<PlannedTensor>(const ModelLinear&)>& quantized) {
  const ModelWeights& w = model.weights();
  const DType dtype = model_dtype(model);
  const int64_t H = model.config().hidden_size;
  std::vector<PlannedTensor> out;
  PlannedTensor embed;
  embed.name = "model.embed_tokens.weight";
  embed.dtype = w.embed.dtype;
  embed.shape = w.embed.shape;
  const Tensor* e = &w.embed;
  embed.produce = [e] { return to_bytes(e->data, e->nbytes); };
  out.push_back(std::move(embed));

  std::vector<ModelLinear> linears = model_linears(model);
  // Meta-layout models (llama2.c) are written in Hugging Face's rotate-half layout: q_proj and
  // k_proj rows are moved within each head (rope_layout.h); the moved copies live as long as the
  // tensors that read them.
  const ModelConfig& c = model.config();
  const bool meta_rope = c.rope_style == kernels::RopeStyle::Interleaved;
  auto emit = [&](const ModelLinear& original) {
    ModelLinear l = original;
    std::shared_ptr<const Linear> moved;
    const bool is_q = l.name.ends_with(".self_attn.q_proj"), is_k = l.name.ends_with(".self_attn.k_proj");
    if (meta_rope && (is_q || is_k)) {
      moved = to_rotate_half_rows(*l.linear, is_q ? c.num_attention_heads : c.num_key_value_heads, c.head_dim);
      l.linear = moved.get();
      l.quant = dynamic_cast<const QuantLinear*>(moved.get());
    }
    const size_t first = out.size();
    if (l.quant) {
      for (auto& t : quantized(l)) out.push_back(std::move(t));
    } else {
      out.push_back(dense_weight(l));
    }
    add_bias(l, dtype, out);
    for (size_t i = first; i < out.size(); ++i) out[i].keep_alive = moved;
  };
  size_t next = 0;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const DecoderLayer& d = w.layers[i];
    const std::string p = cat("model.layers.", i, ".");
    out.push_back(float_tensor(p + "input_layernorm.weight", {H}, d.attn_norm, dtype));
    out.push_back(float_tensor(p + "post_attention_layernorm.weight", {H}, d.ffn_norm, dtype));
    if (!d.q_norm.empty()) {
      const int64_t hd = static_cast<int64_t>(d.q_norm.size());
      out.push_back(float_tensor(p + "self_attn.q_norm.weight", {hd}, d.q_norm, dtype));
      out.push_back(float_tensor(p + "self_attn.k_norm.weight", {hd}, d.k_norm, dtype));
    }
    for (int j = 0; j < 7; ++j) emit(linears[next++]);
  }
  out.push_back(float_tensor("model.norm.weight", {H}, w.final_norm, dtype));
  if (next < linears.size()) emit(linears[next]);
  return out;
}

WrittenShards write_sharded_safetensors(const std::string& dir, const std::vector<PlannedTensor>& tensors,
                                        int64_t shard_bytes) {
  require(shard_bytes > 0, "shard size must be positive, got ", shard_bytes);
  std::vector<std::vector<size_t>> shards(1);
  int64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].nbytes();
    if (!shards.back().empty() && in_shard + n > shard_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(i);
    in_shard += n;
    total += n;
  }
  // Weights of an earlier save into this directory would shadow or outlive the new ones
  // (transformers reads model.safetensors before an index).
  std::error_code ec;
  static const std::regex kWeightFile(R"(model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?)");
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), kWeightFile)) fs::remove(e.path(), ec);
  WrittenShards written;
  written.tensor_bytes = total;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char shard_name[64];
    std::snprintf(shard_name, sizeof shard_name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : shard_name;
    std::vector<SafetensorsWriter::Entry> entries;
    std::map<std::string, std::string> metadata = {{"format", "pt"}};
    for (size_t i : shards[s]) {
      entries.push_back({tensors[i].name, tensors[i].dtype, tensors[i].shape});
      for (const auto& [k, v] : tensors[i].metadata) metadata[k] = v;
      weight_map[tensors[i].name] = file;
    }
    SafetensorsWriter w(dir + "/" + file, entries, metadata);
    for (size_t i : shards[s]) {
      const std::vector<uint8_t> bytes = tensors[i].produce();
      w.write_next(bytes.data(), bytes.size());
    }
    w.finish();
    written.files.push_back(file);
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
    written.files.push_back("model.safetensors.index.json");
  }
  return written;
}

void write_config_json(const Model& model, const std::string& source_dir, const std::string& out_dir,
                       const nlohmann::json& quantization_config) {
  nlohmann::json config;
  const std::string source_config = source_dir.empty() ? "" : source_dir + "/config.json";
  if (!source_config.empty() && file_exists(source_config)) {
    config = read_json_file(source_config);
    if (!config.is_object()) fail(source_config, ": expected a JSON object");
  } else {
    // No config.json (a llama2.c checkpoint): one describing the model; its q/k rows are written
    // in the rotate-half layout that config implies.
    config = nlohmann::json::parse(model_config_to_json(model.config()));
  }
  if (quantization_config.is_null()) config.erase("quantization_config");
  else config["quantization_config"] = quantization_config;
  if (!model.weights().lm_head_is_embed) config["tie_word_embeddings"] = false;
  write_file_atomic(out_dir + "/config.json", config.dump(2) + "\n");
}

std::vector<std::string> copy_tokenizer_files(const std::string& source_dir, const std::string& out_dir) {
  static const char* kFiles[] = {"tokenizer.json",         "tokenizer_config.json", "special_tokens_map.json",
                                 "generation_config.json", "chat_template.jinja",   "chat_template.json",
                                 "tokenizer.model",        "vocab.json",            "merges.txt",
                                 "added_tokens.json"};
  std::vector<std::string> copied;
  if (source_dir.empty() || !is_directory(source_dir)) return copied;
  for (const char* f : kFiles) {
    const std::string src = source_dir + "/" + f;
    if (!file_exists(src)) continue;
    write_file_atomic(out_dir + "/" + f, read_file(src));
    copied.push_back(f);
  }
  return copied;
}

// ---- reading ---------------------------------------------------------------------------------

const Tensor& CheckpointTensors::need(const std::string& name, const std::string& what) const {
  const Tensor* t = store_.find(name);
  if (!t) fail(store_.origin(), ": missing tensor ", quote(name), " (", what, ")");
  return *t;
}

std::string CheckpointTensors::where(const Tensor& t) const {
  return cat(store_.source_of(t.name), ": tensor ", quote(t.name));
}

void CheckpointTensors::expect_dtype(const Tensor& t, std::initializer_list<DType> allowed,
                                     const std::string& what) const {
  std::string names;
  for (DType d : allowed) {
    if (d == t.dtype) return;
    names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
  }
  fail(where(t), " has dtype ", dtype_name(t.dtype), ", expected ", names, " (", what, ")");
}

void CheckpointTensors::expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) const {
  if (t.shape == shape) return;
  Tensor expected;
  expected.shape = shape;
  fail(where(t), " has shape ", t.shape_str(), ", expected ", expected.shape_str(), " (", what, ")");
}

void CheckpointTensors::expect_numel(const Tensor& t, int64_t numel, const std::string& what) const {
  if (t.numel() != numel) fail(where(t), " has shape ", t.shape_str(), ", expected ", numel, " values (", what, ")");
}

std::vector<float> CheckpointTensors::floats(const Tensor& t, const std::string& what) const {
  expect_dtype(t, {DType::F32, DType::F16, DType::BF16}, what);
  return to_f32(t);
}

const std::map<std::string, std::string>& CheckpointTensors::shard_metadata(const Tensor& t) const {
  const std::string& path = store_.source_of(t.name);
  auto it = metadata_.find(path);
  if (it == metadata_.end()) {
    std::map<std::string, std::string> m;
    // The store's tensors all come from files read by path; a store filled in memory (the fuzz
    // target) keeps its metadata in the store itself.
    if (file_exists(path)) m = read_safetensors(path).metadata;
    else m = store_.metadata;
    it = metadata_.emplace(path, std::move(m)).first;
  }
  return it->second;
}

std::vector<float> read_bias(const CheckpointTensors& t, const std::string& name, int64_t out) {
  const Tensor* b = t.find(name + ".bias");
  if (!b) return {};
  t.expect_shape(*b, {out}, "bias");
  return t.floats(*b, "bias");
}

// Group index of each input column, checked: every group holds exactly group_size columns.
std::vector<int32_t> read_g_idx(const CheckpointTensors& t, const Tensor& g, int64_t K, int64_t group_size) {
  t.expect_dtype(g, {DType::I32, DType::I64}, "weight_g_idx");
  t.expect_numel(g, K, "weight_g_idx, one group per input column");
  std::vector<int32_t> idx(K);
  const int64_t groups = K / group_size;
  std::vector<int64_t> count(groups, 0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t v = g.dtype == DType::I32 ? static_cast<const int32_t*>(g.data)[k] : static_cast<const int64_t*>(g.data)[k];
    if (v < 0 || v >= groups) fail(t.where(g), ": g_idx[", k, "] = ", v, " is outside [0, ", groups, ")");
    idx[k] = static_cast<int32_t>(v);
    ++count[v];
  }
  for (int64_t i = 0; i < groups; ++i)
    if (count[i] != group_size)
      fail(t.where(g), ": group ", i, " has ", count[i], " columns, expected ", group_size, " (act-order groups)");
  bool trivial = true;
  for (int64_t k = 0; k < K && trivial; ++k) trivial = idx[k] == k / group_size;
  return trivial ? std::vector<int32_t>{} : idx;
}

Scheme int_weight_scheme(int bits, int64_t group_size, bool symmetric, ActFormat act, const std::string& where) {
  if (act == ActFormat::Int8PerToken) {
    require(bits == 8 && symmetric && group_size == 0, where,
            ": int8 per-token activations need symmetric 8-bit per-channel weights (qstudy scheme w8a8-int8), got ",
            bits, "-bit ", symmetric ? "symmetric" : "asymmetric", group_size ? cat(" groups of ", group_size) : "");
    return find_scheme("w8a8-int8");
  }
  require(act == ActFormat::None, where, ": unsupported activation quantization for integer weights");
  const char* name = bits == 4 ? "w4a16" : bits == 3 ? "w3a16" : bits == 8 ? "w8a16-int8" : nullptr;
  if (!name) fail(where, ": ", bits, "-bit integer weights have no qstudy scheme (supported: 3, 4, 8 bits)");
  Scheme s = find_scheme(name);
  s.group_size = group_size;
  s.symmetric = symmetric;
  return s;
}

std::string f32_hex(float v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, f32_bits(v));
  return buf;
}

bool parse_f32_hex(const std::string& text, float& out) {
  if (text.size() != 10 || text[0] != '0' || text[1] != 'x') return false;
  uint32_t bits = 0;
  for (size_t i = 2; i < text.size(); ++i) {
    const char c = text[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    bits = bits << 4 | static_cast<uint32_t>(d);
  }
  out = f32_from_bits(bits);
  return true;
}

}  // namespace qs::quant::files
