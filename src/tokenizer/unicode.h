// UTF-8 and Unicode helpers for the tokenizers (internal to src/tokenizer).
// Invalid UTF-8 is replaced the way a WHATWG TextDecoder (and Python's errors="replace") does it:
// one U+FFFD per maximal ill-formed subpart, so text that reaches the tokenizer is what a
// JavaScript or Python reference would see for the same bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qs::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8Kind { kValid, kInvalid, kTruncated };
struct Utf8Step {
  size_t length;  // bytes consumed: the whole character, or the maximal ill-formed subpart (>= 1)
  Utf8Kind kind;  // kTruncated: the bytes are a valid prefix of a character cut by the end of input
  char32_t cp;    // the code point when kind == kValid
};
// Decodes the character starting at p (n >= 1 bytes available).
Utf8Step utf8_step(const char* p, size_t n);

// The text with each ill-formed subpart replaced by U+FFFD (a copy only when needed).
bool is_valid_utf8(std::string_view s);
std::string to_valid_utf8(std::string_view s);
// Number of bytes at the end of s that start a character but do not finish it (0..3).
size_t incomplete_utf8_tail(std::string_view s);

void append_utf8(std::string& out, char32_t cp);
// Length of the UTF-8 character whose lead byte is c (1 for anything that is not a lead byte).
inline size_t utf8_char_length(unsigned char c) {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

// JavaScript's \s (and String.prototype.trim): WhiteSpace and LineTerminator code points.
bool is_js_whitespace(char32_t cp);
// trimStart / trimEnd with that definition, on valid UTF-8.
std::string_view trim_js_whitespace_start(std::string_view s);
std::string_view trim_js_whitespace_end(std::string_view s);

// GPT-2's reversible byte <-> printable character mapping used by byte-level BPE.
const std::array<std::string, 256>& byte_level_alphabet();
// The byte a byte-level character stands for, or -1 when cp is not in the alphabet.
int byte_level_byte(char32_t cp);
// Converts a byte-level string ("Ġhello") to its bytes (" hello"); false if a character is
// outside the alphabet.
bool byte_level_to_bytes(std::string_view s, std::string& out);

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };
// Unicode normalization with ICU; returns s unchanged (no copy) when it is already normalized.
std::string normalize_unicode(std::string_view s, UnicodeForm form);

}  // namespace qs::tok
