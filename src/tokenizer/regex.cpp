#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace qs::tok {

namespace {

// JavaScript's \s as the body of a character class.
constexpr std::string_view kJsSpace =
    "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";
constexpr std::string_view kJsDigit = "0-9";
constexpr std::string_view kJsWord = "A-Za-z0-9_";

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Per-thread PCRE2 match state: match data and a JIT stack large enough for long whitespace
// runs, created once per thread instead of once per match.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (!data || !context || !jit_stack) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};
MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? cat("PCRE2 error ", code) : std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

// Calls fn(begin, end) for every match, empty ones included, as JavaScript's matchAll does.
template <class F>
void scan(const pcre2_code* code, std::string_view text, F&& fn) {
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    // The subject is valid UTF-8 (the tokenizer sanitizes its input), so PCRE2 need not re-check
    // the whole remaining text on every call (which would make splitting quadratic).
    int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("tokenizer regex: matching failed: ", pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t begin = ov[0], end = ov[1];
    fn(begin, end);
    if (end > begin) {
      pos = end;
    } else {
      if (begin >= text.size()) break;
      pos = begin + utf8_char_length(static_cast<unsigned char>(text[begin]));
    }
  }
}

}  // namespace

std::string translate_pattern(std::string_view p, const std::string& where) {
  auto unsupported = [&](const std::string& what) {
    fail(where, ": regex ", qs::quote(p), ": ", what, " is not supported");
  };
  std::string out;
  out.reserve(p.size() * 2);
  bool in_class = false;
  int depth = 0;
  std::vector<int> caseless_depths;  // group depths of open (?i: groups
  size_t i = 0;
  auto copy_char = [&] {
    size_t len = utf8_char_length(static_cast<unsigned char>(p[i]));
    out.append(p.substr(i, len));
    i += len;
  };
  while (i < p.size()) {
    char c = p[i];
    bool caseless = !caseless_depths.empty();
    if (c == '\\') {
      if (i + 1 >= p.size()) fail(where, ": regex ", qs::quote(p), ": ends with a lone backslash");
      char n = p[i + 1];
      auto shorthand = [&](std::string_view body, bool negated) {
        if (in_class) {
          if (negated) unsupported(cat("\\", n, " inside a character class"));
          out += body;
        } else {
          out += negated ? "[^" : "[";
          out += body;
          out += ']';
        }
        i += 2;
      };
      switch (n) {
        case 's': shorthand(kJsSpace, false); continue;
        case 'S': shorthand(kJsSpace, true); continue;
        case 'd': shorthand(kJsDigit, false); continue;
        case 'D': shorthand(kJsDigit, true); continue;
        case 'w': shorthand(kJsWord, false); continue;
        case 'W': shorthand(kJsWord, true); continue;
        case 'v': out += "\\x{0B}"; i += 2; continue;  // PCRE2's \v is a class, JavaScript's is VT
        case 'u': {
          size_t hex_begin, hex_end, next;
          if (i + 2 < p.size() && p[i + 2] == '{') {
            hex_begin = i + 3;
            hex_end = p.find('}', hex_begin);
            if (hex_end == std::string_view::npos) unsupported("an unterminated \\u{...}");
            next = hex_end + 1;
          } else {
            hex_begin = i + 2;
            hex_end = hex_begin + 4;
            next = hex_end;
          }
          if (hex_end > p.size() || hex_end == hex_begin) unsupported("a malformed \\u escape");
          for (size_t k = hex_begin; k < hex_end; ++k)
            if (!is_hex(p[k])) unsupported("a malformed \\u escape");
          out += "\\x{";
          out += p.substr(hex_begin, hex_end - hex_begin);
          out += '}';
          i = next;
          continue;
        }
        case 'p':
        case 'P': {
          out += '\\';
          out += n;
          i += 2;
          if (i < p.size() && p[i] == '{') {
            size_t close = p.find('}', i);
            if (close == std::string_view::npos) unsupported("an unterminated \\p{...}");
            out += p.substr(i, close + 1 - i);
            i = close + 1;
          } else if (i < p.size()) {
            copy_char();
          }
          continue;
        }
        default:
          // JavaScript (u flag) knows no other letter escapes; PCRE2 gives many of them meanings
          // (\K \G \A \z \h \R ...), so refuse rather than change what the pattern means.
          if (is_ascii_letter(n) && std::string_view("bBcfnrtxk").find(n) == std::string_view::npos)
            unsupported(cat("the escape \\", n));
          out += '\\';
          ++i;
          copy_char();
          continue;
      }
    }
    if (in_class) {
      if (c == ']') in_class = false;
      else if (caseless && is_ascii_letter(c)) unsupported("a letter in a character class inside (?i:...)");
      copy_char();
      continue;
    }
    switch (c) {
      case '[':
        // JavaScript: "[]" matches nothing and "[^]" matches any character.
        if (p.substr(i, 2) == "[]") {
          out += "(?!)";
          i += 2;
        } else if (p.substr(i, 3) == "[^]") {
          out += "(?s:.)";
          i += 3;
        } else {
          in_class = true;
          out += '[';
          ++i;
          if (i < p.size() && p[i] == '^') {
            out += '^';
            ++i;
          }
        }
        continue;
      case '(':
        if (p.substr(i, 4) == "(?i:") {
          caseless_depths.push_back(++depth);
          out += "(?:";
          i += 4;
          continue;
        }
        if (p.substr(i, 2) == "(?") {
          char k = i + 2 < p.size() ? p[i + 2] : '\0';
          char k2 = i + 3 < p.size() ? p[i + 3] : '\0';
          bool ok = k == ':' || k == '=' || k == '!' || (k == '<' && (k2 == '=' || k2 == '!' || is_ascii_letter(k2)));
          if (!ok) unsupported(cat("the group ", qs::quote(p.substr(i, 3))));
        }
        ++depth;
        out += '(';
        ++i;
        continue;
      case ')':
        if (!caseless_depths.empty() && caseless_depths.back() == depth) caseless_depths.pop_back();
        --depth;
        out += ')';
        ++i;
        continue;
      case '.':
        out += "[^\\n\\r\\x{2028}\\x{2029}]";
        ++i;
        continue;
      default:
        if (caseless && is_ascii_letter(c)) {
          char lower = static_cast<char>(c | 0x20), upper = static_cast<char>(c & ~0x20);
          out += '[';
          out += lower;
          out += upper;
          out += ']';
          ++i;
        } else {
          copy_char();
        }
    }
  }
  return out;
}

