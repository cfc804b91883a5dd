// Text similarity between a baseline's output (the reference) and a quantized model's output
// (the candidate), with the definitions of the tools users compare against.
//
// ROUGE — Google's `rouge-score` (rouge_scorer.py, tokenize.py), default tokenizer, no stemming:
//   tokens: Python str.lower(), every run of characters outside [a-z0-9] becomes a separator
//   (so "don't" -> "don", "t"; non-ASCII letters separate; U+212A KELVIN SIGN lowercases to 'k'
//   and U+0130 to 'i' + U+0307, as in Python). ROUGE-N: clipped n-gram overlap,
//   P = overlap / max(#candidate n-grams, 1), R = overlap / max(#reference n-grams, 1),
//   F = 2PR/(P+R) (0 when P+R = 0). ROUGE-L: sentence-level LCS of the token sequences,
//   P = LCS/|candidate|, R = LCS/|reference|, F as above, all 0 if either is empty (not Lsum).
// BLEU — sacreBLEU 2.x (metrics/bleu.py, tokenizers/tokenizer_13a.py), defaults: 13a
//   tokenization (after Python rstrip(): remove "<skipped>", "-\n"; "\n" -> " "; unescape
//   &quot; &amp; &lt; &gt;; pad with spaces; split off ASCII punctuation except ' - . and ,;
//   split '.' and ',' unless between digits; split '-' after a digit; collapse whitespace as
//   Python str.split()), case-sensitive, max order 4, clipped counts (max over references),
//   closest reference length (ties: the shorter), BP = exp(1 - r/c) when c < r (0 when c = 0),
//   score = 100 * BP * exp(mean log p_n) in [0, 100], 0 when no n-gram matches at all.
//   Smoothing 'exp' (mteval-v13a / NLTK method3): the k-th order with no match gets precision
//   1/(2^k * total). Sentence BLEU = sacrebleu.sentence_bleu: 'exp' + effective order (orders
//   whose total is 0 are left out of the mean). Corpus BLEU = sacrebleu.corpus_bleu: statistics
//   summed over sentences, 'exp', no effective order. Empty references are dropped; a sentence
//   with no non-empty reference is an error, as in sacreBLEU.
// chrF — sacreBLEU 2.x CHRF defaults: character n-grams of orders 1..6 over Unicode code points
//   with whitespace removed, word order 0, beta 2, case-sensitive; per order: hypothesis count
//   (0 when the reference has no n-gram of that order), reference count, clipped matches;
//   precision and recall are averaged over the orders where both counts are > 0 ("effective
//   order"), then F_beta = (1+b^2)PR/(b^2 P + R), x100. Corpus chrF sums the statistics over
//   sentences first; with several references the one with the best sentence F is used. Empty
//   references are dropped and a sentence without a non-empty one is an error, as in sacreBLEU.
//   `eps_smoothing` = sacreBLEU's option of the same name (the chrF++.py / NLTK / Moses way:
//   F_beta per order, averaged over all orders, 1e-16 in place of undefined values). NLTK's
//   `sentence_chrf` equals that eps variant (its default beta is 3; pass 2), not the default;
//   NLTK's `corpus_chrf` averages sentence scores, which sacreBLEU never does.
// Invalid UTF-8 bytes count as U+FFFD characters in chrF and as separators in ROUGE; 13a works
// on bytes and passes them through. Lower-casing options are not offered (the defaults of all
// three tools are used).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/stats.h"

