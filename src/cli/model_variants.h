// The models a comparison runs against its baseline: checkpoints on disk (--model PATH) and
// in-memory quantizations of the baseline (--variant SCHEME[:ALGO], sharing the quantization
// options: --calib, --group-size, ...). One variant is loaded at a time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/model_args.h"
#include "cli/quantize_args.h"

namespace qs::cli {

struct VariantSpec {
  std::string name;                   // as reported: the path, or "scheme:algo"
  std::string path;                   // --model
  std::optional<QuantizeArgs> quant;  // --variant
};

// Parses and checks every spec (scheme, algorithm, options) before anything is loaded.
std::vector<VariantSpec> parse_variants(const std::vector<std::string>& model_paths,
                                        const std::vector<std::string>& variants, const QuantizeArgs& shared);
LoadedModel load_variant(const VariantSpec& v, const ModelArgs& baseline);
// Refuses a model whose tokenizer encodes differently from the baseline's (paired comparison
// needs the same tokens), unless `force`.
void check_same_tokenizer(const Tokenizer& baseline, const Tokenizer& other, const std::string& name, bool force);

}  // namespace qs::cli
