#include "eval/text_ops.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/uchar.h>

#include <algorithm>

#include "core/error.h"

namespace qs::eval {

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    char32_t cp;
    int len;
    if (c < 0x80) cp = c, len = 1;
    else if ((c >> 5) == 0x6) cp = c & 0x1f, len = 2;
    else if ((c >> 4) == 0xe) cp = c & 0x0f, len = 3;
    else cp = c & 0x07, len = 4;
    for (int k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

size_t code_point_count(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

bool py_isspace(char32_t c) {
  // Python's str.isspace(): bidirectional class WS, B or S, or general category Zs.
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
    case 0x20: case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

namespace {

template <class Pred>
std::string strip_impl(std::string_view s, bool left, bool right, Pred&& strip_it) {
  std::u32string u = to_u32(s);
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_it(u[b])) ++b;
  if (right)
    while (e > b && strip_it(u[e - 1])) --e;
  return to_utf8(std::u32string_view(u).substr(b, e - b));
}

std::string strip_dispatch(std::string_view s, std::optional<std::string_view> chars, bool left, bool right) {
  if (!chars) return strip_impl(s, left, right, py_isspace);
  const std::u32string set = to_u32(*chars);
  return strip_impl(s, left, right, [&](char32_t c) { return set.find(c) != std::u32string::npos; });
}

template <class Fn>
std::string map_code_points(std::string_view s, Fn&& fn) {
  std::u32string u = to_u32(s);
  for (auto& c : u) c = fn(c);
  return to_utf8(u);
}

bool is_cased(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED); }

}  // namespace

std::string py_strip(std::string_view s, std::optional<std::string_view> chars) { return strip_dispatch(s, chars, true, true); }
std::string py_lstrip(std::string_view s, std::optional<std::string_view> chars) {
  return strip_dispatch(s, chars, true, false);
}
std::string py_rstrip(std::string_view s, std::optional<std::string_view> chars) {
  return strip_dispatch(s, chars, false, true);
}

std::string py_lower(std::string_view s) {
  return map_code_points(s, [](char32_t c) { return static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))); });
}
std::string py_upper(std::string_view s) {
  return map_code_points(s, [](char32_t c) { return static_cast<char32_t>(u_toupper(static_cast<UChar32>(c))); });
}

std::string py_capitalize(std::string_view s) {
  std::u32string u = to_u32(s);
  for (size_t i = 0; i < u.size(); ++i)
    u[i] = static_cast<char32_t>(i == 0 ? u_totitle(static_cast<UChar32>(u[i])) : u_tolower(static_cast<UChar32>(u[i])));
  return to_utf8(u);
}

std::string py_title(std::string_view s) {
  std::u32string u = to_u32(s);
  bool prev_cased = false;
  for (auto& c : u) {
    const bool cased = is_cased(c);
    c = static_cast<char32_t>(prev_cased ? u_tolower(static_cast<UChar32>(c)) : u_totitle(static_cast<UChar32>(c)));
    prev_cased = cased;
  }
  return to_utf8(u);
}

std::vector<std::string> py_split(std::string_view s, std::optional<std::string_view> sep, int maxsplit) {
  std::vector<std::string> out;
  if (!sep) {
    std::u32string u = to_u32(s);
    size_t i = 0;
    while (true) {
      while (i < u.size() && py_isspace(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && static_cast<int>(out.size()) == maxsplit) {
        // The remainder, with trailing white space stripped (as Python does).
        size_t e = u.size();
        while (e > i && py_isspace(u[e - 1])) --e;
        out.push_back(to_utf8(std::u32string_view(u).substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < u.size() && !py_isspace(u[j])) ++j;
      out.push_back(to_utf8(std::u32string_view(u).substr(i, j - i)));
      i = j;
    }
    return out;
  }
  require(!sep->empty(), "split(): empty separator");
  size_t start = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<int>(out.size()) == maxsplit) break;
    size_t at = s.find(*sep, start);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(start, at - start));
    start = at + sep->size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string py_replace(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) {
    // Python inserts `to` between every character and at both ends.
    std::u32string u = to_u32(s);
    std::string out(to);
    for (char32_t c : u) {
      out += to_utf8(std::u32string_view(&c, 1));
      out += to;
    }
    return out;
  }
  std::string out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(from, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(to);
    start = at + from.size();
  }
  out.append(s.substr(start));
  return out;
}

// ---------------------------------------------------------------------------------------------
// PyRegex

std::shared_ptr<const PyRegex> PyRegex::compile(std::string_view pattern, const std::string& where) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(error, buf, sizeof buf);
    fail(where, ": regular expression ", quote(pattern), " does not compile at offset ", offset, ": ",
         reinterpret_cast<const char*>(buf));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
  uint32_t groups = 0;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
  std::shared_ptr<PyRegex> re(new PyRegex());
  re->code_ = code;
  re->groups_ = static_cast<int>(groups);
  return re;
}

