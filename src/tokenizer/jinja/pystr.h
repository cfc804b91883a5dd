// Python 3 `str` semantics on UTF-8 text (internal to the chat-template engine).
//
// Jinja2 runs on Python strings: lengths, indices and slices count code points, `strip()`
// and `split()` use Python's whitespace (str.isspace), case mapping is Unicode's full
// mapping, and printing a list shows Python's repr of its strings. These helpers reproduce
// CPython 3.11 on valid UTF-8 (the engine accepts nothing else); Unicode properties come from
// ICU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qs::jinja::py {

// --- Code points ---
std::u32string decode(std::string_view s);  // valid UTF-8 -> code points
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
size_t length(std::string_view s);  // number of code points
// Byte offset of code point `index` (0 <= index <= length(s)).
size_t byte_offset(std::string_view s, size_t index);

// --- Character classes (CPython's definitions) ---
bool is_space(char32_t c);      // str.isspace: Python's whitespace, also regex \s
bool is_printable(char32_t c);  // str.isprintable
bool is_cased(char32_t c);
bool is_line_break(char32_t c);  // what str.splitlines() splits on

// --- Methods of str ---
// strip/lstrip/rstrip: chars == nullopt strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// split(sep=None, maxsplit=-1) and rsplit. sep must not be empty (the caller checks).
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
std::string swapcase(std::string_view s);
// find/rfind/count return code point indices (-1: not found).
int64_t find(std::string_view s, std::string_view sub);
int64_t rfind(std::string_view s, std::string_view sub);
int64_t count(std::string_view s, std::string_view sub);
enum class CharTest { kDigit, kDecimal, kNumeric, kAlpha, kAlnum, kSpace, kLower, kUpper };
bool test_chars(std::string_view s, CharTest test);  // str.isdigit() and friends

// --- Formatting ---
void append_repr(std::string& out, std::string_view s);  // repr(str)
// json.dumps of a string; ensure_ascii escapes everything outside ASCII as \uXXXX.
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii);
std::string float_repr(double d);  // repr(float): shortest round-trip, Python's layout

}  // namespace qs::jinja::py
