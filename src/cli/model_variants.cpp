#include "cli/model_variants.h"

#include "core/error.h"

namespace qs::cli {

std::vector<VariantSpec> parse_variants(const std::vector<std::string>& model_paths,
                                        const std::vector<std::string>& variants, const QuantizeArgs& shared) {
  std::vector<VariantSpec> out;
  for (const auto& p : model_paths) out.push_back({p, p, std::nullopt});
  for (const auto& v : variants) {
    QuantizeArgs q = shared;
    const auto colon = v.find(':');
    q.scheme = v.substr(0, colon);
    q.algorithm = colon == std::string::npos ? "rtn" : v.substr(colon + 1);
    // Shared integer options (--group-size, --asym) apply to the variants that take them.
    const quant::Scheme s = quant::find_scheme(q.scheme);
    if (s.weight != quant::WeightFormat::Int || !s.weight_only()) q.group_size = -1, q.asym = q.sym = false;
    const quant::QuantizeOptions o = quantize_options(q);  // validates scheme and algorithm
    quant::validate_quantize_options(o, !q.calib.empty());
    out.push_back({o.scheme.full_name() + ":" + q.algorithm, "", q});
  }
  if (out.empty()) fail("no model to compare with the baseline (give --model PATH or --variant SCHEME[:ALGO])");
  return out;
}

LoadedModel load_variant(const VariantSpec& v, const ModelArgs& baseline) {
  if (!v.quant) return load_model_and_tokenizer(ModelArgs{v.path, ""});
  LoadedModel m = load_model_and_tokenizer(baseline);
  apply_quantization(m, *v.quant);
  return m;
}

void check_same_tokenizer(const Tokenizer& a, const Tokenizer& b, const std::string& name, bool force) {
  if (force) return;
  const std::string probe = "The quick brown fox, 1234 times: \"naïve\" café!\nNew line\ttab 日本語";
  if (a.vocab_size() != b.vocab_size() || a.encode(probe) != b.encode(probe))
    fail(name, ": its tokenizer differs from the baseline's (", b.vocab_size(), " vs ", a.vocab_size(),
         " tokens); paired comparison needs the same tokenizer (--force to compare anyway)");
}

}  // namespace qs::cli
