#include "tokenizer/jinja/lexer.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/jinja/pystr.h"
#include "tokenizer/jinja/value.h"
#include "tokenizer/unicode.h"

namespace qs::jinja {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char c) { return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

// Length of the Python whitespace character at s[i], 0 if none.
size_t space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  tok::Utf8Step st = tok::utf8_step(s.data() + i, s.size() - i);
  return st.kind == tok::Utf8Kind::kValid && py::is_space(st.cp) ? st.length : 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (size_t n = space_at(s, i)) i += n;
  return i;
}

// Python's str.rstrip() (the `-` whitespace control).
std::string_view rstrip_spaces(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (space_at(s, start) != end - start) break;
    end = start;
  }
  return s.substr(0, end);
}

// \s+ matches the whole of s (lstrip_blocks' test).
bool all_spaces(std::string_view s) { return !s.empty() && skip_spaces(s, 0) == s.size(); }

// (\d+_)*\d+ at i: returns the end, or i when there is no digit.
size_t scan_digits(std::string_view s, size_t i) {
  if (i >= s.size() || !is_digit(s[i])) return i;
  while (i < s.size() && is_digit(s[i])) ++i;
  while (i + 1 < s.size() && s[i] == '_' && is_digit(s[i + 1])) {
    i += 2;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  return i;
}

// Jinja2's float_re at i; returns the end or i.
size_t scan_float(std::string_view s, size_t i) {
  if (i > 0 && s[i - 1] == '.') return i;
  size_t int_end = scan_digits(s, i);
  if (int_end == i) return i;
  auto exponent = [&](size_t at) -> size_t {
    if (at >= s.size() || (s[at] != 'e' && s[at] != 'E')) return at;
    size_t k = at + 1;
    if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
    size_t end = scan_digits(s, k);
    return end == k ? at : end;
  };
  size_t frac_end = int_end;
  if (int_end < s.size() && s[int_end] == '.') {
    size_t e = scan_digits(s, int_end + 1);
    if (e > int_end + 1) frac_end = e;
  }
  size_t with_exp = exponent(frac_end);
  if (with_exp > frac_end) return with_exp;
  if (frac_end > int_end) return frac_end;
  size_t bare_exp = exponent(int_end);
  return bare_exp > int_end ? bare_exp : i;
}

// Jinja2's integer_re at i (alternatives in order, as the regex tries them).
size_t scan_integer(std::string_view s, size_t i) {
  auto prefixed = [&](char letter, auto digit_ok) -> size_t {
    if (i + 1 >= s.size() || s[i] != '0' || (s[i + 1] | 0x20) != letter) return i;
    size_t k = i + 2, end = i;
    while (k < s.size()) {
      size_t d = k < s.size() && s[k] == '_' ? k + 1 : k;
      if (d >= s.size() || !digit_ok(s[d])) break;
      k = end = d + 1;
    }
    return end;
  };
  size_t e = prefixed('b', [](char c) { return c == '0' || c == '1'; });
  if (e == i) e = prefixed('o', [](char c) { return c >= '0' && c <= '7'; });
  if (e == i) e = prefixed('x', is_hex);
  if (e != i) return e;
  if (i < s.size() && s[i] >= '1' && s[i] <= '9') {
    size_t k = i + 1;
    for (;;) {
      size_t d = k < s.size() && s[k] == '_' ? k + 1 : k;
      if (d >= s.size() || !is_digit(s[d])) break;
      k = d + 1;
    }
    return k;
  }
  if (i < s.size() && s[i] == '0') {
    size_t k = i + 1;
    for (;;) {
      size_t d = k < s.size() && s[k] == '_' ? k + 1 : k;
      if (d >= s.size() || s[d] != '0') break;
      k = d + 1;
    }
    return k;
  }
  return i;
}

int64_t integer_value(std::string_view text, uint32_t pos) {
  std::string clean;
  for (char c : text)
    if (c != '_') clean += c;
  int base = 10;
  size_t start = 0;
  if (clean.size() > 1 && clean[0] == '0' && clean[1] != '0') {
    char p = static_cast<char>(clean[1] | 0x20);
    base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
    start = 2;
  }
  uint64_t v = 0;
  auto res = std::from_chars(clean.data() + start, clean.data() + clean.size(), v, base);
  if (res.ec != std::errc() || v > static_cast<uint64_t>(INT64_MAX))
    throw_error(cat("integer literal ", quote(text), " is too large (64-bit integers only)"), pos);
  return static_cast<int64_t>(v);
}

double float_value(std::string_view text) {
  std::string clean;
  for (char c : text)
    if (c != '_') clean += c;
  double d = 0;
  auto res = std::from_chars(clean.data(), clean.data() + clean.size(), d);
  if (res.ec == std::errc::result_out_of_range) {
    // Python's float() gives inf for a huge literal and 0.0 for a tiny one.
    size_t e = clean.find_first_of("eE");
    d = e != std::string::npos && e + 1 < clean.size() && clean[e + 1] == '-' ? 0.0 : HUGE_VAL;
  }
  return d;
}

// Python's unicode-escape decoding of a string literal's body (after backslashreplace).
std::string unescape(std::string_view body, uint32_t pos) {
  std::string out;
  out.reserve(body.size());
  auto hex_escape = [&](size_t& i, int digits, char kind) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      if (i >= body.size() || !is_hex(body[i]))
        throw_error(cat("truncated \\", kind, " escape in a string literal"), pos);
      v = v * 16 + static_cast<uint32_t>(hex_value(body[i++]));
    }
    if (v > 0x10FFFF) throw_error("illegal Unicode character in a string literal", pos);
    if (v >= 0xD800 && v <= 0xDFFF) throw_error("a surrogate escape in a string literal is not supported", pos);
    py::append_utf8(out, v);
  };
  for (size_t i = 0; i < body.size();) {
    char c = body[i];
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    char d = body[i + 1];  // a literal never ends with a lone backslash
    i += 2;
    if (static_cast<unsigned char>(d) >= 0x80) {
      // backslashreplace turned the character into its escape, and "\\" kept it literal.
      size_t start = i - 1;
      tok::Utf8Step st = tok::utf8_step(body.data() + start, body.size() - start);
      char buf[16];
      std::snprintf(buf, sizeof(buf), st.cp <= 0xFF ? "\\x%02x" : st.cp <= 0xFFFF ? "\\u%04x" : "\\U%08x",
                    static_cast<unsigned>(st.cp));
      out += buf;
      i = start + st.length;
      continue;
    }
    switch (d) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': hex_escape(i, 2, 'x'); break;
      case 'u': hex_escape(i, 4, 'u'); break;
      case 'U': hex_escape(i, 8, 'U'); break;
      case 'N': throw_error("\\N{...} escapes in string literals are not supported", pos);
      default:
        if (d >= '0' && d <= '7') {
          uint32_t v = static_cast<uint32_t>(d - '0');
          for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k)
            v = v * 8 + static_cast<uint32_t>(body[i++] - '0');
          py::append_utf8(out, v);
        } else {
          out += '\\';
          out += d;
        }
    }
  }
  return out;
}

