// --model / --tokenizer handling shared by every command that runs a model: finds the model and
// its tokenizer, loads both, and checks that they fit together.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "model/loader.h"
#include "tokenizer/tokenizer.h"

namespace qs::cli {

struct ModelArgs {
  std::string model;
  std::string tokenizer;  // overrides the one found with the model
};

// Adds --model (required unless `required` is false) and --tokenizer.
void add_model_options(CLI::App* cmd, ModelArgs& args, bool required = true);

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  ModelLocation location;
  double load_seconds = 0;
};

// Loads the model and its tokenizer. A tokenizer with more ids than the model's vocabulary is
// an error naming both files (fewer is normal: embedding rows are often padded).
LoadedModel load_model_and_tokenizer(const ModelArgs& args);
std::unique_ptr<Tokenizer> load_tokenizer_for(const ModelArgs& args);

// The ids that end generation: the tokenizer's, else the config's eos_token_id.
std::vector<int32_t> stop_tokens(const LoadedModel& m);

}  // namespace qs::cli
