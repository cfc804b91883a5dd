// Quantized checkpoints in the formats other tools write and read.
//
// Writing (save_quantized_model) produces a Hugging Face directory: config.json (the source
// config + `quantization_config`), safetensors sharded above SaveOptions::shard_bytes with a
// model.safetensors.index.json (as transformers shards), and the tokenizer / generation files of
// the source directory. Tensors that are not quantized (embeddings, norms, biases, the output head,
// layers kept in 16-bit) keep their dtype.
//  - compressed-tensors: what llm-compressor writes and vLLM loads (see compressed_tensors.h):
//    float-quantized (w8a8-fp8, w8a8-fp8-static), int-quantized (w8a8-int8), pack-quantized
//    (w8a16-int8, w4a16, w3a16; sym/asym, group/channel, act-order g_idx), nvfp4-pack-quantized,
//    mxfp4-pack-quantized. Several schemes in one model become several config groups.
//  - bitsandbytes: what transformers saves for load_in_4bit (nf4/fp4, with or without double
//    quantization) and load_in_8bit (llm-int8) models (see bitsandbytes_checkpoint.h).
//  - qstudy: the canonical pieces of any scheme and any mix (see qstudy_checkpoint.h).
//  - gguf: one llama.cpp model file (see gguf_model.h): dense layers and GGUF Q8_0/Q4_0 layers.
//
// Reading (load_quantized_model / load_model_any) maps each layer of a compressed-tensors,
// AutoGPTQ, AutoAWQ (GEMM), bitsandbytes or qstudy checkpoint to the QuantLinear of its scheme;
// the model then runs with qstudy's own low-bit kernels. Unsupported variants are refused by
// name; every malformed input is a one-line qs::Error naming the file, the tensor or field and
// what was expected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs::quant {

enum class CheckpointFormat { CompressedTensors, Bitsandbytes, Qstudy, Gguf };

// "compressed-tensors", "bitsandbytes", "qstudy", "gguf"; errors list the valid names.
CheckpointFormat parse_checkpoint_format(const std::string& name);
std::string checkpoint_format_name(CheckpointFormat format);
// Why `model` cannot be written in `format` ("" when it can): names the first layer whose scheme
// the format cannot represent.
std::string checkpoint_format_problem(const Model& model, CheckpointFormat format);
// The standard format that holds every quantized layer of `model`: compressed-tensors, else
// bitsandbytes, else qstudy.
CheckpointFormat default_checkpoint_format(const Model& model);

struct SaveOptions {
  int64_t shard_bytes = int64_t{4} << 30;  // largest safetensors shard before splitting
  // The model's tokenizer: written into a GGUF file (required there), and as tokenizer.json +
  // tokenizer_config.json when there is no source directory to copy tokenizer files from.
  const Tokenizer* tokenizer = nullptr;
};

struct SavedCheckpoint {
  std::string path;                 // the directory (or .gguf file)
  CheckpointFormat format = CheckpointFormat::Qstudy;
  std::vector<std::string> files;   // every file written, relative to `path`
  int64_t tensor_bytes = 0;         // bytes of tensor data in the safetensors files
  int64_t bytes_on_disk = 0;        // size of all files written
};

// Writes `model` (quantized in memory by quant::quantize_model, or loaded from a checkpoint) to
// `out_dir` in `format`. `source_dir` is the directory the model was loaded from (its config.json
// and tokenizer files are carried over; "" when there is none). Refuses an out_dir that is the
// source directory (the model's weights are mapped from there).
SavedCheckpoint save_quantized_model(const Model& model, const std::string& source_dir, const std::string& out_dir,
                                     CheckpointFormat format, const SaveOptions& options = {});

// Loads a Hugging Face directory whose config.json has a quantization_config (quant_method
// compressed-tensors, gptq, awq, bitsandbytes or qstudy; AutoGPTQ's quantize_config.json is
// read when config.json has none).
std::unique_ptr<Model> load_quantized_model(const std::string& dir);
// Whether `dir` holds a quantized Hugging Face checkpoint that load_quantized_model reads.
bool is_quantized_checkpoint(const std::string& dir);

// Any model path: a quantized HF directory -> load_quantized_model; a .gguf file ->
// load_gguf_model; anything else -> qs::load_model (dense HF, llama2.c).
std::unique_ptr<Model> load_model_any(const std::string& path);


}  // namespace qs::quant
