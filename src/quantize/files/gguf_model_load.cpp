// Loading llama.cpp GGUF model files (see gguf_model.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "quantize/files/gguf_model.h"
#include "quantize/files/gguf_names.h"
#include "quantize/qlinear.h"
#include "quantize/scheme.h"

namespace qs {

namespace {

using formats::GgmlType;

// A dense layer over a weight dequantized at load, reporting where it came from.
class ConvertedLinear final : public Linear {
 public:
  ConvertedLinear(const std::string& name, Tensor w, std::string from)
      : Linear(name, w.dim(0), w.dim(1)), w_(std::move(w)), from_(std::move(from)) {}
  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    kernels::MatmulArgs a;
    a.M = M, a.N = out_features(), a.K = in_features();
    a.x = x, a.ldx = a.K;
    a.w = w_.data, a.ldw = a.K, a.w_dtype = w_.dtype;
    a.y = y, a.ldy = a.N;
    a.bias = bias_or_null();
    kernels::matmul(a, pool);
  }
  int64_t weight_bytes() const override { return static_cast<int64_t>(w_.nbytes); }
  std::string format() const override {
    return cat(w_.dtype == DType::BF16 ? "bf16" : "f32", " (from ", from_, ")");
  }
  std::vector<float> dequantized() const override { return to_f32(w_); }
  DType arithmetic() const override { return w_.dtype == DType::BF16 ? DType::BF16 : DType::F32; }

 private:
  Tensor w_;
  std::string from_;
};

enum class Kind { Embed, Norm, Linear, Bias, RopeFreqs };

struct Expected {
  std::string hf;              // name in the TensorStore ("" for rope_freqs)
  std::vector<int64_t> shape;  // torch order
  Kind kind;
  bool required;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool is_plain_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

DType dtype_of(GgmlType t) {
  return t == GgmlType::F32 ? DType::F32 : t == GgmlType::F16 ? DType::F16 : DType::BF16;
}

class Loader {
 public:
  Loader(const std::string& path, const GgufLoadOptions& options, GgufLoadReport* report)
      : f_(read_gguf(path)), options_(options), report_(report) {
    require(options.dequantized_dtype == DType::BF16 || options.dequantized_dtype == DType::F32,
            "load_gguf_model: dequantized_dtype must be BF16 or F32");
  }

