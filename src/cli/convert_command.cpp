// qstudy convert: a llama2.c checkpoint (+ tokenizer.bin) into a Hugging Face directory that every
// other path (and transformers) reads: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json. q/k projections are permuted from Meta's interleaved RoPE pairing to
// the rotate_half pairing, exactly as transformers' conversion script does.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "core/files.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "kernels/ops.h"

namespace qs::cli {

namespace {

struct ConvertArgs {
  ModelArgs model;
  std::string out, dtype = "f32";
  CommonOptions common;
};

// Meta layout rows (2i, 2i+1) of each head become rows (i, i + head_dim/2).
std::vector<float> permute_for_rotate_half(const Tensor& w, int n_heads, int head_dim) {
  const int64_t cols = w.dim(1);
  const float* src = w.as<float>();
  std::vector<float> out(static_cast<size_t>(w.numel()));
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < head_dim / 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const int64_t from = int64_t{h} * head_dim + 2 * i + j, to = int64_t{h} * head_dim + j * (head_dim / 2) + i;
        std::copy(src + from * cols, src + (from + 1) * cols, out.data() + to * cols);
      }
  return out;
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "Convert a llama2.c checkpoint into a Hugging Face model directory");
  add_model_options(cmd, a->model);
  cmd->add_option("--out,-o", a->out, "Output directory")->required();
  cmd->add_option("--dtype", a->dtype, "Weight dtype of the output: f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  add_common_options(cmd, a->common);
  cmd->callback([a] {
    apply_common_options(a->common);
    const ModelLocation where = locate_model(a->model.model);
    if (where.format != ModelFormat::Llama2c)
      fail(a->model.model, ": convert reads llama2.c checkpoints (this is already a Hugging Face directory)");
    auto tokenizer = load_tokenizer_for(a->model);
    Llama2cCheckpoint ck = read_llama2c(where.weights);
    ModelConfig config = llama2c_config(ck.header);
    config.rope_style = kernels::RopeStyle::Half;
    const DType dtype = a->dtype == "bf16" ? DType::BF16 : DType::F32;
    config.torch_dtype = dtype == DType::BF16 ? "bfloat16" : "float32";
    if (tokenizer->vocab_size() > config.vocab_size)
      fail(where.tokenizer, ": tokenizer has ", tokenizer->vocab_size(), " tokens, the checkpoint's vocabulary ",
           config.vocab_size);

    std::filesystem::create_directories(a->out);
    std::vector<Tensor> tensors;
    std::vector<std::vector<uint8_t>> storage;  // converted tensors' bytes
    storage.reserve(ck.tensors.size());
    for (const std::string& name : ck.tensors.names()) {
      const Tensor& src = ck.tensors.get(name);
      std::vector<float> values;
      if (name.ends_with("q_proj.weight")) values = permute_for_rotate_half(src, config.num_attention_heads, config.head_dim);
      else if (name.ends_with("k_proj.weight")) values = permute_for_rotate_half(src, config.num_key_value_heads, config.head_dim);
      else values.assign(src.as<float>(), src.as<float>() + src.numel());
      Tensor t{name, dtype, src.shape, nullptr, 0, nullptr};
      t.nbytes = static_cast<size_t>(src.numel()) * dtype_size(dtype);
      storage.emplace_back(t.nbytes);
      if (dtype == DType::F32) std::memcpy(storage.back().data(), values.data(), t.nbytes);
      else kernels::f32_to_bf16(values.data(), reinterpret_cast<uint16_t*>(storage.back().data()), src.numel());
      t.data = storage.back().data();
      tensors.push_back(std::move(t));
    }
    write_safetensors(a->out + "/model.safetensors", tensors, {{"format", "pt"}});
    write_file_atomic(a->out + "/config.json", model_config_to_json(config));
    write_file_atomic(a->out + "/tokenizer.json", tokenizer->to_hf_json().dump(2));
    write_file_atomic(a->out + "/tokenizer_config.json", tokenizer->to_hf_config_json().dump(2));
    std::fprintf(stderr, "wrote %s: %zu tensors (%s), config.json, tokenizer.json, tokenizer_config.json\n",
                 a->out.c_str(), tensors.size(), a->dtype.c_str());
  });
}

}  // namespace qs::cli
