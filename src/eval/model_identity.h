// What identifies the models of a comparison: a content fingerprint of the weight files, the
// weight formats (the quantization scheme), and whether two tokenizers are the same (scores of
// a baseline and a model are only comparable on identical token ids).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace qs::eval {

// A fast content fingerprint of a file or of every file of a directory (non-cryptographic,
// 64-bit, over all bytes, several GB/s): "qsh64:<16 hex digits>".
std::string fingerprint_path(const std::string& path);

// Bytes of linear-layer weights per format ("f32", "bf16", "w4a16-g128", ...).
std::map<std::string, int64_t> linear_formats(const Model& model);
// The format holding most linear-layer bytes, with the others after it: "w4a16-g128 (+bf16)".
std::string scheme_name(const Model& model);

// "" when the tokenizers give the same ids (same vocabulary strings, special ids, BOS rule and
// encodings of a probe text); otherwise the first difference, one line.
std::string tokenizer_difference(const Tokenizer& a, const Tokenizer& b);

}  // namespace qs::eval
