// Internal helpers of the fidelity module: the bits of Python string semantics that the
// reference tools (rouge-score, sacreBLEU) rely on, over UTF-8 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qs::fidelity::detail {

// Decodes the code point at s[i]; invalid or truncated sequences decode as U+FFFD of length 1.
struct CodePoint {
  char32_t cp;
  size_t len;
};
CodePoint decode_utf8(std::string_view s, size_t i);
std::u32string to_code_points(std::string_view s);

// Python's str.isspace(): \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_python_space(char32_t cp);
// str.split() with no separator: runs of whitespace separate, no empty fields.
std::vector<std::string_view> python_split(std::string_view s);
// str.rstrip() with no argument.
std::string_view python_rstrip(std::string_view s);

// n-grams of consecutive tokens, joined with a separator that no token contains.
std::string join_ngram(const std::vector<std::string_view>& tokens, size_t begin, int n, char sep);

}  // namespace qs::fidelity::detail
