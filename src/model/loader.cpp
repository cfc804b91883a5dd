#include "model/loader.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "io/llama2c.h"

namespace qs {

namespace fs = std::filesystem;

namespace {

bool is_llama2c_tokenizer_name(const std::string& file) {
  return file == "tokenizer.bin" || (file.rfind("tok", 0) == 0 && file.size() > 4 && file.ends_with(".bin"));
}

// The tokenizer next to a llama2.c checkpoint: tokenizer.json, tokenizer.bin, or tok*.bin.
std::string tokenizer_beside(const fs::path& dir) {
  if (file_exists((dir / "tokenizer.json").string())) return (dir / "tokenizer.json").string();
  if (file_exists((dir / "tokenizer.bin").string())) return (dir / "tokenizer.bin").string();
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && is_llama2c_tokenizer_name(e.path().filename().string())) found.push_back(e.path().string());
  std::sort(found.begin(), found.end());
  return found.empty() ? "" : found.front();
}

}  // namespace

ModelConfig llama2c_config(const Llama2cHeader& h) {
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;  // llama2.c's RMSNorm epsilon
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  c.rope_style = kernels::RopeStyle::Interleaved;  // Meta layout: q/k not permuted for rotate_half
  return c;
}

ModelLocation locate_model(const std::string& path) {
  if (path.empty()) fail("--model: no model given");
  if (!file_exists(path)) fail(path, ": no such file or directory (expected a model directory or checkpoint)");
  fs::path p(path);
  if (is_directory(path)) {
    if (file_exists((p / "config.json").string())) {
      return {ModelFormat::HuggingFace, path, path};
    }
    std::vector<std::string> checkpoints;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.ends_with(".bin") && !is_llama2c_tokenizer_name(name))
        checkpoints.push_back(e.path().string());
    }
    if (checkpoints.size() == 1) return {ModelFormat::Llama2c, checkpoints[0], tokenizer_beside(p)};
    if (checkpoints.size() > 1)
      fail(path, ": holds ", checkpoints.size(), " .bin checkpoints; name one of them with --model");
    fail(path, ": not a model directory (expected config.json with model.safetensors, or a llama2.c .bin checkpoint)");
  }
  const std::string ext = p.extension().string();
  if (ext == ".gguf") return {ModelFormat::Gguf, path, path};  // loaded by quant::load_model_any
  if (ext == ".bin") return {ModelFormat::Llama2c, path, tokenizer_beside(p.parent_path().empty() ? "." : p.parent_path())};
  if (ext == ".safetensors") {
    fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    if (!file_exists((dir / "config.json").string()))
      fail(path, ": a safetensors file needs its config.json beside it");
    return {ModelFormat::HuggingFace, dir.string(), dir.string()};
  }
  fail(path, ": unrecognized model file (expected a Hugging Face directory, a llama2.c .bin, a .safetensors or a .gguf)");
}

std::unique_ptr<Model> load_model(const ModelLocation& where) {
  if (where.format == ModelFormat::Gguf)
    fail(where.weights, ": GGUF files are read by quant::load_model_any (src/quantize/files/gguf_model.h)");
  if (where.format == ModelFormat::Llama2c) {
    Llama2cCheckpoint ck = read_llama2c(where.weights);
    ModelConfig c = llama2c_config(ck.header);
    return build_model(std::move(c), std::move(ck.tensors), where.weights);
  }
  ModelConfig c = read_model_config(where.weights + "/config.json");
  TensorStore store = load_safetensors_dir(where.weights);
  return build_model(std::move(c), std::move(store), where.weights);
}

}  // namespace qs
