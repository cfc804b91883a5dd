// sacreBLEU's 13a tokenizer and BLEU (see text_metrics.h).
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "fidelity/text_metrics.h"
#include "fidelity/text_util.h"

namespace qs::fidelity {

namespace {

// Python str.replace(old, new): non-overlapping, left to right.
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (s.find(from) == std::string::npos) return s;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// mteval's character class [{-~[-` -&(-+:-@/]: ASCII punctuation (and space) except ' , - .
bool is_13a_punct(unsigned char c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

// re.sub of a two-character pattern (a)(b) -> replacement, scanning left to right without
// overlap. Works on bytes: for valid UTF-8 this gives the same string as Python on code points,
// since the classes other than [^0-9] are ASCII and UTF-8 continuation bytes never match them.
template <class First, class Second, class Emit>
std::string sub_pairs(const std::string& s, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    auto a = static_cast<unsigned char>(s[i]);
    if (i + 1 < s.size() && first(a) && second(static_cast<unsigned char>(s[i + 1]))) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i];
      ++i;
    }
  }
  return out;
}

double my_log(double x) { return x == 0 ? -9999999999.0 : std::log(x); }

}  // namespace

std::string tokenize_13a(std::string_view input) {
  std::string line(detail::python_rstrip(input));
  line = replace_all(std::move(line), "<skipped>", "");
  line = replace_all(std::move(line), "-\n", "");
  line = replace_all(std::move(line), "\n", " ");
  line = replace_all(std::move(line), "&quot;", "\"");
  line = replace_all(std::move(line), "&amp;", "&");
  line = replace_all(std::move(line), "&lt;", "<");
  line = replace_all(std::move(line), "&gt;", ">");
  line = " " + line + " ";

  std::string spaced;
  spaced.reserve(line.size() * 2);
  for (char c : line) {
    if (is_13a_punct(static_cast<unsigned char>(c))) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  auto not_digit = [](unsigned char c) { return !is_digit(c); };
  auto period_comma = [](unsigned char c) { return c == '.' || c == ','; };
  // period and comma unless preceded by a digit: ([^0-9])([\.,]) -> "\1 \2 "
  spaced = sub_pairs(spaced, not_digit, period_comma, [](std::string& o, char a, char b) {
    o += a;
    o += ' ';
    o += b;
    o += ' ';
  });
  // period and comma unless followed by a digit: ([\.,])([^0-9]) -> " \1 \2"
  spaced = sub_pairs(spaced, period_comma, not_digit, [](std::string& o, char a, char b) {
    o += ' ';
    o += a;
    o += ' ';
    o += b;
  });
  // dash preceded by a digit: ([0-9])(-) -> "\1 \2 "
  spaced = sub_pairs(spaced, [](unsigned char c) { return is_digit(c); }, [](unsigned char c) { return c == '-'; },
                     [](std::string& o, char a, char b) {
                       o += a;
                       o += ' ';
                       o += b;
                       o += ' ';
                     });
  std::string out;
  for (std::string_view tok : detail::python_split(spaced)) {
    if (!out.empty()) out += ' ';
    out += tok;
  }
  return out;
}

void BleuStats::add(const BleuStats& o) {
  if (correct.empty()) {
    correct.assign(o.correct.size(), 0);
    total.assign(o.total.size(), 0);
  }
  require(correct.size() == o.correct.size(), "BLEU: cannot add statistics of max order ", o.correct.size(), " to ",
          correct.size());
  sys_len += o.sys_len;
  ref_len += o.ref_len;
  for (size_t n = 0; n < correct.size(); ++n) {
    correct[n] += o.correct[n];
    total[n] += o.total[n];
  }
}

BleuStats bleu_stats(std::string_view hypothesis, std::span<const std::string> references, int max_order) {
  require(max_order >= 1, "BLEU: max order must be >= 1, got ", max_order);
  // n-gram key -> max count over the references (tokens hold no space).
  std::unordered_map<std::string, int64_t> ref_max;
  std::vector<int64_t> ref_lens;
  for (const std::string& ref : references) {
    if (ref.empty()) continue;  // sacreBLEU drops empty references
    std::string tok = tokenize_13a(ref);
    auto words = detail::python_split(tok);
    ref_lens.push_back(static_cast<int64_t>(words.size()));
    std::unordered_map<std::string, int64_t> counts;
    for (int n = 1; n <= max_order; ++n)
      for (size_t i = 0; i + n <= words.size(); ++i) ++counts[detail::join_ngram(words, i, n, ' ')];
    for (auto& [gram, c] : counts) ref_max[gram] = std::max(ref_max[gram], c);
  }
  require(!ref_lens.empty(), "BLEU: no non-empty reference for hypothesis ", quote(hypothesis),
          " (sacreBLEU refuses empty references)");

  std::string tok = tokenize_13a(hypothesis);
  auto words = detail::python_split(tok);
  BleuStats s;
  s.sys_len = static_cast<int64_t>(words.size());
  // Closest reference length; ties go to the shorter reference.
  int64_t best_diff = -1;
  for (int64_t len : ref_lens) {
    int64_t diff = std::llabs(s.sys_len - len);
    if (best_diff < 0 || diff < best_diff || (diff == best_diff && len < s.ref_len)) {
      best_diff = diff;
      s.ref_len = len;
    }
  }
  s.correct.assign(max_order, 0);
  s.total.assign(max_order, 0);
  std::unordered_map<std::string, int64_t> hyp_counts;
  for (int n = 1; n <= max_order; ++n)
    for (size_t i = 0; i + n <= words.size(); ++i) ++hyp_counts[detail::join_ngram(words, i, n, ' ')];
  for (const auto& [gram, count] : hyp_counts) {
    size_t order = static_cast<size_t>(std::count(gram.begin(), gram.end(), ' '));
    s.total[order] += count;
    auto it = ref_max.find(gram);
    if (it != ref_max.end()) s.correct[order] += std::min(count, it->second);
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& stats, const BleuOptions& opts) {
  const int max_order = opts.max_order;
  require(static_cast<int>(stats.correct.size()) == max_order && static_cast<int>(stats.total.size()) == max_order,
          "BLEU: statistics have ", stats.correct.size(), " orders but max_order is ", max_order);
  BleuScore r;
  r.sys_len = stats.sys_len;
  r.ref_len = stats.ref_len;
  r.counts = stats.correct;
  r.totals = stats.total;
  r.precisions.assign(max_order, 0.0);
  if (stats.sys_len < stats.ref_len)
    r.bp = stats.sys_len > 0 ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len))
                             : 0.0;
  else
    r.bp = 1.0;
  if (std::all_of(stats.correct.begin(), stats.correct.end(), [](int64_t c) { return c == 0; })) return r;

  double smooth_value = opts.smooth_value;
  if (smooth_value < 0) smooth_value = opts.smoothing == BleuSmoothing::Floor ? 0.1 : 1.0;
  double smooth_mteval = 1.0;
  int eff_order = max_order;
  for (int n = 1; n <= max_order; ++n) {
    double correct = static_cast<double>(stats.correct[n - 1]), total = static_cast<double>(stats.total[n - 1]);
    if (opts.smoothing == BleuSmoothing::AddK && n > 1) {
      correct += smooth_value;
      total += smooth_value;
    }
    if (total == 0) break;
    if (opts.effective_order) eff_order = n;
    if (correct == 0) {
      if (opts.smoothing == BleuSmoothing::Exp) {
        smooth_mteval *= 2;
        r.precisions[n - 1] = 100.0 / (smooth_mteval * total);
      } else if (opts.smoothing == BleuSmoothing::Floor) {
        r.precisions[n - 1] = 100.0 * smooth_value / total;
      }
    } else {
      r.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  double sum = 0;
  for (int n = 0; n < eff_order; ++n) sum += my_log(r.precisions[n]);
  r.score = r.bp * std::exp(sum / eff_order);
  return r;
}

BleuScore sentence_bleu(std::string_view hypothesis, std::span<const std::string> references) {
  BleuOptions opts;
  opts.effective_order = true;
  return bleu_from_stats(bleu_stats(hypothesis, references, opts.max_order), opts);
}

BleuScore corpus_bleu(std::span<const std::string> hypotheses, std::span<const std::vector<std::string>> references,
                      const BleuOptions& opts) {
  require(hypotheses.size() == references.size(), "corpus BLEU: ", hypotheses.size(), " hypotheses but ",
          references.size(), " reference sets");
  require(!hypotheses.empty(), "corpus BLEU: no sentences");
  BleuStats total;
  for (size_t i = 0; i < hypotheses.size(); ++i) total.add(bleu_stats(hypotheses[i], references[i], opts.max_order));
  return bleu_from_stats(total, opts);
}

}  // namespace qs::fidelity
