// Fuzzes the text metrics with arbitrary bytes (model outputs need not be valid UTF-8). The
// input is split at its first NUL into a reference and a candidate. Checks ranges and that a
// text compared with itself scores perfectly.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "fidelity/text_metrics.h"

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
bool in_range(double v, double hi) { return v >= -1e-12 && v <= hi + 1e-9; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qs::fidelity;
  std::string all(reinterpret_cast<const char*>(data), size);
  size_t cut = all.find('\0');
  std::string ref = all.substr(0, cut), cand = cut == std::string::npos ? all : all.substr(cut + 1);
  RougeScores r = rouge(ref, cand);
  for (const Prf& p : {r.rouge1, r.rouge2, r.rougeL})
    check(in_range(p.precision, 1) && in_range(p.recall, 1) && in_range(p.fmeasure, 1));
  if (!rouge_tokenize(ref).empty()) check(std::fabs(rouge(ref, ref).rougeL.fmeasure - 1) < 1e-12);
  std::vector<std::string> refs = {ref};
  if (!ref.empty()) {
    check(in_range(sentence_bleu(cand, refs).score, 100));
    check(in_range(sentence_chrf(cand, refs), 100));
    if (!tokenize_13a(ref).empty()) check(std::fabs(sentence_bleu(ref, refs).score - 100) < 1e-9);
  } else {
    try {
      sentence_bleu(cand, refs);
      check(false);
    } catch (const qs::Error&) {
    }
  }
  std::vector<int32_t> a(all.begin(), all.end()), b(cand.begin(), cand.end());
  TokenAgreement t = token_agreement(a, b);
  check(in_range(t.agreement, 1));
  check(in_range(repetition_rate(cand, 2), 1));
  std::vector<std::string> texts = {ref, cand};
  check(in_range(distinct_n(texts, 1), 1));
  return 0;
}