constexpr std::string_view kTwoCharOps[] = {"//", "**", "==", "!=", ">=", "<="};
constexpr std::string_view kOneCharOps = "+-/*%~[](){}><=.:|,;";

class Lexer {
 public:
  explicit Lexer(std::string_view src) : s_(src) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string_view::npos) {
        data(s_.substr(pos_), static_cast<uint32_t>(pos_));
        break;
      }
      root_tag(tag);
    }
    out_.push_back(Token{Tok::kEof, static_cast<uint32_t>(s_.size()), {}});
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string_view::npos; i = s_.find('{', i + 1)) {
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void data(std::string_view text, uint32_t pos) {
    if (!text.empty()) out_.push_back(Token{Tok::kData, pos, std::string(text)});
  }

  // Text before a tag, with `-` / lstrip_blocks applied (jinja2's OptionalLStrip).
  void text_before_tag(std::string_view text, uint32_t pos, char sign, bool is_variable) {
    if (sign == '-') {
      text = rstrip_spaces(text);
    } else if (sign != '+' && !is_variable) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_spaces(text.substr(l_pos))) text = text.substr(0, l_pos);
    }
    data(text, pos);
  }

  // `{% raw %}` at i (after "{%" and the sign): returns the end of the tag or npos.
  size_t raw_begin_end(size_t i) const {
    i = skip_spaces(s_, i);
    if (s_.compare(i, 3, "raw") != 0) return std::string_view::npos;
    i = skip_spaces(s_, i + 3);
    if (s_.compare(i, 3, "-%}") == 0) return skip_spaces(s_, i + 3);
    if (s_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string_view::npos;
  }

  void root_tag(size_t tag) {
    char kind = s_[tag + 1];
    size_t after = tag + 2;
    char sign = after < s_.size() && (s_[after] == '-' || s_[after] == '+') ? s_[after++] : 0;
    size_t raw_end = kind == '%' ? raw_begin_end(after) : std::string_view::npos;
    text_before_tag(s_.substr(pos_, tag - pos_), static_cast<uint32_t>(pos_), sign, kind == '{');
    if (kind == '#') return comment(tag, after);
    if (raw_end != std::string_view::npos) {
      line_starting_ = s_[raw_end - 1] == '\n';
      return raw(tag, raw_end);
    }
    out_.push_back(Token{kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, static_cast<uint32_t>(tag), {}});
    tag_body(tag, after, kind == '%');
  }

  void comment(size_t tag, size_t i) {
    // Jinja2's lexer stops without an error when a comment opens at the very end.
    if (i == s_.size()) return finish(i);
    for (; i < s_.size(); ++i) {
      if (s_.compare(i, 3, "+#}") == 0) return finish(i + 3);
      if (s_.compare(i, 3, "-#}") == 0) return finish(skip_spaces(s_, i + 3));
      if (s_.compare(i, 2, "#}") == 0) return finish(i + 2 < s_.size() && s_[i + 2] == '\n' ? i + 3 : i + 2);
    }
    throw_error("missing end of comment tag '#}'", static_cast<uint32_t>(tag));
  }

  void raw(size_t tag, size_t body) {
    if (body == s_.size()) return finish(body);  // as for a comment: nothing left to lex
    for (size_t i = s_.find("{%", body); i != std::string_view::npos; i = s_.find("{%", i + 1)) {
      size_t k = i + 2;
      char sign = k < s_.size() && (s_[k] == '-' || s_[k] == '+') ? s_[k++] : 0;
      k = skip_spaces(s_, k);
      if (s_.compare(k, 6, "endraw") != 0) continue;
      k = skip_spaces(s_, k + 6);
      size_t end;
      if (s_.compare(k, 3, "+%}") == 0) end = k + 3;
      else if (s_.compare(k, 3, "-%}") == 0) end = skip_spaces(s_, k + 3);
      else if (s_.compare(k, 2, "%}") == 0) end = k + 2 < s_.size() && s_[k + 2] == '\n' ? k + 3 : k + 2;
      else continue;
      text_before_tag(s_.substr(body, i - body), static_cast<uint32_t>(body), sign, false);
      return finish(end);
    }
    throw_error("missing end of raw directive ('{% endraw %}')", static_cast<uint32_t>(tag));
  }

  void finish(size_t end) {
    line_starting_ = end > 0 && s_[end - 1] == '\n';
    pos_ = end;
  }

  void tag_body(size_t tag, size_t i, bool block) {
    std::vector<char> balance;
    for (;;) {
      if (i >= s_.size())
        throw_error(cat("unexpected end of template: '", block ? "{%" : "{{", "' is never closed"),
                    static_cast<uint32_t>(tag));
      if (balance.empty()) {
        if (block) {
          if (s_.compare(i, 3, "+%}") == 0) return end_tag(Tok::kBlockEnd, i, i + 3);
          if (s_.compare(i, 3, "-%}") == 0) return end_tag(Tok::kBlockEnd, i, skip_spaces(s_, i + 3));
          if (s_.compare(i, 2, "%}") == 0)
            return end_tag(Tok::kBlockEnd, i, i + 2 < s_.size() && s_[i + 2] == '\n' ? i + 3 : i + 2);
        } else {
          if (s_.compare(i, 3, "-}}") == 0) return end_tag(Tok::kVarEnd, i, skip_spaces(s_, i + 3));
          if (s_.compare(i, 2, "}}") == 0) return end_tag(Tok::kVarEnd, i, i + 2);
        }
      }
      auto pos = static_cast<uint32_t>(i);
      char c = s_[i];
      if (size_t n = space_at(s_, i)) {
        i = skip_spaces(s_, i + n);
      } else if (size_t e = scan_float(s_, i); e != i) {
        Token t{Tok::kFloat, pos, std::string(s_.substr(i, e - i))};
        t.number = float_value(t.text);
        out_.push_back(std::move(t));
        i = e;
      } else if (size_t e2 = scan_integer(s_, i); e2 != i) {
        Token t{Tok::kInteger, pos, std::string(s_.substr(i, e2 - i))};
        t.integer = integer_value(t.text, pos);
        out_.push_back(std::move(t));
        i = e2;
      } else if (is_name_start(c)) {
        size_t e3 = i + 1;
        while (e3 < s_.size() && is_name_char(s_[e3])) ++e3;
        if (e3 < s_.size() && static_cast<unsigned char>(s_[e3]) >= 0x80)
          throw_error("identifiers with non-ASCII characters are not supported", pos);
        out_.push_back(Token{Tok::kName, pos, std::string(s_.substr(i, e3 - i))});
        i = e3;
      } else if (c == '\'' || c == '"') {
        size_t k = i + 1;
        while (k < s_.size() && s_[k] != c) k += s_[k] == '\\' ? 2 : 1;
        if (k >= s_.size()) throw_error("unterminated string literal", pos);
        out_.push_back(Token{Tok::kString, pos, unescape(s_.substr(i + 1, k - i - 1), pos)});
        i = k + 1;
      } else {
        std::string_view op;
        for (std::string_view two : kTwoCharOps)
          if (s_.compare(i, 2, two) == 0) op = two;
        if (op.empty() && kOneCharOps.find(c) != std::string_view::npos) op = s_.substr(i, 1);
        if (op.empty()) {
          tok::Utf8Step st = tok::utf8_step(s_.data() + i, s_.size() - i);
          throw_error(cat("unexpected character ", quote(s_.substr(i, st.length)), " in a tag"), pos);
        }
        if (op == "{" || op == "(" || op == "[") {
          balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
        } else if (op == "}" || op == ")" || op == "]") {
          if (balance.empty()) throw_error(cat("unexpected '", op, "'"), pos);
          if (balance.back() != op[0]) throw_error(cat("unexpected '", op, "', expected '", balance.back(), "'"), pos);
          balance.pop_back();
        }
        out_.push_back(Token{Tok::kOperator, pos, std::string(op)});
        i += op.size();
      }
    }
  }

  void end_tag(Tok type, size_t at, size_t end) {
    out_.push_back(Token{type, static_cast<uint32_t>(at), {}});
    finish(end);
  }

  std::string_view s_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;
};

}  // namespace

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace qs::jinja
