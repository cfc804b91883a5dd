// Finds and loads a model from what a user passes as --model:
//  - a Hugging Face directory (config.json + model.safetensors or sharded safetensors);
//  - a llama2.c checkpoint (.bin), or a directory holding one (e.g. ../shared/models/stories260K);
// Weights are memory-mapped and used in their own dtype without a copy.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"

namespace qs {

enum class ModelFormat { HuggingFace, Llama2c, Gguf };

struct ModelLocation {
  ModelFormat format;
  std::string weights;          // directory (HF) or checkpoint file (llama2.c, GGUF)
  std::string tokenizer;        // best guess of the tokenizer file/dir ("" if none found)
};

// Resolves a --model argument; errors say what was expected.
ModelLocation locate_model(const std::string& path);
std::unique_ptr<Model> load_model(const ModelLocation& where);
inline std::unique_ptr<Model> load_model(const std::string& path) { return load_model(locate_model(path)); }
// The ModelConfig of a llama2.c checkpoint header.
struct Llama2cHeader;
ModelConfig llama2c_config(const Llama2cHeader& h);

}  // namespace qs