std::shared_ptr<const Regex> Regex::compile(std::string_view pattern, const std::string& where) {
  require(is_valid_utf8(pattern), where, ": regex is not valid UTF-8");
  std::string translated = translate_pattern(pattern, where);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &error_code,
                                   &error_offset, nullptr);
  if (!code)
    fail(where, ": regex ", qs::quote(pattern), " does not compile: ", pcre2_message(error_code), " (at offset ",
         error_offset, " of the translated pattern)");
  // JIT makes splitting several times faster; without it (unsupported CPU) the interpreter runs.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  std::shared_ptr<Regex> re(new Regex());
  re->code_ = code;
  re->translated_ = std::move(translated);
  return re;
}

std::shared_ptr<const Regex> Regex::literal(std::string_view text, const std::string& where) {
  std::string escaped;
  for (char c : text) {
    bool plain = static_cast<unsigned char>(c) >= 0x80 || (c >= '0' && c <= '9') || is_ascii_letter(c) || c == ' ';
    if (!plain) escaped += '\\';
    escaped += c;
  }
  return compile(escaped, where);
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  scan(static_cast<const pcre2_code*>(code_), text, [&](size_t b, size_t e) {
    if (e > b) out.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
  });
}

std::string Regex::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  size_t last = 0;
  scan(static_cast<const pcre2_code*>(code_), text, [&](size_t b, size_t e) {
    out.append(text.substr(last, b - last));
    out.append(content);
    last = e;
  });
  out.append(text.substr(last));
  return out;
}

}  // namespace qs::tok
