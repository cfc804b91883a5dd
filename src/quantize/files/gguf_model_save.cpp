// Writing models as llama.cpp GGUF files (see gguf_model.h).
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/ops.h"
#include "quantize/files/gguf_model.h"
#include "quantize/files/gguf_names.h"
#include "quantize/qlinear.h"

namespace qs {

namespace {

using formats::GgmlType;

// llama.cpp's llama_ftype values for general.file_type.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q8_0: return 7;
    default: return 32;  // BF16
  }
}

// Source row of each output row when HF's q/k rows (rotate_half pairs i, i + d/2) are put in
// Meta's order (pairs 2j, 2j + 1), as convert_hf_to_gguf.py's permute does: within each head,
// row 2j + s comes from row s * d/2 + j.
std::vector<int64_t> meta_rows(int64_t rows, int64_t head_dim) {
  std::vector<int64_t> src(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % head_dim;
    src[static_cast<size_t>(r)] = r - i + (i % 2) * (head_dim / 2) + i / 2;
  }
  return src;
}

struct Planned {
  GgufWriter::Entry entry;
  std::function<void(GgufWriter&)> write;
};

class Saver {
 public:
  Saver(const Model& model, const Tokenizer& tokenizer, std::string path, const GgufSaveOptions& options)
      : m_(model), c_(model.config()), tok_(tokenizer), path_(std::move(path)), options_(options) {}

  void save() {
    arch_ = gguf_names::architecture_of(c_.model_type);
    if (arch_.empty())
      fail(path_, ": model_type ", quote(c_.model_type), " cannot be written as GGUF (supported: llama, mistral, qwen2, qwen3)");
    permute_ = arch_ == "llama" && c_.rope_style == kernels::RopeStyle::Half;
    if (arch_ != "llama" && c_.rope_style != kernels::RopeStyle::Half)
      fail(path_, ": a ", arch_, " model with interleaved rotary pairs cannot be written (llama.cpp runs ", arch_,
           " in NeoX order)");
    const ModelWeights& w = m_.weights();
    std::vector<Planned> plan;

    // The embedding, or the Q8_0/Q4_0 blocks it was dequantized from when it is the tied head.
    const bool head_blocks_are_embedding = c_.tie_word_embeddings && !w.lm_head_is_embed && embedding_is_head(w);
    if (head_blocks_are_embedding) {
      plan.push_back(linear(*w.lm_head, "token_embd.weight", 0));
    } else {
      const Tensor& e = w.embed;
      const GgmlType t = e.dtype == DType::F32 ? GgmlType::F32 : e.dtype == DType::F16 ? GgmlType::F16 : GgmlType::BF16;
      plan.push_back({{"token_embd.weight", t, {c_.hidden_size, c_.vocab_size}},
                      [&e](GgufWriter& out) { out.write(e.data, e.nbytes); }});
    }
    if (c_.rope_scaling && c_.rope_scaling->type == "llama3") {
      if (arch_ != "llama") fail(path_, ": Llama-3 rope scaling can only be written for arch llama");
      auto factors = std::make_shared<std::vector<float>>(gguf_names::llama3_rope_factors(c_));
      plan.push_back({{"rope_freqs.weight", GgmlType::F32, {static_cast<int64_t>(factors->size())}},
                      [factors](GgufWriter& out) { out.write(factors->data(), factors->size() * 4); }});
    }
    for (int l = 0; l < c_.num_hidden_layers; ++l) {
      const DecoderLayer& d = w.layers[static_cast<size_t>(l)];
      const std::string b = cat("blk.", l, ".");
      plan.push_back(f32_vector(d.attn_norm, b + "attn_norm.weight"));
      plan.push_back(linear(*d.q, b + "attn_q.weight", permute_ ? c_.head_dim : 0));
      plan.push_back(linear(*d.k, b + "attn_k.weight", permute_ ? c_.head_dim : 0));
      plan.push_back(linear(*d.v, b + "attn_v.weight", 0));
      plan.push_back(linear(*d.o, b + "attn_output.weight", 0));
      for (auto [lin, name, perm] : {std::tuple{d.q.get(), "attn_q.bias", true}, {d.k.get(), "attn_k.bias", true},
                                     {d.v.get(), "attn_v.bias", false}, {d.o.get(), "attn_output.bias", false}})
        if (!lin->bias().empty()) plan.push_back(f32_vector(lin->bias(), b + name, perm && permute_ ? c_.head_dim : 0));
      if (c_.qk_norm) {
        plan.push_back(f32_vector(d.q_norm, b + "attn_q_norm.weight"));
        plan.push_back(f32_vector(d.k_norm, b + "attn_k_norm.weight"));
      }
      plan.push_back(f32_vector(d.ffn_norm, b + "ffn_norm.weight"));
      plan.push_back(linear(*d.gate, b + "ffn_gate.weight", 0));
      plan.push_back(linear(*d.up, b + "ffn_up.weight", 0));
      plan.push_back(linear(*d.down, b + "ffn_down.weight", 0));
    }
    plan.push_back(f32_vector(w.final_norm, "output_norm.weight"));
    if (!w.lm_head_is_embed && !head_blocks_are_embedding) plan.push_back(linear(*w.lm_head, "output.weight", 0));

    std::vector<GgufWriter::Entry> entries;
    for (const auto& p : plan) entries.push_back(p.entry);
    GgufWriter out(path_, metadata(plan), std::move(entries));
    for (const auto& p : plan) p.write(out);
    out.finish();
  }