namespace qs::fidelity {

struct Prf {
  double precision = 0, recall = 0, fmeasure = 0;
};

// --- ROUGE ------------------------------------------------------------------------------------
std::vector<std::string> rouge_tokenize(std::string_view text);
Prf rouge_n(std::span<const std::string> reference, std::span<const std::string> candidate, int n);
Prf rouge_l(std::span<const std::string> reference, std::span<const std::string> candidate);
struct RougeScores {
  Prf rouge1, rouge2, rougeL;
};
// rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(target=reference, prediction=candidate)
RougeScores rouge(std::string_view reference, std::string_view candidate);

// --- BLEU -------------------------------------------------------------------------------------
// 13a-tokenized line, tokens joined by single spaces.
std::string tokenize_13a(std::string_view line);

enum class BleuSmoothing { None, Floor, AddK, Exp };
struct BleuOptions {
  BleuSmoothing smoothing = BleuSmoothing::Exp;
  double smooth_value = -1;  // < 0: sacreBLEU's default (floor 0.1, add-k 1)
  bool effective_order = false;
  int max_order = 4;
};
// Sufficient statistics of one or more sentences (sums over sentences for a corpus).
struct BleuStats {
  int64_t sys_len = 0, ref_len = 0;
  std::vector<int64_t> correct, total;  // per order 1..max_order
  void add(const BleuStats& other);
};
struct BleuScore {
  double score = 0;  // 0..100
  std::vector<double> precisions;  // percent, per order
  double bp = 0;
  int64_t sys_len = 0, ref_len = 0;
  std::vector<int64_t> counts, totals;
};
BleuStats bleu_stats(std::string_view hypothesis, std::span<const std::string> references, int max_order = 4);
BleuScore bleu_from_stats(const BleuStats& stats, const BleuOptions& opts);
// sacrebleu.sentence_bleu(hypothesis, references): 'exp' smoothing, effective order.
BleuScore sentence_bleu(std::string_view hypothesis, std::span<const std::string> references);
// sacrebleu.corpus_bleu: references[i] are the references of hypotheses[i].
BleuScore corpus_bleu(std::span<const std::string> hypotheses, std::span<const std::vector<std::string>> references,
                      const BleuOptions& opts = {});

// --- chrF -------------------------------------------------------------------------------------
struct ChrfOptions {
  int char_order = 6;
  int word_order = 0;  // 2 = chrF++
  double beta = 2;
  bool whitespace = false;     // keep whitespace in character n-grams
  bool eps_smoothing = false;  // see the file comment
};
// [hyp, ref, match] counts per order (char orders first, then word orders).
std::vector<int64_t> chrf_stats(std::string_view hypothesis, std::span<const std::string> references,
                                const ChrfOptions& opts = {});
double chrf_from_stats(std::span<const int64_t> stats, const ChrfOptions& opts = {});  // 0..100
double sentence_chrf(std::string_view hypothesis, std::span<const std::string> references, const ChrfOptions& opts = {});
double corpus_chrf(std::span<const std::string> hypotheses, std::span<const std::vector<std::string>> references,
                   const ChrfOptions& opts = {});

// --- Other fidelity measures ------------------------------------------------------------------
bool exact_match(std::string_view a, std::string_view b);  // byte equality

// Fraction of positions where two token-id sequences hold the same id, over the longer length
// (1 when both are empty); first_difference = first such position that differs, including the
// end of the shorter sequence, or -1 when identical.
struct TokenAgreement {
  double agreement = 1;
  int64_t first_difference = -1;
  size_t matching = 0, length = 0;
};
TokenAgreement token_agreement(std::span<const int32_t> a, std::span<const int32_t> b);

// Distinct-n (Li et al. 2016): unique n-grams / total n-grams over all texts together, tokens
// split on whitespace as Python's str.split(); 0 when there is no n-gram.
double distinct_n(std::span<const std::string> texts, int n);
// Self-BLEU (Zhu et al. 2018, Texygen): each text as hypothesis against all the others as
// references, averaged. Here with sacreBLEU sentence BLEU (13a, 'exp', effective order, 0..100)
// rather than Texygen's NLTK method1 on NLTK word tokens. Texts with no non-empty other text
// are skipped; needs >= 2 texts.
double self_bleu(std::span<const std::string> texts);
// seq-rep-n (Welleck et al. 2019): fraction of the n-grams of ONE sequence that repeat an
// earlier n-gram of it = 1 - unique/total; 0 when the sequence has fewer than n tokens. The
// text overload splits on whitespace; the id overload works on model token ids.
double repetition_rate(std::string_view text, int n = 4);
double repetition_rate(std::span<const int32_t> ids, int n = 4);

// --- Aggregation over (baseline, model) text pairs ----------------------------------------------
struct TextPairSummary {
  size_t pairs = 0;
  eval::MeanWithCI rouge1_f, rouge2_f, rougeL_f;  // 0..1
  eval::MeanWithCI sentence_bleu;                // 0..100
  eval::MeanWithCI sentence_chrf;                // 0..100
  eval::MeanWithCI exact_match;                  // fraction
  // Corpus scores over the pairs whose baseline text is not empty, with a percentile bootstrap
  // CI over pairs (the statistics of resampled pairs are summed, as sacreBLEU's --confidence).
  double corpus_bleu = 0, corpus_chrf = 0;
  eval::ConfidenceInterval corpus_bleu_ci, corpus_chrf_ci;
  size_t empty_references = 0;
};
// Sentence BLEU and chrF of a pair whose baseline text is empty (sacreBLEU refuses it) count 100
// when the model text is empty too and 0 otherwise; such pairs are left out of the corpus scores.
TextPairSummary summarize_pairs(std::span<const std::string> baseline, std::span<const std::string> model,
                                const eval::BootstrapOptions& opts = {});

}  // namespace qs::fidelity
