// Random-weight models with the exact shapes of real ones (speed does not depend on the weights'
// values), written as Hugging Face directories that any loader reads: config.json, safetensors
// (sharded with an index above the shard size), tokenizer.json + tokenizer_config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace qs {

struct SynthPreset {
  std::string name;         // e.g. "llama-3.2-1b"
  std::string description;  // what real model it mirrors
  ModelConfig config;
  std::string tokenizer;    // folder name under shared/tokenizers ("llama3", "qwen3", "llama2") or ""
};

const std::vector<SynthPreset>& synth_presets();
// Error listing the valid names when unknown.
const SynthPreset& find_synth_preset(const std::string& name);

struct SynthOptions {
  DType dtype = DType::BF16;
  uint64_t seed = 0;
  double init_std = 0.02;     // weights ~ N(0, init_std^2), as transformers initializes
  double norm_jitter = 0.0;   // norm weights = 1 + norm_jitter * N(0, 1)
  std::string tokenizer_dir;  // copy tokenizer.json (+ tokenizer_config.json) from here; "" = generate one
  int64_t shard_bytes = int64_t{4} << 30;
};

// Writes the model; returns the number of bytes of weights written.
int64_t write_synthetic_model(const ModelConfig& config, const std::string& out_dir, const SynthOptions& options);

// A byte-level BPE tokenizer.json with the 256 byte tokens and no merges, plus BOS/EOS specials:
// a valid tokenizer for any vocabulary when no real one is at hand.
std::string byte_level_tokenizer_json(int32_t bos_id, int32_t eos_id);

}  // namespace qs
