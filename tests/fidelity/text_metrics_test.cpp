#include "fidelity/text_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "testing/testing.h"

namespace qs::fidelity {
namespace {

using nlohmann::json;

bool close(double got, double want, double rel = 1e-9, double abs_floor = 1e-12) {
  return std::fabs(got - want) <= std::max(rel * std::fabs(want), abs_floor);
}

// ---------------------------------------------------------------------------------------------
// Hand-computed and published values

TEST(Rouge, RougeScoreUnitTestValues) {
  // google-research/rouge rouge_scorer_test.py: score(target, prediction).
  auto r = rouge("testing one two", "testing");
  EXPECT_DOUBLE_EQ(r.rouge1.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.rouge1.recall, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.rouge1.fmeasure, 0.5);
  r = rouge("testing one two", "testing one");
  EXPECT_DOUBLE_EQ(r.rouge2.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.rouge2.recall, 0.5);
  EXPECT_DOUBLE_EQ(r.rouge2.fmeasure, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.rougeL.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.rougeL.fmeasure, 0.8);
  r = rouge("testing one two", "testing two");  // non-consecutive LCS
  EXPECT_DOUBLE_EQ(r.rougeL.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.rougeL.fmeasure, 0.8);
  r = rouge("testing one two", "");
  EXPECT_EQ(r.rouge1.fmeasure, 0.0);
  EXPECT_EQ(r.rouge2.precision, 0.0);
  EXPECT_EQ(r.rougeL.recall, 0.0);
  // _lcs_table test: LCS([1,2,3,4,5], [2,5,3,4]) = 3.
  std::vector<std::string> ref = {"1", "2", "3", "4", "5"}, cand = {"2", "5", "3", "4"};
  EXPECT_DOUBLE_EQ(rouge_l(ref, cand).recall, 3.0 / 5);
}

TEST(Rouge, AgainstRouge155GroundTruth) {
  // rouge-score's testdata target.txt / prediction.txt lines 0 and 1, with the ROUGE-1.5.5
  // values its tests check to 5 decimals.
  const char* target0 =
      "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr "
      "q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n";
  const char* prediction0 = "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n";
  const char* target1 =
      "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer "
      "HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion "
      "gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n";
  const char* prediction1 =
      "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed "
      "nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n";
  auto r0 = rouge(target0, prediction0), r1 = rouge(target1, prediction1);
  auto expect = [](const Prf& p, double rec, double prec, double f) {
    EXPECT_NEAR(p.recall, rec, 5e-6);
    EXPECT_NEAR(p.precision, prec, 5e-6);
    EXPECT_NEAR(p.fmeasure, f, 5e-6);
  };
  expect(r0.rouge1, 0.40741, 0.68750, 0.51163);
  expect(r1.rouge1, 0.40476, 0.65385, 0.50000);
  expect(r0.rouge2, 0.30769, 0.53333, 0.39024);
  expect(r1.rouge2, 0.29268, 0.48000, 0.36364);
  expect(r0.rougeL, 0.40741, 0.68750, 0.51163);
  expect(r1.rougeL, 0.40476, 0.65385, 0.50000);
}

TEST(Rouge, TokenizerFollowsPythonLower) {
  EXPECT_EQ(rouge_tokenize("Don't STOP-me now, 3.14!"),
            (std::vector<std::string>{"don", "t", "stop", "me", "now", "3", "14"}));
  // U+212A KELVIN SIGN lowercases to 'k'; U+0130 to "i" + combining dot; other letters separate.
  EXPECT_EQ(rouge_tokenize("5\u212A \u0130stanbul caf\u00e9s"),
            (std::vector<std::string>{"5k", "i", "stanbul", "caf", "s"}));
  EXPECT_TRUE(rouge_tokenize(" /// ").empty());
}

TEST(Bleu, SacrebleuReadmeExample) {
  std::vector<std::string> sys = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
  std::vector<std::vector<std::string>> refs = {{"The dog bit the man.", "The dog had bit the man."},
                                                {"It was not unexpected.", "No one was surprised."},
                                                {"The man bit him first.", "The man had bitten the dog."}};
  BleuScore b = corpus_bleu(sys, refs);
  // sacreBLEU README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
  EXPECT_NEAR(b.score, 48.53, 0.005);
  EXPECT_NEAR(b.precisions[0], 82.4, 0.05);
  EXPECT_NEAR(b.precisions[1], 50.0, 0.05);
  EXPECT_NEAR(b.precisions[2], 45.5, 0.05);
  EXPECT_NEAR(b.precisions[3], 37.5, 0.05);
  EXPECT_NEAR(b.bp, 0.943, 0.0005);
  EXPECT_EQ(b.sys_len, 17);
  EXPECT_EQ(b.ref_len, 18);
  // sacreBLEU README: chrF2 = 59.73
  EXPECT_NEAR(corpus_chrf(sys, refs), 59.73, 0.005);
}

TEST(Bleu, Tokenizer13aRules) {
  EXPECT_EQ(tokenize_13a("Hello, world! It costs $3.50 (or 1,000 yen)."),
            "Hello , world ! It costs $ 3.50 ( or 1,000 yen ) .");
  EXPECT_EQ(tokenize_13a("don't e-mail 9-5 a&amp;b &quot;x&quot; <skipped>end"), "don't e-mail 9 - 5 a & b \" x \" end");
  EXPECT_EQ(tokenize_13a("hyphen-\nated line\nbreak  \n"), "hyphenated line break");
  EXPECT_EQ(tokenize_13a("x.y a..b 3.,"), "x . y a . . b 3 . ,");
  EXPECT_EQ(tokenize_13a("caf\u00e9. na\u00efve\u00a0word\u3000end"), "caf\u00e9 . na\u00efve word end");
  EXPECT_EQ(tokenize_13a(""), "");
}

TEST(Bleu, SentenceEdgeCases) {
  std::vector<std::string> ref = {"the quick brown fox jumps"};
  EXPECT_NEAR(sentence_bleu("the quick brown fox jumps", ref).score, 100.0, 1e-9);
  EXPECT_EQ(sentence_bleu("completely different words here", ref).score, 0.0);
  EXPECT_EQ(sentence_bleu("", ref).score, 0.0);
  // Two tokens: effective order 2, bp = exp(1 - 5/2).
  BleuScore s = sentence_bleu("the quick", ref);
  EXPECT_NEAR(s.score, std::exp(1 - 5.0 / 2) * 100.0, 1e-9);
  // One unigram match, no bigram: exp smoothing gives the bigram 1/(2*1).
  s = sentence_bleu("the slow", ref);
  EXPECT_NEAR(s.precisions[1], 50.0, 1e-12);
  EXPECT_NEAR(s.score, std::exp(1 - 5.0 / 2) * std::sqrt(50.0 * 50.0), 1e-9);
  std::vector<std::string> empty = {""};
  EXPECT_THROW(sentence_bleu("x", empty), Error);
  std::vector<std::string> with_empty = {"", "the quick brown fox jumps"};
  EXPECT_NEAR(sentence_bleu("the quick brown fox jumps", with_empty).score, 100.0, 1e-9);
}

TEST(Chrf, HandValues) {
  std::vector<std::string> ref = {"abc"};
  EXPECT_NEAR(sentence_chrf("abc", ref), 100.0, 1e-12);
  // "ab" vs "abc": orders 1,2 effective; P = (1 + 1)/2, R = (2/3 + 1/2)/2 = 7/12.
  double p = 1.0, r = 7.0 / 12.0;
  EXPECT_NEAR(sentence_chrf("ab", ref), 100 * 5 * p * r / (4 * p + r), 1e-12);
  EXPECT_NEAR(sentence_chrf("a b", ref), sentence_chrf("ab", ref), 1e-15);  // whitespace ignored
  EXPECT_EQ(sentence_chrf("xyz", ref), 0.0);
  std::vector<std::string> empty = {""};
  EXPECT_THROW(sentence_chrf("x", empty), Error);
  // Corpus sums: a hypothesis gets no n-gram count for orders its reference is too short for.
  std::vector<std::string> hyps = {"abcdefgh", "abcdefgh"};
  std::vector<std::vector<std::string>> refs = {{"abc"}, {"abcdefgh"}};
  double prec = (11.0 / 16 + 9.0 / 14 + 7.0 / 12 + 3.0) / 6;  // orders 4-6: 5/5, 4/4, 3/3
  EXPECT_NEAR(corpus_chrf(hyps, refs), 100 * 5 * prec / (4 * prec + 1), 1e-12);
}

TEST(TextStats, AgreementDistinctRepetition) {
  std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 9, 4, 5};
  TokenAgreement t = token_agreement(a, b);
  EXPECT_EQ(t.matching, 3u);
  EXPECT_EQ(t.length, 5u);
  EXPECT_DOUBLE_EQ(t.agreement, 0.6);
  EXPECT_EQ(t.first_difference, 2);
  std::vector<int32_t> prefix = {1, 2};
  EXPECT_EQ(token_agreement(a, prefix).first_difference, 2);
  EXPECT_EQ(token_agreement(a, a).first_difference, -1);
  EXPECT_EQ(token_agreement({}, {}).agreement, 1.0);