  std::unique_ptr<Model> load() {
    arch_ = f_.opt_string("general.architecture").value_or("");
    if (arch_.empty()) fail(f_.path, ": missing metadata key 'general.architecture'");
    if (arch_ != "llama" && arch_ != "qwen2" && arch_ != "qwen3")
      f_.bad_key("general.architecture", cat(quote(arch_), " is not supported (supported: llama, qwen2, qwen3)"));
    if (report_) report_->architecture = arch_;
    if (auto parts = f_.opt_int("split.count"); parts && *parts > 1)
      f_.bad_key("split.count", cat("the file is one of ", *parts, " parts of a split model (llama-gguf-split); merge "
                                    "them with llama-gguf-split --merge first"));
    ModelConfig c = read_config();
    const auto expected = expected_tensors(c);
    check_tensors(expected, c);
    apply_rope_freqs(c);

    TensorStore store(f_.path);
    std::map<std::string, std::function<std::unique_ptr<Linear>()>> linears;  // by HF layer name
    const GgufTensorInfo* embed_info = nullptr;
    for (const GgufTensorInfo& t : f_.tensors) {
      const Expected& e = expected.at(t.name);
      if (e.kind == Kind::RopeFreqs) {
        note(t, "read into the config");
        continue;
      }
      if (e.kind == Kind::Embed) embed_info = &t;
      if (is_plain_float(t.type) && e.kind != Kind::Norm && e.kind != Kind::Bias) {
        store.add(mapped(t, e.hf), f_.path);
        note(t, "mapped");
        if (report_) report_->mapped_bytes += static_cast<int64_t>(t.nbytes);
        continue;
      }
      if (e.kind == Kind::Norm || e.kind == Kind::Bias) {
        store.add(is_plain_float(t.type) ? mapped(t, e.hf) : dequantize(t, e.hf, DType::F32), f_.path);
        note(t, "read into f32");
        continue;
      }
      const std::string layer = e.hf.substr(0, e.hf.size() - std::string_view(".weight").size());
      if (e.kind == Kind::Linear && (t.type == GgmlType::Q8_0 || t.type == GgmlType::Q4_0)) {
        store.add(placeholder(t, e.hf), f_.path);
        linears[layer] = [this, &t, layer] { return gguf_linear(t, layer); };
        note(t, "copied (GgufLinear)");
        if (report_) report_->copied_bytes += static_cast<int64_t>(t.nbytes);
        continue;
      }
      Tensor w = dequantize(t, e.hf, options_.dequantized_dtype);
      note(t, cat("dequantized to ", options_.dequantized_dtype == DType::BF16 ? "bf16" : "f32"));
      if (report_) report_->dequantized_bytes += static_cast<int64_t>(w.nbytes);
      if (e.kind == Kind::Linear) {
        const std::string from(formats::ggml_type_name(t.type));
        linears[layer] = [w, layer, from] { return std::make_unique<ConvertedLinear>(layer, w, from); };
      }
      store.add(std::move(w), f_.path);
    }

    LinearFactory factory = [&](const std::string& name, int64_t, int64_t, const TensorStore&) -> std::unique_ptr<Linear> {
      auto it = linears.find(name);
      return it == linears.end() ? nullptr : it->second();
    };
    auto model = build_model(c, std::move(store), f_.path, factory);

    // The tied head reads the embedding: on its GGUF blocks when they are Q8_0/Q4_0 (as llama.cpp
    // runs it), else on the dequantized rows, saying so.
    ModelWeights& w = model->weights();
    if (w.lm_head_is_embed && embed_info && !is_plain_float(embed_info->type)) {
      if (embed_info->type == GgmlType::Q8_0 || embed_info->type == GgmlType::Q4_0) {
        w.lm_head = gguf_linear(*embed_info, "lm_head");
        w.lm_head_is_embed = false;
        if (report_) report_->copied_bytes += static_cast<int64_t>(embed_info->nbytes);
      } else {
        w.lm_head = std::make_unique<ConvertedLinear>("lm_head", w.embed, std::string(formats::ggml_type_name(embed_info->type)));
      }
    }
    return model;
  }

 private:
  std::string key(const char* k) const { return arch_ + "." + k; }

  int64_t positive(const char* k) const {
    const int64_t v = f_.get_int(key(k));
    if (v < 1 || v > (int64_t{1} << 31)) f_.bad_key(key(k), cat(v, " is not a positive count"));
    return v;
  }

