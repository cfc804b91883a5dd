// The architecture hyper-parameters of a decoder-only transformer of the Llama family, read from
// a Hugging Face config.json (or built from a llama2.c header). Supported model_type values:
// llama (Llama 1/2/3/3.1/3.2, SmolLM, and llama2.c checkpoints), mistral, qwen2 (q/k/v bias),
// qwen3 (per-head RMSNorm on q and k). Anything else is refused by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace qs {

// Llama 3.1 "llama3" RoPE frequency scaling (rope_scaling in config.json).
struct RopeScaling {
  std::string type;  // "llama3" or "linear"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;  // as in config.json
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  bool qk_norm = false;         // RMSNorm over each head of q and k (Qwen3)
  std::optional<int64_t> sliding_window;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;
  std::string torch_dtype;  // as stored, informational
  kernels::RopeStyle rope_style = kernels::RopeStyle::Half;  // Interleaved for Meta/llama2.c layouts

  int64_t q_dim() const { return int64_t{num_attention_heads} * head_dim; }
  int64_t kv_dim() const { return int64_t{num_key_value_heads} * head_dim; }
  // Number of parameters implied by the shapes (embeddings counted once if tied).
  int64_t parameter_count() const;
};

// Parses config.json text; errors name `path` and the key ("config.json: missing key
// 'num_attention_heads'", "... 'num_attention_heads' = 0, expected >= 1").
ModelConfig parse_model_config(const std::string& json_text, const std::string& path);
ModelConfig read_model_config(const std::string& path);
// A config.json (as a JSON string) describing `c`, as transformers writes it.
std::string model_config_to_json(const ModelConfig& c);
// The RoPE inverse frequencies theta_i = base^(-2i/d), i < head_dim/2, with rope_scaling applied
// exactly as transformers' _compute_llama3_parameters does.
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace qs
