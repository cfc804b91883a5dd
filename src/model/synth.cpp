#include "model/synth.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"

namespace qs {

namespace fs = std::filesystem;

namespace {

ModelConfig base(const char* type, int64_t vocab, int64_t hidden, int64_t inter, int layers, int heads, int kv,
                 int head_dim, int64_t max_pos, double theta, double eps, bool tie) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv;
  c.head_dim = head_dim;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.rms_norm_eps = eps;
  c.tie_word_embeddings = tie;
  c.attention_bias = std::string(type) == "qwen2";
  c.qk_norm = std::string(type) == "qwen3";
  c.torch_dtype = "bfloat16";
  return c;
}

RopeScaling llama3_scaling(double factor) {
  RopeScaling s;
  s.type = "llama3";
  s.factor = factor;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  return s;
}

std::vector<SynthPreset> make_presets() {
  std::vector<SynthPreset> p;
  {
    ModelConfig c = base("llama", 128256, 2048, 8192, 16, 32, 8, 64, 131072, 500000.0, 1e-5, true);
    c.rope_scaling = llama3_scaling(32.0);
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128008, 128009};
    p.push_back({"llama-3.2-1b", "Llama-3.2-1B shapes (1.24B parameters, tied embeddings)", c, "llama3"});
  }
  {
    ModelConfig c = base("llama", 128256, 3072, 8192, 28, 24, 8, 128, 131072, 500000.0, 1e-5, true);
    c.rope_scaling = llama3_scaling(32.0);
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128008, 128009};
    p.push_back({"llama-3.2-3b", "Llama-3.2-3B shapes (3.2B parameters)", c, "llama3"});
  }
  {
    ModelConfig c = base("llama", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 500000.0, 1e-5, false);
    c.rope_scaling = llama3_scaling(8.0);
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128008, 128009};
    p.push_back({"llama-3.1-8b", "Llama-3.1-8B shapes (8.0B parameters)", c, "llama3"});
  }
  {
    ModelConfig c = base("qwen2", 151936, 896, 4864, 24, 14, 2, 64, 32768, 1000000.0, 1e-6, true);
    c.bos_token_id = 151643;
    c.eos_token_ids = {151643};
    p.push_back({"qwen2.5-0.5b", "Qwen2.5-0.5B shapes (494M parameters, q/k/v bias)", c, "qwen3"});
  }
  {
    ModelConfig c = base("qwen2", 151936, 1536, 8960, 28, 12, 2, 128, 32768, 1000000.0, 1e-6, true);
    c.bos_token_id = 151643;
    c.eos_token_ids = {151643};
    p.push_back({"qwen2.5-1.5b", "Qwen2.5-1.5B shapes (1.5B parameters)", c, "qwen3"});
  }
  {
    ModelConfig c = base("qwen3", 151936, 1024, 3072, 28, 16, 8, 128, 40960, 1000000.0, 1e-6, true);
    c.bos_token_id = 151643;
    c.eos_token_ids = {151645};
    p.push_back({"qwen3-0.6b", "Qwen3-0.6B shapes (q/k RMSNorm, head_dim 128)", c, "qwen3"});
  }
  {
    ModelConfig c = base("llama", 49152, 576, 1536, 30, 9, 3, 64, 8192, 100000.0, 1e-5, true);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"smollm2-135m", "SmolLM2-135M shapes (Llama-2 tokenizer stands in for its own)", c, "llama2"});
  }
  {
    ModelConfig c = base("mistral", 32768, 4096, 14336, 32, 32, 8, 128, 32768, 1000000.0, 1e-5, false);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"mistral-7b", "Mistral-7B-v0.3 shapes", c, "llama2"});
  }
  // Tiny models of each architecture for tests against the PyTorch reference.
  {
    ModelConfig c = base("llama", 384, 64, 160, 2, 4, 2, 16, 256, 500000.0, 1e-5, false);
    c.rope_scaling = llama3_scaling(8.0);
    c.rope_scaling->original_max_position_embeddings = 64;  // so scaling changes some frequencies
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"tiny-llama3", "test model: Llama with llama3 RoPE scaling, separate output head", c, ""});
  }
  {
    ModelConfig c = base("llama", 384, 64, 160, 2, 4, 4, 16, 256, 10000.0, 1e-5, true);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"tiny-llama-tied", "test model: Llama-2 style (no GQA), tied embeddings", c, ""});
  }
  {
    ModelConfig c = base("qwen2", 384, 64, 176, 2, 4, 2, 16, 256, 1000000.0, 1e-6, true);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"tiny-qwen2", "test model: Qwen2 with q/k/v bias, tied embeddings", c, ""});
  }
  {
    ModelConfig c = base("qwen3", 384, 64, 128, 2, 4, 2, 32, 256, 1000000.0, 1e-6, false);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"tiny-qwen3", "test model: Qwen3 with q/k RMSNorm, head_dim 32 != hidden/heads", c, ""});
  }
  {
    ModelConfig c = base("mistral", 384, 64, 160, 2, 8, 2, 8, 256, 1000000.0, 1e-5, false);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    p.push_back({"tiny-mistral", "test model: Mistral, GQA group 4", c, ""});
  }
  return p;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