  std::vector<std::string> texts = {"a b a b", "a c"};
  EXPECT_DOUBLE_EQ(distinct_n(texts, 1), 3.0 / 6.0);  // a b c over 6 tokens
  EXPECT_DOUBLE_EQ(distinct_n(texts, 2), 3.0 / 4.0);  // ab ba ab | ac
  EXPECT_EQ(distinct_n(std::vector<std::string>{""}, 2), 0.0);

  EXPECT_DOUBLE_EQ(repetition_rate("a b c d a b c d", 4), 1.0 / 5.0);
  EXPECT_EQ(repetition_rate("a b c", 4), 0.0);
  std::vector<int32_t> ids = {7, 7, 7, 7, 7, 7};
  EXPECT_DOUBLE_EQ(repetition_rate(ids, 4), 2.0 / 3.0);
  EXPECT_TRUE(exact_match("x y", "x y"));
  EXPECT_FALSE(exact_match("x y", "x y "));

  std::vector<std::string> same = {"the cat sat on the mat", "the cat sat on the mat", "the cat sat on the mat"};
  EXPECT_NEAR(self_bleu(same), 100.0, 1e-9);
  std::vector<std::string> disjoint = {"alpha beta gamma delta", "one two three four", "red green blue black"};
  EXPECT_EQ(self_bleu(disjoint), 0.0);
  EXPECT_THROW(self_bleu(std::vector<std::string>{"only one"}), Error);
}

TEST(TextStats, PairSummary) {
  std::vector<std::string> base = {"The cat sat on the mat.", "A quick brown fox.", "", "Same text here."};
  std::vector<std::string> model = {"The cat sat on a mat.", "A slow brown fox!", "", "Same text here."};
  TextPairSummary s = summarize_pairs(base, model, {.resamples = 500});
  EXPECT_EQ(s.pairs, 4u);
  EXPECT_EQ(s.empty_references, 1u);
  EXPECT_DOUBLE_EQ(s.exact_match.mean, 0.5);
  // The empty pair counts as identical for sentence BLEU/chrF.
  double bleu0 = sentence_bleu(model[0], std::vector<std::string>{base[0]}).score;
  double bleu1 = sentence_bleu(model[1], std::vector<std::string>{base[1]}).score;
  EXPECT_NEAR(s.sentence_bleu.mean, (bleu0 + bleu1 + 100 + 100) / 4, 1e-9);
  std::vector<std::string> hyps = {model[0], model[1], model[3]};
  std::vector<std::vector<std::string>> refs = {{base[0]}, {base[1]}, {base[3]}};
  EXPECT_NEAR(s.corpus_bleu, corpus_bleu(hyps, refs).score, 1e-9);
  EXPECT_NEAR(s.corpus_chrf, corpus_chrf(hyps, refs), 1e-9);
  EXPECT_LE(s.corpus_bleu_ci.low, s.corpus_bleu);
  EXPECT_GE(s.corpus_bleu_ci.high, s.corpus_bleu);
  EXPECT_LE(s.rouge1_f.ci.low, s.rouge1_f.mean);
  EXPECT_THROW(summarize_pairs(base, std::vector<std::string>{"x"}), Error);
}

// ---------------------------------------------------------------------------------------------
// Generated sentence pairs against the Python (rouge-score / sacreBLEU definitions, NLTK) and
// npm (js-rouge) references.

const std::vector<std::string>& words() {
  static const std::vector<std::string> w = {
      "the", "The", "model", "quantized", "weights", "of", "a", "and", "is", "was", "to", "in", "it", "It's",
      "don't", "e-mail", "state-of-the-art", "K-9", "9-5", "3.5", "1,000", "2024", "x.y", "a,b", "...", ",", ".",
      "!", "?", ";", ":", "(", ")", "\"", "'", "-", "--", "&amp;", "&quot;", "&lt;b&gt;", "<skipped>", "$100",
      "50%", "#tag", "@user", "C++", "naïve", "café", "İstanbul", "5\u212A", "Ärger", "日本語", "—", "–", "«", "»",
      "end.", "(note)", "[x]", "{y}", "a/b", "path/to", "ok!", "why?", "U.S.A.", "Mr.", "e.g.,", "3,", "4."};
  return w;
}

std::string random_word(Rng& rng) { return words()[rng.below(words().size())]; }

std::string join_with_random_space(Rng& rng, const std::vector<std::string>& tokens) {
  static const char* spaces[] = {" ", " ", " ", " ", "  ", "\t", "\u00a0", "\u3000", "\n", "-\n", ""};
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += spaces[rng.below(std::size(spaces))];
    out += tokens[i];
  }
  if (rng.uniform() < 0.1) out += " \n";
  return out;
}