 private:
  std::string key(const char* k) const { return arch_ + "." + k; }

  std::vector<GgufKV> metadata(const std::vector<Planned>& plan) const {
    // general.file_type: the type holding most of the linear weights.
    std::map<GgmlType, int64_t> params;
    for (const auto& p : plan)
      if (p.entry.ne.size() == 2 && p.entry.name != "token_embd.weight") params[p.entry.type] += p.entry.ne[0] * p.entry.ne[1];
    GgmlType main = GgmlType::BF16;
    int64_t most = -1;
    for (const auto& [t, n] : params)
      if (n > most) main = t, most = n;
    const std::string name =
        options_.name.empty() ? std::filesystem::path(path_).stem().string() : options_.name;
    auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
    std::vector<GgufKV> kv = {
        {"general.architecture", GgufValue::string(arch_)},
        {"general.type", GgufValue::string("model")},
        {"general.name", GgufValue::string(name)},
        {key("block_count"), u32(c_.num_hidden_layers)},
        {key("context_length"), u32(c_.max_position_embeddings)},
        {key("embedding_length"), u32(c_.hidden_size)},
        {key("feed_forward_length"), u32(c_.intermediate_size)},
        {key("attention.head_count"), u32(c_.num_attention_heads)},
        {key("attention.head_count_kv"), u32(c_.num_key_value_heads)},
        {key("rope.freq_base"), GgufValue::f32(static_cast<float>(c_.rope_theta))},
        {key("attention.layer_norm_rms_epsilon"), GgufValue::f32(static_cast<float>(c_.rms_norm_eps))},
    };
    if (c_.q_dim() != c_.hidden_size || arch_ == "qwen3") {
      kv.push_back({key("attention.key_length"), u32(c_.head_dim)});
      kv.push_back({key("attention.value_length"), u32(c_.head_dim)});
    }
    kv.push_back({"general.file_type", GgufValue::u32(file_type_of(main))});
    kv.push_back({key("vocab_size"), u32(c_.vocab_size)});
    kv.push_back({key("rope.dimension_count"), u32(c_.head_dim)});
    if (c_.rope_scaling && c_.rope_scaling->type == "linear") {
      kv.push_back({key("rope.scaling.type"), GgufValue::string("linear")});
      kv.push_back({key("rope.scaling.factor"), GgufValue::f32(static_cast<float>(c_.rope_scaling->factor))});
    } else if (c_.rope_scaling && c_.rope_scaling->type == "llama3" &&
               c_.rope_scaling->original_max_position_embeddings != 8192) {
      // convert_hf_to_gguf.py assumes 8192; say otherwise so the scaling can be read back.
      kv.push_back({key("rope.scaling.original_context_length"), u32(c_.rope_scaling->original_max_position_embeddings)});
    }
    kv.push_back({"general.quantization_version", GgufValue::u32(2)});
    for (auto& t : tok_.to_gguf_metadata(c_.vocab_size)) kv.push_back(std::move(t));
    return kv;
  }

  Planned f32_vector(const std::vector<float>& v, const std::string& name, int64_t head_dim = 0) const {
    return {{name, GgmlType::F32, {static_cast<int64_t>(v.size())}}, [&v, head_dim](GgufWriter& out) {
              if (!head_dim) return out.write(v.data(), v.size() * 4);
              for (int64_t r : meta_rows(static_cast<int64_t>(v.size()), head_dim)) out.write(&v[static_cast<size_t>(r)], 4);
            }};
  }