struct Planned {
  std::string name;
  std::vector<int64_t> shape;
  enum Kind { Weight, Norm, Bias } kind;
};

std::vector<Planned> plan_tensors(const ModelConfig& c) {
  std::vector<Planned> t;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, H}, Planned::Weight});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    t.push_back({p + "input_layernorm.weight", {H}, Planned::Norm});
    t.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), H}, Planned::Weight});
    t.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), H}, Planned::Weight});
    t.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), H}, Planned::Weight});
    if (c.attention_bias) {
      t.push_back({p + "self_attn.q_proj.bias", {c.q_dim()}, Planned::Bias});
      t.push_back({p + "self_attn.k_proj.bias", {c.kv_dim()}, Planned::Bias});
      t.push_back({p + "self_attn.v_proj.bias", {c.kv_dim()}, Planned::Bias});
    }
    if (c.qk_norm) {
      t.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, Planned::Norm});
      t.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, Planned::Norm});
    }
    t.push_back({p + "self_attn.o_proj.weight", {H, c.q_dim()}, Planned::Weight});
    t.push_back({p + "post_attention_layernorm.weight", {H}, Planned::Norm});
    t.push_back({p + "mlp.gate_proj.weight", {I, H}, Planned::Weight});
    t.push_back({p + "mlp.up_proj.weight", {I, H}, Planned::Weight});
    t.push_back({p + "mlp.down_proj.weight", {H, I}, Planned::Weight});
  }
  t.push_back({"model.norm.weight", {H}, Planned::Norm});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, H}, Planned::Weight});
  return t;
}

// Fills `out` deterministically: chunk j of a tensor always gets the same numbers, whatever the
// thread count.
void fill_tensor(const Planned& p, const SynthOptions& o, std::vector<uint8_t>& out) {
  int64_t n = 1;
  for (int64_t d : p.shape) n *= d;
  const size_t esz = dtype_size(o.dtype);
  out.resize(static_cast<size_t>(n) * esz);
  const uint64_t seed = o.seed * 0x9e3779b97f4a7c15ull ^ fnv1a(p.name);
  constexpr int64_t kChunk = 1 << 16;
  default_pool().parallel_for((n + kChunk - 1) / kChunk, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      Rng rng(seed + static_cast<uint64_t>(c));
      const int64_t e = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < e; ++i) {
        double v;
        if (p.kind == Planned::Norm) v = 1.0 + o.norm_jitter * rng.normal();
        else v = o.init_std * rng.normal();
        const float f = static_cast<float>(v);
        if (o.dtype == DType::F32) std::memcpy(out.data() + i * 4, &f, 4);
        else {
          const uint16_t h = o.dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
          std::memcpy(out.data() + i * 2, &h, 2);
        }
      }
    }
  });
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = make_presets();
  return presets;
}