std::vector<std::array<std::string, 2>> generate_pairs(int count) {
  Rng rng(2024);
  std::vector<std::array<std::string, 2>> pairs;
  while (static_cast<int>(pairs.size()) < count) {
    std::vector<std::string> ref(5 + rng.below(26));
    for (auto& w : ref) w = random_word(rng);
    std::vector<std::string> hyp;
    double mode = rng.uniform();
    if (mode < 0.05) {
      hyp = ref;  // identical output
    } else if (mode < 0.1) {
      for (size_t i = 0; i < 6 + rng.below(10); ++i) hyp.push_back(random_word(rng));  // unrelated
    } else {
      for (const auto& w : ref) {  // a quantized model's small drifts
        double u = rng.uniform();
        if (u < 0.78) hyp.push_back(w);
        else if (u < 0.88) hyp.push_back(random_word(rng));
        else if (u < 0.94) continue;
        else {
          hyp.push_back(w);
          hyp.push_back(random_word(rng));
        }
      }
      if (hyp.size() > 2 && rng.uniform() < 0.3) std::swap(hyp[1], hyp[2]);
    }
    std::string r = join_with_random_space(rng, ref), h = join_with_random_space(rng, hyp);
    // NLTK's sentence BLEU equals sacreBLEU's only with >= 4 hypothesis tokens (see below).
    std::string tokenized = tokenize_13a(h);
    if (std::count(tokenized.begin(), tokenized.end(), ' ') < 3) continue;
    if (tokenize_13a(r).empty()) continue;
    pairs.push_back({r, h});
  }
  return pairs;
}

