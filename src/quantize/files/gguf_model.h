// Models in llama.cpp's GGUF files: loading files llama.cpp (convert_hf_to_gguf.py +
// llama-quantize) makes, and writing files llama.cpp loads.
//
// Loading (architectures llama, qwen2, qwen3; others refused by name):
//  - config from {arch}.* metadata: block_count, embedding_length, feed_forward_length,
//    attention.head_count(_kv), attention.key_length (head_dim; default hidden / heads),
//    attention.layer_norm_rms_epsilon, context_length, rope.freq_base, rope.scaling.type
//    "linear" + factor; Llama-3 rope scaling comes as the rope_freqs.weight tensor of per-
//    frequency divisors, from which factor, low/high_freq_factor and the original context
//    ({arch}.rope.scaling.original_context_length, default 8192) are recovered and checked;
//    vocabulary size from token_embd; tied embeddings when there is no output.weight.
//  - arch llama stores q/k in Meta's interleaved order (convert_hf_to_gguf.py permutes HF's):
//    the model runs them as they are with RopeStyle::Interleaved. qwen2/qwen3 are in HF order
//    and run with RopeStyle::Half.
//  - F32/F16/BF16 tensors are used in place from the memory map. Q8_0/Q4_0 linear weights become
//    GgufLinear layers (ggml's integer dot products with Q8_0 activations), their blocks copied
//    out of the map. Tensors of other ggml types llama-quantize mixes in (Q4_1, Q5_0, Q5_1,
//    Q2_K..Q6_K) are dequantized at load, exactly as ggml's dequantize_row_*, into BF16 (or F32,
//    GgufLoadOptions) and their layers report it: format "bf16 (from Q6_K)". A Q8_0/Q4_0 token
//    embedding is dequantized the same way for row lookups; when it is also the (tied) output
//    head, the head runs on its blocks as llama.cpp does. Other types (IQ*, TQ*, MXFP4, ...)
//    are refused, naming the tensor.
//  - Errors are one line naming the file and the key or tensor: unsupported architecture,
//    missing metadata, tensor shapes that disagree with the metadata, unknown or missing
//    tensors, undecodable types, an unknown tokenizer model, one part of a split model.
//
// Saving: metadata as convert_hf_to_gguf.py + llama-quantize write it (general.*, {arch}.*,
// tokenizer.* from Tokenizer::to_gguf_metadata, general.file_type of the dominant linear type,
// general.quantization_version 2), tensors under llama.cpp's names in ggml order. Dense layers
// keep their dtype (F32/F16/BF16; layers dequantized at load are written as BF16), GgufLinear
// layers their Q8_0/Q4_0 blocks unchanged, norms and biases F32. For arch llama (model types
// llama and mistral) q/k rows are permuted into Meta's order when the model holds them in HF
// order (RopeStyle::Half); a model already interleaved (llama2.c, GGUF) is written as is.
// Other quantized layers are refused, naming the layer and the supported types. Mistral's
// sliding window is not written (convert_hf_to_gguf.py drops it too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs {

struct GgufLoadOptions {
  // Storage of tensors dequantized at load: BF16 (half the memory; rounds the dequantized
  // values to bf16) or F32 (exactly ggml's dequantized values).
  DType dequantized_dtype = DType::BF16;
};

// How each tensor of the file is used.
struct GgufTensorUse {
  std::string name;       // GGUF name, "blk.0.attn_q.weight"
  std::string ggml_type;  // "Q6_K"
  std::string use;        // "mapped", "copied (GgufLinear)", "dequantized to bf16", "read into f32"
};

struct GgufLoadReport {
  std::string architecture;
  std::vector<GgufTensorUse> tensors;
  int64_t mapped_bytes = 0;       // used in place from the map
  int64_t copied_bytes = 0;       // Q8_0/Q4_0 blocks copied into GgufLinear layers
  int64_t dequantized_bytes = 0;  // bytes of the dequantized copies
};

std::unique_ptr<Model> load_gguf_model(const std::string& path);
std::unique_ptr<Model> load_gguf_model(const std::string& path, const GgufLoadOptions& options,
                                       GgufLoadReport* report = nullptr);
// The file's vocabulary (Tokenizer::from_gguf).
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path);

struct GgufSaveOptions {
  std::string name;  // general.name; default: the output file's name without extension
};

// Writes `model` with `tokenizer`'s vocabulary to `out_path` (atomically: a temporary file
// renamed when complete).
void save_gguf_model(const Model& model, const Tokenizer& tokenizer, const std::string& out_path,
                     const GgufSaveOptions& options = {});

}  // namespace qs
