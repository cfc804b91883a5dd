// Builders of the tokenization pipeline from each file format (internal to src/tokenizer).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/pipeline.h"

namespace qs::tok {

// Names of the files a tokenizer was read from, for error messages.
struct HfSources {
  std::string tokenizer_name;          // tokenizer.json
  std::string config_name;             // tokenizer_config.json ("" when there is none)
  std::string generation_config_name;  // generation_config.json ("" when there is none)
};

struct TokenizerJson;
// config and generation_config may be null (no such file).
std::unique_ptr<Core> build_from_hf(const TokenizerJson& tokenizer, const nlohmann::json* config,
                                    const nlohmann::json* generation_config, const HfSources& sources);

// A llama2.c tokenizer.bin as read from disk.
struct Llama2cSource {
  std::string name;  // file name for messages
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;  // as stored: " " for a space, "\n<s>\n" for BOS
  std::vector<float> scores;
};

Llama2cSource parse_llama2c(std::string_view bytes, const std::string& name);
std::unique_ptr<Core> build_from_llama2c(const Llama2cSource& source);
nlohmann::json llama2c_to_hf_json(const Llama2cSource& source);
nlohmann::json llama2c_to_hf_config(const Llama2cSource& source);

}  // namespace qs::tok
