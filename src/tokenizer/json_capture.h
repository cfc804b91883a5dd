// Fast reading of tokenizer.json (internal to src/tokenizer): a SAX pass that stores the two
// big members, model.vocab and model.merges, straight into flat vectors and builds an ordinary
// JSON DOM for everything else. A DOM of a 150k-token vocabulary and its merges costs several
// times more than the parse itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace qs::tok {

struct TokenizerJson {
  nlohmann::json rest;  // the document without model.vocab / model.merges when they were captured
  bool vocab_captured = false;   // model.vocab was an object
  bool merges_captured = false;  // model.merges was an array
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

// Parses tokenizer.json text; errors (syntax, or a vocab entry that is not an integer, a merge
// that is not "a b" or [a, b]) are one-line qs::Error naming `name` and the field.
TokenizerJson parse_tokenizer_json(std::string_view text, const std::string& name);

}  // namespace qs::tok
