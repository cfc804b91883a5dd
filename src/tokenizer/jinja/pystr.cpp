#include "tokenizer/jinja/pystr.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "tokenizer/unicode.h"

namespace qs::jinja::py {

namespace {

char32_t next_cp(std::string_view s, size_t& i) {
  tok::Utf8Step st = tok::utf8_step(s.data() + i, s.size() - i);
  i += st.length;
  return st.kind == tok::Utf8Kind::kValid ? st.cp : 0xFFFD;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

enum class CaseOp { kUpper, kLower, kTitle };

// Full (one-to-many) case mapping of one code point, as CPython's *_ucs4 helpers do.
void append_case_mapped(std::string& out, char32_t c, CaseOp op) {
  if (c < 0x80) {
    char ch = static_cast<char>(c);
    if (op == CaseOp::kLower) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    else ch = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 32) : ch;
    out += ch;
    return;
  }
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, c);
  UChar dst[16];
  UErrorCode status = U_ZERO_ERROR;
  int32_t n = 0;
  switch (op) {
    case CaseOp::kUpper: n = u_strToUpper(dst, 16, src, src_len, "", &status); break;
    case CaseOp::kLower: n = u_strToLower(dst, 16, src, src_len, "", &status); break;
    case CaseOp::kTitle:
      n = u_strToTitle(dst, 16, src, src_len, nullptr, "", &status);
      break;
  }
  if (U_FAILURE(status) || n > 16) {
    append_utf8(out, c);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT(dst, i, n, cp);
    append_utf8(out, static_cast<char32_t>(cp));
  }
}

// CPython's handle_capital_sigma: U+03A3 lowers to final sigma after a cased letter (skipping
// case-ignorables) unless a cased letter follows.
char32_t lower_sigma(const std::u32string& s, size_t i) {
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = s[--j];
    if (!u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE)) {
      found = true;
      break;
    }
  }
  bool final_sigma = found && is_cased(c);
  if (final_sigma && i + 1 < s.size()) {
    size_t k = i + 1;
    for (; k < s.size(); ++k)
      if (!u_hasBinaryProperty(static_cast<UChar32>(s[k]), UCHAR_CASE_IGNORABLE)) break;
    final_sigma = k == s.size() || !is_cased(s[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

void append_lower_at(std::string& out, const std::u32string& s, size_t i) {
  if (s[i] == 0x3A3) append_utf8(out, lower_sigma(s, i));
  else append_case_mapped(out, s[i], CaseOp::kLower);
}

bool is_lower_cp(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_LOWERCASE); }
bool is_upper_cp(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_UPPERCASE); }

bool in_set(const std::u32string& set, char32_t c) { return set.find(c) != std::u32string::npos; }

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out += next_cp(s, i);
  return out;
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

void append_utf8(std::string& out, char32_t cp) { tok::append_utf8(out, cp); }

size_t length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

size_t byte_offset(std::string_view s, size_t index) {
  size_t i = 0;
  while (index > 0 && i < s.size()) {
    i += tok::utf8_char_length(static_cast<unsigned char>(s[i]));
    --index;
  }
  return std::min(i, s.size());
}

bool is_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_printable(char32_t c) {
  if (c < 0x80) return c >= 0x20 && c < 0x7F;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

bool is_cased(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED);
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? in_set(set, c) : is_space(c); };
  size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end) {
      size_t i = begin;
      if (!strippable(next_cp(s, i))) break;
      begin = i;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t i = start;
      if (!strippable(next_cp(s, i))) break;
      end = start;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  uint64_t budget = maxsplit < 0 ? UINT64_MAX : static_cast<uint64_t>(maxsplit);
  if (sep) {
    size_t start = 0;
    while (budget > 0) {
      size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
      --budget;
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  size_t i = 0;
  auto space_at = [&](size_t pos, size_t& next) {
    next = pos;
    return is_space(next_cp(s, next));
  };
  size_t next;
  while (budget-- > 0) {
    while (i < s.size() && space_at(i, next)) i = next;
    if (i == s.size()) break;
    size_t j = i;
    while (i < s.size() && !space_at(i, next)) i = next;
    out.emplace_back(s.substr(j, i - j));
  }
  if (i < s.size()) {
    while (i < s.size() && space_at(i, next)) i = next;
    if (i < s.size()) out.emplace_back(s.substr(i));
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  uint64_t budget = maxsplit < 0 ? UINT64_MAX : static_cast<uint64_t>(maxsplit);
  if (sep) {
    size_t end = s.size();
    while (budget > 0 && end >= sep->size()) {
      size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
      --budget;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  std::u32string cps = decode(s);
  int64_t i = static_cast<int64_t>(cps.size()) - 1;
  while (budget-- > 0) {
    while (i >= 0 && is_space(cps[static_cast<size_t>(i)])) --i;
    if (i < 0) break;
    int64_t j = i;
    while (i >= 0 && !is_space(cps[static_cast<size_t>(i)])) --i;
    out.push_back(encode(std::u32string_view(cps).substr(static_cast<size_t>(i + 1), static_cast<size_t>(j - i))));
  }
  if (i >= 0) {
    while (i >= 0 && is_space(cps[static_cast<size_t>(i)])) --i;
    if (i >= 0) out.push_back(encode(std::u32string_view(cps).substr(0, static_cast<size_t>(i + 1))));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t at = i;
    char32_t c = next_cp(s, i);
    if (!is_line_break(c)) continue;
    size_t end_of_break = i;
    if (c == '\r' && i < s.size() && s[i] == '\n') end_of_break = ++i;
    out.emplace_back(s.substr(start, (keepends ? end_of_break : at) - start));
    start = i;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
  uint64_t budget = count < 0 ? UINT64_MAX : static_cast<uint64_t>(count);
  std::string out;
  if (old.empty()) {
    // Python inserts `with` before every character and at the end.
    size_t i = 0;
    while (i < s.size()) {
      if (budget == 0) break;
      out.append(with);
      --budget;
      size_t start = i;
      next_cp(s, i);
      out.append(s.substr(start, i - start));
    }
    if (i < s.size()) out.append(s.substr(i));
    else if (budget > 0) out.append(with);
    return out;
  }
  size_t start = 0;
  while (budget > 0) {
    size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(with);
    start = at + old.size();
    --budget;
  }
  out.append(s.substr(start));
  return out;
}

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_case_mapped(out, next_cp(s, i), CaseOp::kUpper);
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  std::u32string cps = decode(s);
  for (size_t i = 0; i < cps.size(); ++i) append_lower_at(out, cps, i);
  return out;
}

std::string title(std::string_view s) {
  std::u32string cps = decode(s);
  std::string out;
  out.reserve(s.size());
  bool previous_is_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (previous_is_cased) append_lower_at(out, cps, i);
    else append_case_mapped(out, cps[i], CaseOp::kTitle);
    previous_is_cased = is_cased(cps[i]);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::u32string cps = decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0) append_case_mapped(out, cps[0], CaseOp::kTitle);
    else append_lower_at(out, cps, i);
  }
  return out;
}

std::string swapcase(std::string_view s) {
  std::u32string cps = decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    if (is_upper_cp(cps[i])) append_lower_at(out, cps, i);
    else if (is_lower_cp(cps[i])) append_case_mapped(out, cps[i], CaseOp::kUpper);
    else append_utf8(out, cps[i]);
  }
  return out;
}

int64_t find(std::string_view s, std::string_view sub) {
  size_t at = s.find(sub);
  return at == std::string_view::npos ? -1 : static_cast<int64_t>(length(s.substr(0, at)));
}

int64_t rfind(std::string_view s, std::string_view sub) {
  size_t at = s.rfind(sub);
  return at == std::string_view::npos ? -1 : static_cast<int64_t>(length(s.substr(0, at)));
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string_view::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

bool test_chars(std::string_view s, CharTest test) {
  if (s.empty()) return false;
  bool any_cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = next_cp(s, i);
    UChar32 u = static_cast<UChar32>(c);
    int nt = u_getIntPropertyValue(u, UCHAR_NUMERIC_TYPE);
    bool alpha = U_GET_GC_MASK(u) & U_GC_L_MASK;
    switch (test) {
      case CharTest::kDigit: if (nt != U_NT_DECIMAL && nt != U_NT_DIGIT) return false; break;
      case CharTest::kDecimal: if (nt != U_NT_DECIMAL) return false; break;
      case CharTest::kNumeric: if (nt == U_NT_NONE) return false; break;
      case CharTest::kAlpha: if (!alpha) return false; break;
      case CharTest::kAlnum: if (!alpha && nt == U_NT_NONE) return false; break;
      case CharTest::kSpace: if (!is_space(c)) return false; break;
      case CharTest::kLower:
        if (is_upper_cp(c) || u_istitle(u)) return false;
        any_cased |= is_lower_cp(c);
        break;
      case CharTest::kUpper:
        if (is_lower_cp(c) || u_istitle(u)) return false;
        any_cased |= is_upper_cp(c);
        break;
    }
  }
  return (test == CharTest::kLower || test == CharTest::kUpper) ? any_cased : true;
}

void append_repr(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  static const char* kHex = "0123456789abcdef";
  out += quote;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = next_cp(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (c < 0x7F || is_printable(c)) {
      out.append(s.substr(start, i - start));
    } else {
      int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
      out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
      for (int k = digits - 1; k >= 0; --k) out += kHex[(c >> (4 * k)) & 15];
    }
  }
  out += quote;
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  static const char* kHex = "0123456789abcdef";
  auto append_u = [&](unsigned v) {
    out += "\\u";
    for (int k = 3; k >= 0; --k) out += kHex[(v >> (4 * k)) & 15];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80) {
      size_t start = i;
      char32_t c = next_cp(s, i);
      if (!ensure_ascii) {
        out.append(s.substr(start, i - start));
      } else if (c >= 0x10000) {
        unsigned v = static_cast<unsigned>(c) - 0x10000;
        append_u(0xD800 + (v >> 10));
        append_u(0xDC00 + (v & 0x3FF));
      } else {
        append_u(static_cast<unsigned>(c));
      }
      continue;
    }
    ++i;
    switch (b) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (b < 0x20) append_u(b);
        else out += static_cast<char>(b);
    }
  }
  out += '"';
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "-d.ddde+XX"
  bool negative = sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  size_t e_at = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_at))
    if (c != '.') digits += c;
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_at + 1);
  std::from_chars(exp_text.data() + (exp_text[0] == '+' ? 1 : 0), exp_text.data() + exp_text.size(), exponent);
  int decpt = exponent + 1;  // the decimal point sits after `decpt` digits
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += e;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(decpt) - digits.size(), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out += '.';
    out.append(digits, static_cast<size_t>(decpt), std::string::npos);
  }
  return out;
}

}  // namespace qs::jinja::py
