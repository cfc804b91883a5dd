// Calibration data: token windows drawn from a text or jsonl file. As GPTQ's reference recipe
// does with WikiText-2, the documents are joined with blank lines into one token stream and
// `samples` windows of `seqlen` tokens are drawn at random positions (seeded, so the same
// command calibrates the same way). Each window starts with BOS when the tokenizer adds one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace qs::quant {

struct CalibDataOptions {
  std::string file;
  std::string field = "text";  // jsonl: the field holding each document's text
  int64_t samples = 128;
  int64_t seqlen = 512;
  uint64_t seed = 0;
};

// Documents of a .txt file (split on blank lines) or a .jsonl file (one JSON object per line;
// errors name file:line and the missing field).
std::vector<std::string> read_documents(const std::string& file, const std::string& field);

// Errors: missing or empty file, fewer tokens than one window ("too short").
std::vector<std::vector<int32_t>> load_calibration_tokens(const Tokenizer& tokenizer, const CalibDataOptions& options);

}  // namespace qs::quant