  ModelConfig read_config() const {
    ModelConfig c;
    c.model_type = arch_;
    c.hidden_size = positive("embedding_length");
    c.intermediate_size = positive("feed_forward_length");
    c.num_hidden_layers = static_cast<int>(positive("block_count"));
    c.num_attention_heads = static_cast<int>(positive("attention.head_count"));
    c.num_key_value_heads = c.num_attention_heads;
    if (f_.find(key("attention.head_count_kv"))) c.num_key_value_heads = static_cast<int>(positive("attention.head_count_kv"));
    if (c.num_attention_heads % c.num_key_value_heads != 0)
      f_.bad_key(key("attention.head_count_kv"), cat(c.num_key_value_heads, " does not divide ", key("attention.head_count"),
                                                    " = ", c.num_attention_heads));
    if (f_.find(key("attention.key_length"))) {
      c.head_dim = static_cast<int>(positive("attention.key_length"));
    } else {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail(f_.path, ": missing metadata key ", quote(key("attention.key_length")), " (", key("embedding_length"), " ",
             c.hidden_size, " is not divisible by the ", c.num_attention_heads, " heads)");
      c.head_dim = static_cast<int>(c.hidden_size / c.num_attention_heads);
    }
    if (c.head_dim % 2) f_.bad_key(key("attention.key_length"), cat(c.head_dim, " is odd (rotary pairs need an even head size)"));
    if (auto v = f_.opt_int(key("attention.value_length")); v && *v != c.head_dim)
      f_.bad_key(key("attention.value_length"), cat(*v, " differs from the key length ", c.head_dim, " (not supported)"));
    if (auto r = f_.opt_int(key("rope.dimension_count")); r && *r != c.head_dim)
      f_.bad_key(key("rope.dimension_count"), cat(*r, ": partial rotary embeddings are not supported (head size ", c.head_dim, ")"));
    c.max_position_embeddings = positive("context_length");
    c.rms_norm_eps = f_.get_float(key("attention.layer_norm_rms_epsilon"));
    if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1))
      f_.bad_key(key("attention.layer_norm_rms_epsilon"), cat(c.rms_norm_eps, " is not in (0, 1)"));
    c.rope_theta = f_.opt_float(key("rope.freq_base")).value_or(10000.0);
    if (!(c.rope_theta > 1)) f_.bad_key(key("rope.freq_base"), cat(c.rope_theta, " must be > 1"));
    const std::string scaling = f_.opt_string(key("rope.scaling.type")).value_or("none");
    if (scaling == "linear") {
      RopeScaling s;
      s.type = "linear";
      s.factor = f_.get_float(key("rope.scaling.factor"));
      if (!(s.factor > 0)) f_.bad_key(key("rope.scaling.factor"), "must be > 0");
      c.rope_scaling = s;
    } else if (scaling != "none") {
      f_.bad_key(key("rope.scaling.type"), cat(quote(scaling), " is not supported (none, linear; Llama-3 scaling comes as "
                                                               "rope_freqs.weight)"));
    }
    const GgufTensorInfo* embed = f_.find_tensor("token_embd.weight");
    if (!embed) fail(f_.path, ": missing tensor 'token_embd.weight'");
    if (embed->ne.size() != 2 || embed->ne[0] != c.hidden_size)
      fail(f_.path, ": tensor 'token_embd.weight' has shape ", embed->shape_str(), ", expected [vocabulary, ",
           c.hidden_size, "] (", key("embedding_length"), " = ", c.hidden_size, ")");
    c.vocab_size = embed->ne[1];
    if (auto v = f_.opt_int(key("vocab_size")); v && *v != c.vocab_size)
      f_.bad_key(key("vocab_size"), cat(*v, " disagrees with token_embd.weight's ", c.vocab_size, " rows"));
    if (const GgufValue* tokens = f_.find("tokenizer.ggml.tokens"); tokens && tokens->size() != static_cast<uint64_t>(c.vocab_size))
      f_.bad_key("tokenizer.ggml.tokens", cat("holds ", tokens->size(), " tokens but token_embd.weight has ", c.vocab_size,
                                             " rows"));
    c.tie_word_embeddings = f_.find_tensor("output.weight") == nullptr;
    c.attention_bias = f_.find_tensor("blk.0.attn_q.bias") != nullptr;
    c.qk_norm = arch_ == "qwen3";
    c.rope_style = arch_ == "llama" ? kernels::RopeStyle::Interleaved : kernels::RopeStyle::Half;
    if (auto b = f_.opt_int("tokenizer.ggml.bos_token_id")) c.bos_token_id = static_cast<int32_t>(*b);
    if (auto e = f_.opt_int("tokenizer.ggml.eos_token_id")) c.eos_token_ids.push_back(static_cast<int32_t>(*e));
    c.torch_dtype = embed->type == GgmlType::F32 ? "float32" : embed->type == GgmlType::F16 ? "float16" : "bfloat16";
    return c;
  }