std::string write_pairs(const std::vector<std::array<std::string, 2>>& pairs) {
  json input = {{"pairs", json::array()}};
  for (const auto& [r, h] : pairs) input["pairs"].push_back({r, h});
  std::string dir = testing::make_temp_dir("text-ref");
  testing::write_text(dir + "/pairs.json", input.dump());
  return dir + "/pairs.json";
}

TEST(TextMetrics, AgainstPythonAndNltk) {
  auto pairs = generate_pairs(300);
  std::string in = write_pairs(pairs);
  auto r = testing::run_command(testing::python() + " " +
                                testing::shell_quote(testing::source_dir() + "/tests/fidelity/ref/text_metrics_ref.py") +
                                " " + testing::shell_quote(in));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json ref = json::parse(r.out);
  ASSERT_EQ(ref["pairs"].size(), pairs.size());

  BleuStats corpus;
  std::vector<int64_t> chrf_total;
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;
  int nltk_bleu_checked = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& [reference, hypothesis] = pairs[i];
    const json& w = ref["pairs"][i];
    std::string where = cat("pair ", i, " ", quote(reference), " / ", quote(hypothesis));
    auto rt = rouge_tokenize(reference), ht = rouge_tokenize(hypothesis);
    EXPECT_EQ(rt, w["rouge_ref_tokens"].get<std::vector<std::string>>()) << where;
    EXPECT_EQ(ht, w["rouge_hyp_tokens"].get<std::vector<std::string>>()) << where;
    RougeScores rs = rouge(reference, hypothesis);
    for (auto [name, got] : {std::pair{"rouge1", rs.rouge1}, {"rouge2", rs.rouge2}, {"rougeL", rs.rougeL}}) {
      EXPECT_TRUE(close(got.precision, w[name][0].get<double>())) << name << " P " << where;
      EXPECT_TRUE(close(got.recall, w[name][1].get<double>())) << name << " R " << where;
      EXPECT_TRUE(close(got.fmeasure, w[name][2].get<double>())) << name << " F " << where;
    }
    EXPECT_EQ(tokenize_13a(reference), w["tok13a_ref"].get<std::string>()) << where;
    EXPECT_EQ(tokenize_13a(hypothesis), w["tok13a_hyp"].get<std::string>()) << where;

    std::vector<std::string> one_ref = {reference};
    BleuStats bs = bleu_stats(hypothesis, one_ref);
    std::vector<int64_t> flat = {bs.sys_len, bs.ref_len};
    flat.insert(flat.end(), bs.correct.begin(), bs.correct.end());
    flat.insert(flat.end(), bs.total.begin(), bs.total.end());
    EXPECT_EQ(flat, w["bleu_stats"].get<std::vector<int64_t>>()) << where;
    double sb = sentence_bleu(hypothesis, one_ref).score;
    EXPECT_TRUE(close(sb, w["sentence_bleu"].get<double>())) << "sentence BLEU " << sb << " " << where;
    if (!w["nltk_bleu"].is_null()) {
      EXPECT_TRUE(close(sb, w["nltk_bleu"].get<double>())) << "NLTK BLEU " << where;
      ++nltk_bleu_checked;
    }
    double cf = sentence_chrf(hypothesis, one_ref);
    EXPECT_TRUE(close(cf, w["chrf"].get<double>())) << "chrF " << cf << " " << where;
    ChrfOptions eps;
    eps.eps_smoothing = true;
    double ce = sentence_chrf(hypothesis, one_ref, eps);
    EXPECT_TRUE(close(ce, w["chrf_eps"].get<double>())) << "chrF eps " << where;
    EXPECT_TRUE(close(ce, w["nltk_chrf"].get<double>())) << "NLTK chrF " << ce << " vs " << w["nltk_chrf"] << " " << where;
    corpus.add(bs);
    hyps.push_back(hypothesis);
    refs.push_back(one_ref);
  }
  EXPECT_EQ(nltk_bleu_checked, static_cast<int>(pairs.size()));
  double cb = corpus_bleu(hyps, refs).score;
  EXPECT_TRUE(close(cb, ref["corpus_bleu"].get<double>())) << cb;
  // Every hypothesis has >= 4 tokens, so NLTK's corpus BLEU (method3) is sacreBLEU's too.
  EXPECT_TRUE(close(cb, ref["nltk_corpus_bleu"].get<double>())) << cb << " vs NLTK " << ref["nltk_corpus_bleu"];
  EXPECT_TRUE(close(corpus_chrf(hyps, refs), ref["corpus_chrf"].get<double>()));
}

