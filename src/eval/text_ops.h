// Python's string semantics over UTF-8 text, for prompt building that must give the strings
// lm-evaluation-harness gives: lengths and slices count code points, strip() strips what
// str.isspace() calls white space, case changes use Unicode simple case mappings (Python uses
// full mappings: 'ß'.upper() is 'SS' there and 'ß' here, which no benchmark prompt exercises).
// Also: Python `re` (through PCRE2 in UTF + Unicode-properties mode: \s \d \w are Unicode, as in
// Python 3 str patterns), and the text preprocessors of lm-eval tasks.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qs::eval {

std::u32string to_u32(std::string_view utf8);  // input must be valid UTF-8
std::string to_utf8(std::u32string_view text);
size_t code_point_count(std::string_view utf8);  // Python len(str)

bool py_isspace(char32_t c);
std::string py_strip(std::string_view s, std::optional<std::string_view> chars = std::nullopt);
std::string py_lstrip(std::string_view s, std::optional<std::string_view> chars = std::nullopt);
std::string py_rstrip(std::string_view s, std::optional<std::string_view> chars = std::nullopt);
std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
std::string py_capitalize(std::string_view s);  // first character title-cased, the rest lower-cased
std::string py_title(std::string_view s);
// str.split(): on runs of white space, no empty parts; str.split(sep, maxsplit): on `sep`.
std::vector<std::string> py_split(std::string_view s, std::optional<std::string_view> sep = std::nullopt,
                                  int maxsplit = -1);
std::string py_replace(std::string_view s, std::string_view from, std::string_view to);

// A compiled Python-style regular expression.
class PyRegex {
 public:
  struct Match {
    std::pair<size_t, size_t> span;                                // byte offsets of the whole match
    std::vector<std::optional<std::pair<size_t, size_t>>> groups;  // 1..n (index 0 unused)
  };
  // `where` names the file and field for the error of a pattern that does not compile.
  static std::shared_ptr<const PyRegex> compile(std::string_view pattern, const std::string& where);
  ~PyRegex();
  PyRegex(const PyRegex&) = delete;
  PyRegex& operator=(const PyRegex&) = delete;

  int group_count() const { return groups_; }
  std::optional<Match> search(std::string_view text, size_t start = 0) const;  // re.search
  std::vector<Match> find_all(std::string_view text) const;                      // re.finditer
  // re.sub(pattern, repl, text) with \1 .. \99, \g<n> and \\ escapes in `repl`.
  std::string sub(std::string_view text, std::string_view repl) const;
  // re.findall: per match, the group strings ("" for a group that did not take part), or the
  // whole match when the pattern has no groups.
  std::vector<std::vector<std::string>> findall(std::string_view text) const;

 private:
  PyRegex() = default;
  std::optional<Match> match_at(std::string_view text, size_t start, bool not_empty_at_start) const;
  void* code_ = nullptr;  // pcre2_code_8
  int groups_ = 0;
};

// lm-eval hellaswag `preprocess`: strip, " [title]" -> ". ", drop [...] bracket artifacts,
// "  " -> " ".
std::string hellaswag_preprocess(std::string_view text);
// lm-eval `wikitext_detokenizer` (tasks/wikitext/preprocess_wikitext.py), replacement by
// replacement.
std::string wikitext_detokenize(std::string_view text);
// For HellaSwag's text export, whose contexts are "activity: ctx_a ctx_b" without the split:
// capitalizes (Python str.capitalize) the part after the last ". " when it starts with a
// lower-case letter, approximating lm-eval's ctx_b.capitalize(). Exact only with the HF data.
std::string capitalize_last_sentence(std::string_view text);
// WikiText-2 raw file -> documents, as EleutherAI/wikitext_document_level splits it (a line
// " = Title = " at heading level 1 starts a new page).
std::vector<std::string> wikitext_documents(std::string_view raw);
// Number of parts of Python's re.split(r"\s+", text) (lm-eval's word count for wikitext).
size_t python_word_split_count(std::string_view text);

}  // namespace qs::eval
