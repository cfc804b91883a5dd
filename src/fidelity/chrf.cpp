// sacreBLEU's chrF / chrF++ (see text_metrics.h).
#include <unordered_map>

#include "core/error.h"
#include "fidelity/text_metrics.h"
#include "fidelity/text_util.h"

namespace qs::fidelity {

namespace {

using Counts = std::unordered_map<std::u32string, int64_t>;

// Character n-gram counts of orders 1..max_order, whitespace removed unless kept.
std::vector<Counts> char_ngrams(std::string_view line, int max_order, bool keep_whitespace) {
  std::u32string chars;
  if (keep_whitespace) {
    chars = detail::to_code_points(line);
  } else {
    for (std::string_view word : detail::python_split(line)) chars += detail::to_code_points(word);
  }
  std::vector<Counts> out(max_order);
  for (int n = 1; n <= max_order; ++n)
    for (size_t i = 0; i + n <= chars.size(); ++i) ++out[n - 1][chars.substr(i, n)];
  return out;
}

bool is_ascii_punct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// chrF++'s word split: whitespace tokens with one leading or trailing punctuation mark split off.
std::vector<std::u32string> chrf_words(std::string_view line) {
  std::vector<std::u32string> out;
  for (std::string_view w : detail::python_split(line)) {
    std::u32string word = detail::to_code_points(w);
    if (word.size() == 1) {
      out.push_back(word);
    } else if (is_ascii_punct(word.back())) {
      out.push_back(word.substr(0, word.size() - 1));
      out.push_back(word.substr(word.size() - 1));
    } else if (is_ascii_punct(word.front())) {
      out.push_back(word.substr(0, 1));
      out.push_back(word.substr(1));
    } else {
      out.push_back(word);
    }
  }
  return out;
}

// Word n-grams of order n, the words joined by U+0000 (which no word contains after splitting).
Counts word_ngrams(const std::vector<std::u32string>& words, int n) {
  Counts out;
  for (size_t i = 0; i + n <= words.size(); ++i) {
    std::u32string key = words[i];
    for (int k = 1; k < n; ++k) (key += U'\0') += words[i + k];
    ++out[key];
  }
  return out;
}

std::vector<Counts> all_ngrams(std::string_view line, const ChrfOptions& opts) {
  auto grams = char_ngrams(line, opts.char_order, opts.whitespace);
  if (opts.word_order > 0) {
    auto words = chrf_words(line);
    for (int n = 1; n <= opts.word_order; ++n) grams.push_back(word_ngrams(words, n));
  }
  return grams;
}

void check(const ChrfOptions& opts) {
  require(opts.char_order >= 0 && opts.word_order >= 0 && opts.char_order + opts.word_order >= 1,
          "chrF: orders must be >= 0 with at least one n-gram order, got char ", opts.char_order, " word ",
          opts.word_order);
  require(opts.beta > 0, "chrF: beta must be positive, got ", opts.beta);
}

}  // namespace

double chrf_from_stats(std::span<const int64_t> stats, const ChrfOptions& opts) {
  const int order = opts.char_order + opts.word_order;
  require(stats.size() == static_cast<size_t>(3 * order), "chrF: ", stats.size(), " statistics for ", order,
          " orders");
  const double eps = 1e-16, factor = opts.beta * opts.beta;
  double score = 0, avg_prec = 0, avg_rec = 0;
  int effective_order = 0;
  for (int i = 0; i < order; ++i) {
    int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    double prec = n_hyp > 0 ? static_cast<double>(n_match) / static_cast<double>(n_hyp) : eps;
    double rec = n_ref > 0 ? static_cast<double>(n_match) / static_cast<double>(n_ref) : eps;
    double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (opts.eps_smoothing) return 100 * score / order;
  if (effective_order == 0) return 0.0;
  avg_prec /= effective_order;
  avg_rec /= effective_order;
  if (avg_prec + avg_rec == 0) return 0.0;
  return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

std::vector<int64_t> chrf_stats(std::string_view hypothesis, std::span<const std::string> references,
                                const ChrfOptions& opts) {
  check(opts);
  auto hyp = all_ngrams(hypothesis, opts);
  std::vector<int64_t> best;
  double best_f = -1;
  for (const std::string& reference : references) {
    if (reference.empty()) continue;  // sacreBLEU drops empty references
    auto ref = all_ngrams(reference, opts);
    std::vector<int64_t> stats;
    for (size_t i = 0; i < hyp.size(); ++i) {
      int64_t hyp_count = 0, ref_count = 0, match = 0;
      for (const auto& [gram, count] : hyp[i]) {
        hyp_count += count;
        auto it = ref[i].find(gram);
        if (it != ref[i].end()) match += std::min(count, it->second);
      }
      for (const auto& [gram, count] : ref[i]) ref_count += count;
      stats.push_back(ref[i].empty() ? 0 : hyp_count);  // no hits counted without reference n-grams
      stats.push_back(ref_count);
      stats.push_back(match);
    }
    double f = chrf_from_stats(stats, opts);
    if (f > best_f) {
      best_f = f;
      best = std::move(stats);
    }
  }
  require(best_f >= 0, "chrF: no non-empty reference for hypothesis ", quote(hypothesis),
          " (sacreBLEU refuses empty references)");
  return best;
}

double sentence_chrf(std::string_view hypothesis, std::span<const std::string> references, const ChrfOptions& opts) {
  return chrf_from_stats(chrf_stats(hypothesis, references, opts), opts);
}

double corpus_chrf(std::span<const std::string> hypotheses, std::span<const std::vector<std::string>> references,
                   const ChrfOptions& opts) {
  require(hypotheses.size() == references.size(), "corpus chrF: ", hypotheses.size(), " hypotheses but ",
          references.size(), " reference sets");
  require(!hypotheses.empty(), "corpus chrF: no sentences");
  std::vector<int64_t> total;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    auto s = chrf_stats(hypotheses[i], references[i], opts);
    if (total.empty()) total.assign(s.size(), 0);
    for (size_t j = 0; j < s.size(); ++j) total[j] += s[j];
  }
  return chrf_from_stats(total, opts);
}

}  // namespace qs::fidelity