PyRegex::~PyRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::optional<PyRegex::Match> PyRegex::match_at(std::string_view text, size_t start, bool not_empty_at_start) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  const uint32_t options = not_empty_at_start ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, options, md, nullptr);
  std::optional<Match> out;
  if (rc >= 0) {
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    Match m;
    m.span = {ov[0], ov[1]};
    m.groups.resize(static_cast<size_t>(groups_) + 1);
    for (int g = 1; g <= groups_; ++g) {
      if (g < rc && ov[2 * g] != PCRE2_UNSET) m.groups[g] = std::make_pair(ov[2 * g], ov[2 * g + 1]);
    }
    out = std::move(m);
  } else if (rc != PCRE2_ERROR_NOMATCH) {
    pcre2_match_data_free(md);
    fail("regular expression: matching failed (PCRE2 error ", rc, ")");
  }
  pcre2_match_data_free(md);
  return out;
}

std::optional<PyRegex::Match> PyRegex::search(std::string_view text, size_t start) const {
  return match_at(text, start, false);
}

std::vector<PyRegex::Match> PyRegex::find_all(std::string_view text) const {
  std::vector<Match> out;
  size_t pos = 0;
  bool prev_empty = false;
  while (pos <= text.size()) {
    std::optional<Match> m = match_at(text, pos, prev_empty);
    if (!m) {
      if (!prev_empty) break;
      // No non-empty match where the empty one was: move on by one character.
      ++pos;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xc0) == 0x80) ++pos;
      prev_empty = false;
      if (pos > text.size()) break;
      m = match_at(text, pos, false);
      if (!m) break;
    }
    prev_empty = m->span.first == m->span.second;
    pos = m->span.second;
    out.push_back(std::move(*m));
  }
  return out;
}

std::string PyRegex::sub(std::string_view text, std::string_view repl) const {
  std::string out;
  size_t last = 0;
  for (const Match& m : find_all(text)) {
    out.append(text.substr(last, m.span.first - last));
    for (size_t i = 0; i < repl.size(); ++i) {
      const char c = repl[i];
      if (c != '\\' || i + 1 == repl.size()) {
        out += c;
        continue;
      }
      const char e = repl[++i];
      int group = -1;
      if (e >= '0' && e <= '9') {
        group = e - '0';
        if (i + 1 < repl.size() && repl[i + 1] >= '0' && repl[i + 1] <= '9') group = group * 10 + (repl[++i] - '0');
      } else if (e == 'g' && i + 1 < repl.size() && repl[i + 1] == '<') {
        size_t close = repl.find('>', i + 2);
        require(close != std::string_view::npos, "regex replacement ", quote(repl), ": unterminated \\g<");
        const std::string_view digits = repl.substr(i + 2, close - i - 2);
        require(!digits.empty() && digits.size() <= 3 &&
                    std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
                "regex replacement ", quote(repl), ": \\g<...> takes a group number");
        group = std::stoi(std::string(digits));
        i = close;
      } else if (e == 'n') {
        out += '\n';
      } else if (e == 't') {
        out += '\t';
      } else if (e == 'r') {
        out += '\r';
      } else if (e == '\\') {
        out += '\\';
      } else {
        out += '\\';
        out += e;
      }
      if (group >= 0) {
        require(group <= groups_, "regex replacement ", quote(repl), ": group ", group, " does not exist");
        if (group == 0) out.append(text.substr(m.span.first, m.span.second - m.span.first));
        else if (m.groups[group]) out.append(text.substr(m.groups[group]->first, m.groups[group]->second - m.groups[group]->first));
      }
    }
    last = m.span.second;
  }
  out.append(text.substr(last));
  return out;
}