  std::map<std::string, Expected> expected_tensors(const ModelConfig& c) const {
    const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, QD = c.q_dim(), KD = c.kv_dim();
    std::map<std::string, Expected> e;
    e["token_embd.weight"] = {"model.embed_tokens.weight", {V, H}, Kind::Embed, true};
    e["output_norm.weight"] = {"model.norm.weight", {H}, Kind::Norm, true};
    e["output.weight"] = {"lm_head.weight", {V, H}, Kind::Linear, false};
    if (arch_ == "llama") e["rope_freqs.weight"] = {"", {c.head_dim / 2}, Kind::RopeFreqs, false};
    const bool qwen2 = arch_ == "qwen2", qwen3 = arch_ == "qwen3";
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string g = cat("blk.", l, "."), h = cat("model.layers.", l, ".");
      auto add = [&](const char* gguf, const char* hf, const char* suffix, std::vector<int64_t> shape, Kind k, bool req) {
        e[g + gguf + suffix] = {h + hf + suffix, std::move(shape), k, req};
      };
      add("attn_norm", "input_layernorm", ".weight", {H}, Kind::Norm, true);
      add("ffn_norm", "post_attention_layernorm", ".weight", {H}, Kind::Norm, true);
      add("attn_q", "self_attn.q_proj", ".weight", {QD, H}, Kind::Linear, true);
      add("attn_k", "self_attn.k_proj", ".weight", {KD, H}, Kind::Linear, true);
      add("attn_v", "self_attn.v_proj", ".weight", {KD, H}, Kind::Linear, true);
      add("attn_output", "self_attn.o_proj", ".weight", {H, QD}, Kind::Linear, true);
      add("ffn_gate", "mlp.gate_proj", ".weight", {I, H}, Kind::Linear, true);
      add("ffn_up", "mlp.up_proj", ".weight", {I, H}, Kind::Linear, true);
      add("ffn_down", "mlp.down_proj", ".weight", {H, I}, Kind::Linear, true);
      add("attn_q", "self_attn.q_proj", ".bias", {QD}, Kind::Bias, qwen2);
      add("attn_k", "self_attn.k_proj", ".bias", {KD}, Kind::Bias, qwen2);
      add("attn_v", "self_attn.v_proj", ".bias", {KD}, Kind::Bias, qwen2);
      if (arch_ == "llama") add("attn_output", "self_attn.o_proj", ".bias", {H}, Kind::Bias, false);
      if (qwen3) {
        add("attn_q_norm", "self_attn.q_norm", ".weight", {c.head_dim}, Kind::Norm, true);
        add("attn_k_norm", "self_attn.k_norm", ".weight", {c.head_dim}, Kind::Norm, true);
      }
    }
    return e;
  }

  void check_tensors(const std::map<std::string, Expected>& expected, const ModelConfig& c) const {
    for (const GgufTensorInfo& t : f_.tensors) {
      auto it = expected.find(t.name);
      if (it == expected.end())
        fail(f_.path, ": tensor ", quote(t.name), " is not part of a ", arch_, " model with ", c.num_hidden_layers,
             " blocks (", key("block_count"), ")");
      const Expected& e = it->second;
      if (t.torch_shape() != e.shape)
        fail(f_.path, ": tensor ", quote(t.name), " has shape ", t.shape_str(), ", expected ", shape_str(e.shape),
             " from the metadata (hidden ", c.hidden_size, ", feed-forward ", c.intermediate_size, ", ",
             c.num_attention_heads, " heads / ", c.num_key_value_heads, " KV heads of ", c.head_dim, ")");
      if (!formats::ggml_can_dequantize(t.type))
        fail(f_.path, ": tensor ", quote(t.name), " has ggml type ", formats::ggml_type_name(t.type),
             ", which qstudy cannot decode (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, "
             "Q5_K, Q6_K)");
      if (e.kind == Kind::RopeFreqs && t.type != GgmlType::F32)
        fail(f_.path, ": tensor 'rope_freqs.weight' has type ", formats::ggml_type_name(t.type), ", expected F32");
    }
    for (const auto& [name, e] : expected)
      if (e.required && !f_.find_tensor(name))
        fail(f_.path, ": missing tensor ", quote(name), " (a ", arch_, " model needs it)");
  }

  void apply_rope_freqs(ModelConfig& c) const {
    const GgufTensorInfo* t = f_.find_tensor("rope_freqs.weight");
    if (!t) return;
    require(!c.rope_scaling, f_.path, ": both ", key("rope.scaling.type"), " and rope_freqs.weight are given");
    std::vector<float> factors(static_cast<size_t>(t->numel()));
    std::memcpy(factors.data(), t->data, factors.size() * 4);
    auto s = gguf_names::llama3_scaling_from_factors(c, factors, f_.opt_int(key("rope.scaling.original_context_length")));
    if (!s)
      fail(f_.path, ": tensor 'rope_freqs.weight' is not Llama-3 rope scaling of ", key("rope.freq_base"), " = ",
           c.rope_theta, " (the only kind qstudy reads)");
    if (s->type == "llama3") c.rope_scaling = *s;
  }

  void note(const GgufTensorInfo& t, std::string use) const {
    if (report_) report_->tensors.push_back({t.name, std::string(formats::ggml_type_name(t.type)), std::move(use)});
  }

  // Tensors keep the map alive, not the parsed metadata.
  std::shared_ptr<const void> owner() const { return std::shared_ptr<const void>(f_.file, f_.file->data()); }

  Tensor mapped(const GgufTensorInfo& t, const std::string& hf) const {
    Tensor x;
    x.name = hf;
    x.dtype = dtype_of(t.type);
    x.shape = t.torch_shape();
    x.data = t.data;
    x.nbytes = t.nbytes;
    x.owner = owner();
    return x;
  }

  // Raw bytes under the HF name, so build_model sees the tensor exist; the factory makes the layer.
  Tensor placeholder(const GgufTensorInfo& t, const std::string& hf) const {
    Tensor x;
    x.name = hf;
    x.dtype = DType::U8;
    x.shape = {static_cast<int64_t>(t.nbytes)};
    x.data = t.data;
    x.nbytes = t.nbytes;
    x.owner = owner();
    return x;
  }

  Tensor dequantize(const GgufTensorInfo& t, const std::string& hf, DType dtype) const {
    const int64_t K = t.ne[0], rows = t.numel() / std::max<int64_t>(K, 1);
    Tensor out = make_owned_tensor(hf, dtype, t.torch_shape());
    const size_t row_bytes = formats::ggml_row_size(t.type, K);
    default_pool().parallel_for(rows, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(K));
      for (int64_t r = r0; r < r1; ++r) {
        formats::dequantize_row(t.type, t.data + r * row_bytes, row.data(), K);
        if (dtype == DType::F32)
          std::memcpy(static_cast<float*>(mutable_data(out)) + r * K, row.data(), static_cast<size_t>(K) * 4);
        else
          kernels::f32_to_bf16(row.data(), static_cast<uint16_t*>(mutable_data(out)) + r * K, K);
      }
    });
    return out;
  }

  std::unique_ptr<Linear> gguf_linear(const GgufTensorInfo& t, const std::string& layer) const {
    std::vector<uint8_t> blocks(t.data, t.data + t.nbytes);
    const quant::Scheme scheme = quant::find_scheme(t.type == GgmlType::Q8_0 ? "q8_0" : "q4_0");
    return quant::make_gguf_linear(layer, std::move(blocks), t.ne[1], t.ne[0], scheme);
  }

  GgufFile f_;
  GgufLoadOptions options_;
  GgufLoadReport* report_;
  std::string arch_;
};

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path, const GgufLoadOptions& options, GgufLoadReport* report) {
  return Loader(path, options, report).load();
}

std::unique_ptr<Model> load_gguf_model(const std::string& path) { return load_gguf_model(path, GgufLoadOptions{}); }

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path) { return Tokenizer::from_gguf_file(path); }

}  // namespace qs
