// Shared by the GGUF model loader and writer (internal to src/quantize/files): the architecture a
// model type is written as, and Llama-3 rope scaling as the rope_freqs.weight tensor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/config.h"

namespace qs::gguf_names {

// The GGUF architecture a model_type is written as ("" when GGUF cannot hold it).
inline std::string architecture_of(const std::string& model_type) {
  if (model_type == "llama" || model_type == "mistral") return "llama";  // convert_hf_to_gguf.py: Mistral is llama
  if (model_type == "qwen2" || model_type == "qwen3") return model_type;
  return "";
}

// convert_hf_to_gguf.py's rope_freqs for Llama-3 scaling: one divisor of theta_i per frequency
// (1 for high frequencies, `factor` for low ones, a smooth blend between).
std::vector<float> llama3_rope_factors(const ModelConfig& c);

// The Llama-3 scaling that reproduces `factors` (rope_freqs.weight) for a config's head_dim and
// rope_theta, with `original_context` if the file names it; nullopt when none does (to a
// relative 1e-5). All-ones factors mean no scaling (returned as factor 1).
std::optional<RopeScaling> llama3_scaling_from_factors(const ModelConfig& c, const std::vector<float>& factors,
                                                       std::optional<int64_t> original_context);

}  // namespace qs::gguf_names