std::vector<std::vector<std::string>> PyRegex::findall(std::string_view text) const {
  std::vector<std::vector<std::string>> out;
  for (const Match& m : find_all(text)) {
    std::vector<std::string> parts;
    if (groups_ == 0) {
      parts.emplace_back(text.substr(m.span.first, m.span.second - m.span.first));
    } else {
      for (int g = 1; g <= groups_; ++g)
        parts.push_back(m.groups[g] ? std::string(text.substr(m.groups[g]->first, m.groups[g]->second - m.groups[g]->first))
                                    : std::string());
    }
    out.push_back(std::move(parts));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Task preprocessors

std::string hellaswag_preprocess(std::string_view text) {
  static const auto brackets = PyRegex::compile("\\[.*?\\]", "hellaswag_preprocess");
  std::string s = py_strip(text);
  s = py_replace(s, " [title]", ". ");
  s = brackets->sub(s, "");
  return py_replace(s, "  ", " ");
}

std::string wikitext_detokenize(std::string_view text) {
  struct Sub {
    std::shared_ptr<const PyRegex> re;
    const char* repl;
  };
  static const std::vector<Sub> subs = [] {
    const char* where = "wikitext_detokenize";
    return std::vector<Sub>{
        {PyRegex::compile("/' [0-9]/", where), "/'[0-9]/"},
        {PyRegex::compile("\\(\\s*([^\\)]*?)\\s*\\)", where), "(\\1)"},
        {PyRegex::compile("\\[\\s*([^\\]]*?)\\s*\\]", where), "[\\1]"},
        {PyRegex::compile("{\\s*([^}]*?)\\s*}", where), "{\\1}"},
        {PyRegex::compile("\\\"\\s*([^\\\"]*?)\\s*\\\"", where), "\"\\1\""},
        {PyRegex::compile("'\\s*([^']*?)\\s*'", where), "'\\1'"},
    };
  }();
  std::string s = py_replace(text, "s '", "s'");
  s = subs[0].re->sub(s, subs[0].repl);
  s = py_replace(s, " @-@ ", "-");
  s = py_replace(s, " @,@ ", ",");
  s = py_replace(s, " @.@ ", ".");
  s = py_replace(s, " : ", ": ");
  s = py_replace(s, " ; ", "; ");
  s = py_replace(s, " . ", ". ");
  s = py_replace(s, " ! ", "! ");
  s = py_replace(s, " ? ", "? ");
  s = py_replace(s, " , ", ", ");
  for (size_t i = 1; i < subs.size(); ++i) s = subs[i].re->sub(s, subs[i].repl);
  s = py_replace(s, "= = = =", "====");
  s = py_replace(s, "= = =", "===");
  s = py_replace(s, "= =", "==");
  s = py_replace(s, " \u00b0 ", "\u00b0");
  s = py_replace(s, " \n", "\n");
  s = py_replace(s, "\n ", "\n");
  s = py_replace(s, " N ", " 1 ");
  return py_replace(s, " 's", "'s");
}

std::string capitalize_last_sentence(std::string_view text) {
  const size_t at = text.rfind(". ");
  if (at == std::string_view::npos) return std::string(text);
  const std::string_view tail = text.substr(at + 2);
  if (tail.empty()) return std::string(text);
  const std::u32string first = to_u32(tail.substr(0, 4)).substr(0, 1);
  if (first.empty() || !u_islower(static_cast<UChar32>(first[0]))) return std::string(text);
  return std::string(text.substr(0, at + 2)) + py_capitalize(tail);
}

std::vector<std::string> wikitext_documents(std::string_view raw) {
  std::vector<std::string> pages;
  std::vector<std::string_view> current;
  auto join = [&] {
    std::string page;
    for (size_t i = 0; i < current.size(); ++i) {
      if (i) page += '\n';
      page.append(current[i]);
    }
    return page;
  };
  size_t start = 0;
  while (true) {
    const size_t nl = raw.find('\n', start);
    const std::string_view line = raw.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    std::string r = py_strip(py_replace(py_replace(line, "= = =", "==="), "= =", "=="));
    if (r.size() >= 2 && r.compare(0, 2, "= ") == 0 && r.size() >= 2 && r.compare(r.size() - 2, 2, " =") == 0) {
      std::string page = join();
      if (!py_strip(page).empty()) pages.push_back(std::move(page));
      current.clear();
    }
    current.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  pages.push_back(join());
  return pages;
}

size_t python_word_split_count(std::string_view text) {
  size_t runs = 0;
  bool in_space = false;
  for (char32_t c : to_u32(text)) {
    const bool sp = py_isspace(c);
    if (sp && !in_space) ++runs;
    in_space = sp;
  }
  return runs + 1;
}

}  // namespace qs::eval