TEST(TextMetrics, RougeAgainstNpmJsRouge) {
  // The npm reference is installed into the build tree on first use and cached there. No
  // network means this test fails (it is the independent check of the ROUGE counting).
  std::string module_dir = testing::binary_dir() + "/node-ref-rouge";
  if (!std::filesystem::exists(module_dir + "/node_modules/js-rouge/package.json")) {
    std::filesystem::create_directories(module_dir);
    auto install = testing::run_command("npm install --prefix " + testing::shell_quote(module_dir) +
                                        " --no-audit --no-fund --no-save js-rouge@3.2.3");
    ASSERT_EQ(install.exit_code, 0) << "npm install js-rouge@3.2.3 failed (registry unreachable?):\n"
                                    << install.out << install.err;
  }
  auto pairs = generate_pairs(300);
  std::string in = write_pairs(pairs);
  auto r = testing::run_command("node " + testing::shell_quote(testing::source_dir() + "/tests/fidelity/ref/rouge_js_ref.js") +
                                " " + testing::shell_quote(module_dir) + " " + testing::shell_quote(in));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json ref = json::parse(r.out);
  ASSERT_EQ(ref.size(), pairs.size());
  int compared = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (ref[i].is_null()) continue;
    RougeScores rs = rouge(pairs[i][0], pairs[i][1]);
    std::string where = cat("pair ", i, " ", quote(pairs[i][0]), " / ", quote(pairs[i][1]));
    EXPECT_TRUE(close(rs.rouge1.fmeasure, ref[i][0].get<double>(), 1e-12)) << "ROUGE-1 " << where;
    EXPECT_TRUE(close(rs.rouge2.fmeasure, ref[i][1].get<double>(), 1e-12)) << "ROUGE-2 " << where;
    EXPECT_TRUE(close(rs.rougeL.fmeasure, ref[i][2].get<double>(), 1e-12)) << "ROUGE-L " << where;
    ++compared;
  }
  EXPECT_GT(compared, 280);
}

}  // namespace
}  // namespace qs::fidelity
