#include "tokenizer/unicode.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include "core/error.h"
#include "core/files.h"

namespace qs::tok {

Utf8Step utf8_step(const char* s, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  unsigned c = p[0];
  if (c < 0x80) return {1, Utf8Kind::kValid, c};
  size_t len;
  char32_t cp;
  // The allowed range of the second byte excludes overlong forms, surrogates and > U+10FFFF,
  // exactly as in the Unicode "maximal subpart" practice.
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {1, Utf8Kind::kInvalid, 0};
  }
  for (size_t k = 1; k < len; ++k) {
    if (k >= n) return {k, Utf8Kind::kTruncated, 0};
    unsigned b = p[k];
    if (b < lo || b > hi) return {k, Utf8Kind::kInvalid, 0};
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {len, Utf8Kind::kValid, cp};
}

bool is_valid_utf8(std::string_view s) { return find_invalid_utf8(s) == std::string_view::npos; }

std::string to_valid_utf8(std::string_view s) {
  size_t bad = find_invalid_utf8(s);
  if (bad == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  out.append(s.substr(0, bad));
  size_t i = bad;
  while (i < s.size()) {
    Utf8Step st = utf8_step(s.data() + i, s.size() - i);
    if (st.kind == Utf8Kind::kValid) out.append(s.substr(i, st.length));
    else out.append(kReplacementChar);
    i += st.length;
  }
  return out;
}

size_t incomplete_utf8_tail(std::string_view s) {
  // A character is at most 4 bytes: look for its lead byte among the last 3.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c < 0x80) return 0;
    Utf8Step st = utf8_step(s.data() + n - back, back);
    return st.kind == Utf8Kind::kTruncated && st.length == back ? back : 0;
  }
  return 0;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_js_whitespace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0xA0) return false;
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

std::string_view trim_js_whitespace_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    Utf8Step st = utf8_step(s.data() + i, s.size() - i);
    if (st.kind != Utf8Kind::kValid || !is_js_whitespace(st.cp)) break;
    i += st.length;
  }
  return s.substr(i);
}

std::string_view trim_js_whitespace_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    Utf8Step st = utf8_step(s.data() + start, end - start);
    if (st.kind != Utf8Kind::kValid || !is_js_whitespace(st.cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

namespace {
struct ByteLevelTables {
  std::array<std::string, 256> to_char;
  std::array<int32_t, 512> to_byte;  // every alphabet code point is < 512
  ByteLevelTables() {
    to_byte.fill(-1);
    // Printable bytes keep their own code point; the others are moved to 256 + n in byte order.
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
      append_utf8(to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};
const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables;
  return tables;
}
}  // namespace

const std::array<std::string, 256>& byte_level_alphabet() { return byte_level_tables().to_char; }

int byte_level_byte(char32_t cp) { return cp < 512 ? byte_level_tables().to_byte[cp] : -1; }

bool byte_level_to_bytes(std::string_view s, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < s.size()) {
    Utf8Step st = utf8_step(s.data() + i, s.size() - i);
    if (st.kind != Utf8Kind::kValid) return false;
    int b = byte_level_byte(st.cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += st.length;
  }
  return true;
}

std::string normalize_unicode(std::string_view s, UnicodeForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = nullptr;
  switch (form) {
    case UnicodeForm::kNFC: norm = icu::Normalizer2::getNFCInstance(status); break;
    case UnicodeForm::kNFD: norm = icu::Normalizer2::getNFDInstance(status); break;
    case UnicodeForm::kNFKC: norm = icu::Normalizer2::getNFKCInstance(status); break;
    case UnicodeForm::kNFKD: norm = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status)) fail("ICU: cannot load the Unicode normalization data: ", u_errorName(status));
  // ASCII is invariant under every normalization form.
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return std::string(s);
  icu::StringPiece piece(s.data(), static_cast<int32_t>(s.size()));
  if (norm->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(s);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(s.size()));
  norm->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) fail("ICU: Unicode normalization failed: ", u_errorName(status));
  return out;
}

}  // namespace qs::tok