const SynthPreset& find_synth_preset(const std::string& name) {
  std::string names;
  for (const auto& p : synth_presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  fail("--preset: unknown preset ", quote(name), " (available: ", names, ")");
}

std::string byte_level_tokenizer_json(int32_t bos_id, int32_t eos_id) {
  using nlohmann::ordered_json;
  // GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards.
  auto byte_char = [](int b) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
    else {
      int n = 0;
      for (int x = 0; x < b; ++x)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
      cp = 256 + n;
    }
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return s;
  };
  // Byte tokens take ids 0..255 except where the specials sit; specials use their ids.
  ordered_json vocab = ordered_json::object();
  int32_t next = 0;
  for (int b = 0; b < 256; ++b) {
    while (next == bos_id || next == eos_id) ++next;
    vocab[byte_char(b)] = next++;
  }
  ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = ordered_json::array({
      {{"id", bos_id}, {"content", "<s>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}},
      {{"id", eos_id}, {"content", "</s>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}},
  });
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", ordered_json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"pair", ordered_json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {bos_id}}, {"tokens", {"<s>"}}}}}}};
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                {"ignore_merges", false}, {"vocab", vocab}, {"merges", ordered_json::array()}};
  return j.dump(2);
}

int64_t write_synthetic_model(const ModelConfig& c, const std::string& out_dir, const SynthOptions& o) {
  require(o.dtype == DType::BF16 || o.dtype == DType::F32 || o.dtype == DType::F16,
          "--dtype: expected bf16, f16 or f32");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(out_dir, ": cannot create directory: ", ec.message());
  ModelConfig cfg = c;
  cfg.torch_dtype = o.dtype == DType::F32 ? "float32" : o.dtype == DType::F16 ? "float16" : "bfloat16";
  write_file_atomic(out_dir + "/config.json", model_config_to_json(cfg));

  // Tokenizer: a real one copied, or a generated byte-level one.
  if (!o.tokenizer_dir.empty()) {
    const std::string tj = o.tokenizer_dir + "/tokenizer.json";
    if (!file_exists(tj)) fail(o.tokenizer_dir, ": no tokenizer.json to copy");
    write_file_atomic(out_dir + "/tokenizer.json", read_file(tj));
    const std::string tc = o.tokenizer_dir + "/tokenizer_config.json";
    if (file_exists(tc)) write_file_atomic(out_dir + "/tokenizer_config.json", read_file(tc));
  } else {
    const int32_t bos = c.bos_token_id.value_or(1);
    const int32_t eos = c.eos_token_ids.empty() ? 2 : c.eos_token_ids[0];
    write_file_atomic(out_dir + "/tokenizer.json", byte_level_tokenizer_json(bos, eos));
    nlohmann::json tc = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", true},
                         {"add_eos_token", false}, {"model_max_length", c.max_position_embeddings}};
    write_file_atomic(out_dir + "/tokenizer_config.json", tc.dump(2));
  }

  // Weights, in shards of at most shard_bytes.
  const std::vector<Planned> plan = plan_tensors(c);
  const size_t esz = dtype_size(o.dtype);
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_size = 0, total = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    int64_t bytes = static_cast<int64_t>(esz);
    for (int64_t d : plan[i].shape) bytes *= d;
    if (!shards.back().empty() && shard_size + bytes > o.shard_bytes) shards.emplace_back(), shard_size = 0;
    shards.back().push_back(i);
    shard_size += bytes;
    total += bytes;
  }
  Progress progress("synth " + fs::path(out_dir).filename().string(), total, "B");
  nlohmann::json weight_map = nlohmann::json::object();
  std::vector<uint8_t> buffer;
  for (size_t s = 0; s < shards.size(); ++s) {
    char shard_name[64];
    std::snprintf(shard_name, sizeof shard_name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : shard_name;
    std::vector<SafetensorsWriter::Entry> entries;
    for (size_t i : shards[s]) entries.push_back({plan[i].name, o.dtype, plan[i].shape});
    SafetensorsWriter w(out_dir + "/" + file, entries, {{"format", "pt"}});
    for (size_t i : shards[s]) {
      fill_tensor(plan[i], o, buffer);
      w.write_next(buffer.data(), buffer.size());
      progress.add(static_cast<int64_t>(buffer.size()));
      weight_map[plan[i].name] = file;
    }
    w.finish();
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(out_dir + "/model.safetensors.index.json", index.dump(2));
  } else {
    fs::remove(out_dir + "/model.safetensors.index.json", ec);
  }
  return total;
}

}  // namespace qs
