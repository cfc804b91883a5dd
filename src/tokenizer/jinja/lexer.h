// Jinja2 lexer with the settings transformers uses (internal to the chat-template engine).
//
// Follows jinja2/lexer.py 3.1: newlines are normalized to "\n" and one trailing newline is
// dropped (keep_trailing_newline=False); `{%- ` / ` -%}` strip all whitespace before / after a
// tag; trim_blocks drops the first newline after a block or comment tag; lstrip_blocks drops
// spaces and tabs from the start of a line up to a block or comment tag (`{%+` keeps them);
// `{% raw %}...{% endraw %}` is data; comments vanish. String literals are unescaped as Python's
// unicode-escape codec does. Errors are TemplateError with the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qs::jinja {

enum class Tok : uint8_t {
  kData,
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,  // text holds it: "==", "(", "|", ...
  kEof,
};

struct Token {
  Tok type;
  uint32_t pos;      // byte offset in the normalized source
  std::string text;  // data, name, unescaped string, operator
  int64_t integer = 0;
  double number = 0;
};

// "\r\n" and "\r" become "\n"; one trailing newline is removed (what Jinja2 lexes).
std::string normalize_newlines(std::string_view source);

// Tokens of a normalized source, ending with kEof.
std::vector<Token> tokenize(std::string_view source);

}  // namespace qs::jinja
