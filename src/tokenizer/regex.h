// Regular expressions of tokenizer.json files, run by PCRE2 (JIT-compiled, UTF-8).
//
// The patterns in tokenizer.json are written for Oniguruma (HF tokenizers) and run by
// transformers.js as JavaScript regexes with the `u` flag. We follow the JavaScript meaning,
// which is what the reference implementation computes:
//   \s \S     JavaScript white space (includes U+FEFF, excludes U+0085)
//   \d \w     ASCII only ([0-9], [A-Za-z0-9_]); \b is ASCII-based too
//   .         any character but \n \r U+2028 U+2029
//   (?i:...)  ASCII case-insensitive (transformers.js rewrites the GPT-4-style contraction group
//             to explicit [sS] alternatives, so 'ſ' does not match 's')
//   \p{L} \p{N} ...  Unicode general categories, as in both engines.
// Constructs whose meaning we cannot reproduce exactly (inline flags other than (?i:, letters
// in a character class inside (?i:, negated shorthands inside a class) are refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qs::tok {

struct Span {
  uint32_t begin;
  uint32_t end;
};

class Regex {
 public:
  // `where` names the file and field for error messages.
  static std::shared_ptr<const Regex> compile(std::string_view pattern, const std::string& where);
  // A regex that matches the literal text.
  static std::shared_ptr<const Regex> literal(std::string_view text, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the non-empty matches in `text` (valid UTF-8), left to right, as JavaScript's
  // String.prototype.matchAll finds them (an empty match advances one character).
  void find_all(std::string_view text, std::vector<Span>& out) const;
  // JavaScript's text.replaceAll(regex, content) with `content` taken literally.
  std::string replace_all(std::string_view text, std::string_view content) const;

  // The PCRE2 pattern the tokenizer.json pattern was translated to (for tests and messages).
  const std::string& translated() const { return translated_; }

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8
  std::string translated_;
};

// Translates a tokenizer.json (JavaScript-flavoured) pattern to PCRE2 syntax; throws qs::Error
// naming `where` for constructs that are refused.
std::string translate_pattern(std::string_view pattern, const std::string& where);

}  // namespace qs::tok
