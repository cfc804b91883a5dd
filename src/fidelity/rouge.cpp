// ROUGE-1/2/L with rouge-score's definitions (see text_metrics.h).
#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "fidelity/text_metrics.h"
#include "fidelity/text_util.h"

namespace qs::fidelity {

namespace {

double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

std::unordered_map<std::string, int64_t> ngram_counts(std::span<const std::string> tokens, int n) {
  std::unordered_map<std::string, int64_t> counts;
  for (size_t i = 0; i + static_cast<size_t>(n) <= tokens.size(); ++i) {
    std::string key = tokens[i];
    for (int k = 1; k < n; ++k) (key += ' ') += tokens[i + k];  // tokens are [a-z0-9]+
    ++counts[key];
  }
  return counts;
}

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (size_t i = 0; i < text.size();) {
    detail::CodePoint c = detail::decode_utf8(text, i);
    i += c.len;
    char32_t cp = c.cp;
    if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
      current += static_cast<char>(cp);
    } else if (cp == 0x212A) {  // KELVIN SIGN: Python lower() gives ASCII 'k'
      current += 'k';
    } else if (cp == 0x0130) {  // LATIN CAPITAL I WITH DOT ABOVE: lower() gives 'i' + U+0307
      current += 'i';
      flush();
    } else {
      flush();
    }
  }
  flush();
  return tokens;
}

Prf rouge_n(std::span<const std::string> reference, std::span<const std::string> candidate, int n) {
  require(n >= 1, "ROUGE-N: n must be >= 1, got ", n);
  auto ref = ngram_counts(reference, n), cand = ngram_counts(candidate, n);
  int64_t overlap = 0, ref_total = 0, cand_total = 0;
  for (const auto& [gram, count] : ref) {
    ref_total += count;
    auto it = cand.find(gram);
    if (it != cand.end()) overlap += std::min(count, it->second);
  }
  for (const auto& [gram, count] : cand) cand_total += count;
  Prf r;
  r.precision = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(cand_total, 1));
  r.recall = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(ref_total, 1));
  r.fmeasure = fmeasure(r.precision, r.recall);
  return r;
}

Prf rouge_l(std::span<const std::string> reference, std::span<const std::string> candidate) {
  if (reference.empty() || candidate.empty()) return {};
  // LCS length by dynamic programming over two rows.
  std::vector<int32_t> prev(candidate.size() + 1, 0), cur(candidate.size() + 1, 0);
  for (size_t i = 1; i <= reference.size(); ++i) {
    for (size_t j = 1; j <= candidate.size(); ++j)
      cur[j] = reference[i - 1] == candidate[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  double lcs = prev[candidate.size()];
  Prf r;
  r.precision = lcs / static_cast<double>(candidate.size());
  r.recall = lcs / static_cast<double>(reference.size());
  r.fmeasure = fmeasure(r.precision, r.recall);
  return r;
}

RougeScores rouge(std::string_view reference, std::string_view candidate) {
  auto ref = rouge_tokenize(reference), cand = rouge_tokenize(candidate);
  return {rouge_n(ref, cand, 1), rouge_n(ref, cand, 2), rouge_l(ref, cand)};
}

}  // namespace qs::fidelity