  // A linear layer's weight, rows permuted to Meta's order when head_dim is given.
  Planned linear(const Linear& lin, const std::string& name, int64_t head_dim) const {
    const int64_t out_f = lin.out_features(), in_f = lin.in_features();
    std::vector<int64_t> rows = head_dim ? meta_rows(out_f, head_dim) : std::vector<int64_t>();
    if (const auto* q = dynamic_cast<const quant::QuantLinear*>(&lin)) {
      const std::vector<uint8_t>* blocks = q->storage().gguf_blocks;
      if (!blocks)
        fail(path_, ": layer ", quote(lin.name()), " is ", lin.format(), ", which GGUF cannot hold (supported: dense f32, "
             "f16, bf16 layers and the q8_0, q4_0 schemes)");
      const GgmlType t = q->scheme().weight == quant::WeightFormat::Q4_0 ? GgmlType::Q4_0 : GgmlType::Q8_0;
      const size_t row_bytes = formats::ggml_row_size(t, in_f);
      return {{name, t, {in_f, out_f}}, [blocks, rows, row_bytes, out_f](GgufWriter& out) {
                if (rows.empty()) return out.write(blocks->data(), blocks->size());
                for (int64_t r = 0; r < out_f; ++r) out.write(blocks->data() + rows[static_cast<size_t>(r)] * row_bytes, row_bytes);
              }};
    }
    const std::string f = lin.format();
    GgmlType t;
    if (f == "f32" || f.rfind("f32 (from ", 0) == 0) t = GgmlType::F32;
    else if (f == "f16") t = GgmlType::F16;
    else if (f == "bf16" || f.rfind("bf16 (from ", 0) == 0) t = GgmlType::BF16;
    else
      fail(path_, ": layer ", quote(lin.name()), " is ", f, ", which GGUF cannot hold (supported: dense f32, f16, bf16 "
           "layers and the q8_0, q4_0 schemes)");
    return {{name, t, {in_f, out_f}}, [&lin, t, rows, in_f, out_f](GgufWriter& out) {
              const std::vector<float> w = lin.dequantized();
              std::vector<uint16_t> half(static_cast<size_t>(in_f));
              for (int64_t r = 0; r < out_f; ++r) {
                const float* src = w.data() + (rows.empty() ? r : rows[static_cast<size_t>(r)]) * in_f;
                if (t == GgmlType::F32) {
                  out.write(src, static_cast<size_t>(in_f) * 4);
                  continue;
                }
                for (int64_t k = 0; k < in_f; ++k)
                  half[static_cast<size_t>(k)] = t == GgmlType::F16 ? f32_to_f16(src[k]) : f32_to_bf16(src[k]);
                out.write(half.data(), half.size() * 2);
              }
            }};
  }

  // True when the embedding holds exactly the tied head's Q8_0/Q4_0 values (rounded to its
  // dtype): it was dequantized from those blocks at load, and the file should carry the blocks.
  bool embedding_is_head(const ModelWeights& w) const {
    const auto* q = dynamic_cast<const quant::QuantLinear*>(w.lm_head.get());
    if (!q || !q->storage().gguf_blocks) return false;
    const std::vector<float> head = w.lm_head->dequantized();
    const std::vector<float> embed = to_f32(w.embed);
    if (head.size() != embed.size()) return false;
    for (size_t i = 0; i < head.size(); ++i) {
      const float rounded = w.embed.dtype == DType::BF16   ? bf16_to_f32(f32_to_bf16(head[i]))
                            : w.embed.dtype == DType::F16 ? f16_to_f32(f32_to_f16(head[i]))
                                                          : head[i];
      if (std::memcmp(&rounded, &embed[i], 4) != 0) return false;
    }
    return true;
  }

  const Model& m_;
  const ModelConfig& c_;
  const Tokenizer& tok_;
  std::string path_;
  GgufSaveOptions options_;
  std::string arch_;
  bool permute_ = false;
};

}  // namespace

void save_gguf_model(const Model& model, const Tokenizer& tokenizer, const std::string& out_path,
                     const GgufSaveOptions& options) {
  Saver(model, tokenizer, out_path, options).save();
}

}  // namespace qs
