// Exact match, token agreement, diversity/repetition measures and the pair summary
// (see text_metrics.h).
#include <algorithm>
#include <unordered_set>

#include "core/error.h"
#include "fidelity/text_metrics.h"
#include "fidelity/text_util.h"

namespace qs::fidelity {

namespace {

// unique and total n-grams of whitespace tokens, n-grams keyed by their words joined by '\n'
// (whitespace, so never inside a token).
void count_word_ngrams(std::string_view text, int n, std::unordered_set<std::string>& unique, int64_t& total) {
  auto words = detail::python_split(text);
  for (size_t i = 0; i + n <= words.size(); ++i) {
    unique.insert(detail::join_ngram(words, i, n, '\n'));
    ++total;
  }
}

}  // namespace

bool exact_match(std::string_view a, std::string_view b) { return a == b; }

TokenAgreement token_agreement(std::span<const int32_t> a, std::span<const int32_t> b) {
  TokenAgreement r;
  r.length = std::max(a.size(), b.size());
  size_t common = std::min(a.size(), b.size());
  for (size_t i = 0; i < common; ++i) {
    if (a[i] == b[i]) ++r.matching;
    else if (r.first_difference < 0) r.first_difference = static_cast<int64_t>(i);
  }
  if (r.first_difference < 0 && a.size() != b.size()) r.first_difference = static_cast<int64_t>(common);
  r.agreement = r.length == 0 ? 1.0 : static_cast<double>(r.matching) / static_cast<double>(r.length);
  return r;
}

double distinct_n(std::span<const std::string> texts, int n) {
  require(n >= 1, "distinct-n: n must be >= 1, got ", n);
  std::unordered_set<std::string> unique;
  int64_t total = 0;
  for (const auto& t : texts) count_word_ngrams(t, n, unique, total);
  return total == 0 ? 0.0 : static_cast<double>(unique.size()) / static_cast<double>(total);
}

double self_bleu(std::span<const std::string> texts) {
  require(texts.size() >= 2, "self-BLEU: needs at least 2 texts, got ", texts.size());
  double sum = 0;
  size_t scored = 0;
  std::vector<std::string> others;
  for (size_t i = 0; i < texts.size(); ++i) {
    others.clear();
    for (size_t j = 0; j < texts.size(); ++j)
      if (j != i && !texts[j].empty()) others.push_back(texts[j]);
    if (others.empty()) continue;
    sum += sentence_bleu(texts[i], others).score;
    ++scored;
  }
  require(scored > 0, "self-BLEU: every text but at most one is empty");
  return sum / static_cast<double>(scored);
}

double repetition_rate(std::string_view text, int n) {
  require(n >= 1, "repetition rate: n must be >= 1, got ", n);
  std::unordered_set<std::string> unique;
  int64_t total = 0;
  count_word_ngrams(text, n, unique, total);
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(unique.size()) / static_cast<double>(total);
}

double repetition_rate(std::span<const int32_t> ids, int n) {
  require(n >= 1, "repetition rate: n must be >= 1, got ", n);
  if (ids.size() < static_cast<size_t>(n)) return 0.0;
  std::unordered_set<std::string> unique;
  size_t total = ids.size() - n + 1;
  for (size_t i = 0; i < total; ++i)
    unique.emplace(reinterpret_cast<const char*>(ids.data() + i), sizeof(int32_t) * n);
  return 1.0 - static_cast<double>(unique.size()) / static_cast<double>(total);
}

TextPairSummary summarize_pairs(std::span<const std::string> baseline, std::span<const std::string> model,
                                const eval::BootstrapOptions& opts) {
  require(baseline.size() == model.size(), "text pair summary: ", baseline.size(), " baseline texts but ",
          model.size(), " model texts");
  require(!baseline.empty(), "text pair summary: no text pairs");
  const size_t n = baseline.size();
  TextPairSummary s;
  s.pairs = n;
  std::vector<double> r1(n), r2(n), rl(n), bleu(n), chrf(n), em(n);
  std::vector<BleuStats> bleu_parts;
  std::vector<std::vector<int64_t>> chrf_parts;
  const ChrfOptions chrf_opts;
  for (size_t i = 0; i < n; ++i) {
    RougeScores r = rouge(baseline[i], model[i]);
    r1[i] = r.rouge1.fmeasure;
    r2[i] = r.rouge2.fmeasure;
    rl[i] = r.rougeL.fmeasure;
    em[i] = exact_match(baseline[i], model[i]) ? 1.0 : 0.0;
    if (baseline[i].empty()) {
      ++s.empty_references;
      bleu[i] = chrf[i] = model[i].empty() ? 100.0 : 0.0;
      continue;
    }
    std::span<const std::string> refs(&baseline[i], 1);
    BleuOptions sentence_opts;
    sentence_opts.effective_order = true;
    bleu_parts.push_back(bleu_stats(model[i], refs));
    bleu[i] = bleu_from_stats(bleu_parts.back(), sentence_opts).score;
    chrf_parts.push_back(chrf_stats(model[i], refs, chrf_opts));
    chrf[i] = chrf_from_stats(chrf_parts.back(), chrf_opts);
  }
  s.rouge1_f = eval::mean_with_ci(r1, opts);
  s.rouge2_f = eval::mean_with_ci(r2, opts);
  s.rougeL_f = eval::mean_with_ci(rl, opts);
  s.sentence_bleu = eval::mean_with_ci(bleu, opts);
  s.sentence_chrf = eval::mean_with_ci(chrf, opts);
  s.exact_match = eval::mean_with_ci(em, opts);

  if (!bleu_parts.empty()) {
    auto corpus_bleu_of = [&](auto&& indices) {
      BleuStats total;
      for (size_t i : indices) total.add(bleu_parts[i]);
      return bleu_from_stats(total, BleuOptions{}).score;
    };
    auto corpus_chrf_of = [&](auto&& indices) {
      std::vector<int64_t> total(chrf_parts[0].size(), 0);
      for (size_t i : indices)
        for (size_t j = 0; j < total.size(); ++j) total[j] += chrf_parts[i][j];
      return chrf_from_stats(total, chrf_opts);
    };
    std::vector<size_t> all(bleu_parts.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    s.corpus_bleu = corpus_bleu_of(all);
    s.corpus_chrf = corpus_chrf_of(all);
    s.corpus_bleu_ci = eval::bootstrap_ci(
        bleu_parts.size(), [&](std::span<const uint32_t> idx) { return corpus_bleu_of(idx); }, opts);
    s.corpus_chrf_ci = eval::bootstrap_ci(
        chrf_parts.size(), [&](std::span<const uint32_t> idx) { return corpus_chrf_of(idx); }, opts);
  }
  return s;
}

}  // namespace qs::fidelity
