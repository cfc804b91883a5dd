// UTF-8 repair, byte-level alphabet, normalization and the JavaScript meaning of the split regexes.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace qs::tok {
namespace {

const std::string kFFFD(kReplacementChar);

TEST(Utf8, IllFormedSubpartsBecomeOneReplacementEach) {
  // The examples of the Unicode standard (Table 3-8) and WHATWG: maximal subparts.
  EXPECT_EQ(to_valid_utf8("abc"), "abc");
  EXPECT_EQ(to_valid_utf8("a\xff" "b"), "a" + kFFFD + "b");
  EXPECT_EQ(to_valid_utf8("\xE2\x82"), kFFFD);                    // truncated 3-byte sequence: one
  EXPECT_EQ(to_valid_utf8("\xE2\x82x"), kFFFD + "x");
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), kFFFD + kFFFD);            // overlong: each byte
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);  // surrogate
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD);  // > U+10FFFF
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"), kFFFD);
  EXPECT_EQ(to_valid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFFFD + kFFFD + kFFFD + "b" + kFFFD + "c" + kFFFD + kFFFD + "d");
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE2"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("a\xFF"), 0u);  // invalid, not incomplete
  EXPECT_EQ(incomplete_utf8_tail("a\x80"), 0u);
}

TEST(ByteLevel, AlphabetIsGpt2s) {
  const auto& a = byte_level_alphabet();
  EXPECT_EQ(a[' '], "Ġ");   // U+0120
  EXPECT_EQ(a['\n'], "Ċ");  // U+010A
  EXPECT_EQ(a['A'], "A");
  EXPECT_EQ(a[0xAD], "Ń");  // the soft hyphen is remapped: U+0143
  std::string bytes;
  ASSERT_TRUE(byte_level_to_bytes("ĠhelloĊ", bytes));
  EXPECT_EQ(bytes, " hello\n");
  EXPECT_FALSE(byte_level_to_bytes("€", bytes));
  for (int b = 0; b < 256; ++b) ASSERT_TRUE(byte_level_to_bytes(a[b], bytes) && bytes == std::string(1, static_cast<char>(b)));
}

TEST(Normalize, NfcAndNfkc) {
  EXPECT_EQ(normalize_unicode("e\xCC\x81", UnicodeForm::kNFC), "é");  // e + combining acute
  EXPECT_EQ(normalize_unicode("é", UnicodeForm::kNFD), "e\xCC\x81");
  EXPECT_EQ(normalize_unicode("ﬁ", UnicodeForm::kNFKC), "fi");
  EXPECT_EQ(normalize_unicode("ﬁ", UnicodeForm::kNFC), "ﬁ");
  EXPECT_EQ(normalize_unicode("plain ascii", UnicodeForm::kNFC), "plain ascii");
}

std::vector<std::string> matches(const std::string& pattern, const std::string& text) {
  auto re = Regex::compile(pattern, "test");
  std::vector<Span> spans;
  re->find_all(text, spans);
  std::vector<std::string> out;
  for (const Span& s : spans) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

TEST(Regex, JavaScriptWhiteSpace) {
  // \s is JavaScript's: U+FEFF and U+00A0 are white space, U+0085 (NEL) is not.
  EXPECT_EQ(matches("\\s+", "a\xEF\xBB\xBF" "b"), std::vector<std::string>{"\xEF\xBB\xBF"});
  EXPECT_EQ(matches("\\s+", "a\xC2\xA0" "b"), std::vector<std::string>{"\xC2\xA0"});
  EXPECT_TRUE(matches("\\s+", "a\xC2\x85" "b").empty());
  EXPECT_EQ(matches("[^\\s\\p{L}]+", "ab, cd!"), (std::vector<std::string>{",", "!"}));
  EXPECT_EQ(matches("\\S+", "ab cd"), (std::vector<std::string>{"ab", "cd"}));
}

TEST(Regex, CaseInsensitiveGroupIsAsciiOnly) {
  // transformers.js rewrites (?i:'s|...) to explicit [sS] alternatives: the long s 'ſ' (U+017F)
  // is not an 's' there (it would be for a Unicode-caseless engine).
  const std::string contractions = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  EXPECT_EQ(matches(contractions, "it's IT'S we'Re"), (std::vector<std::string>{"'s", "'S", "'Re"}));
  EXPECT_TRUE(matches(contractions, "it'ſ").empty());
  EXPECT_EQ(translate_pattern(contractions, "test"), "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])");
}

TEST(Regex, DotDigitsAndWordAreJavaScripts) {
  EXPECT_EQ(matches(".+", "ab\xE2\x80\xA8" "cd"), (std::vector<std::string>{"ab", "cd"}));  // U+2028 ends a line
  EXPECT_EQ(matches("\\d+", "12\xD9\xA3" "4"), (std::vector<std::string>{"12", "4"}));       // Arabic-Indic 3 is not \d
  EXPECT_EQ(matches("\\p{N}+", "12\xD9\xA3" "4"), std::vector<std::string>{"12\xD9\xA3" "4"});
  EXPECT_EQ(matches("\\w+", "caf\xC3\xA9"), std::vector<std::string>{"caf"});
}

TEST(Regex, Llama3SplitPattern) {
  const std::string llama3 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  EXPECT_EQ(matches(llama3, "Hello world's 12345 ,!!\n\n  x  "),
            (std::vector<std::string>{"Hello", " world", "'s", " ", "123", "45", " ,!!\n\n", " ", " x", "  "}));
}

TEST(Regex, EmptyMatchesAdvanceOneCharacter) {
  auto re = Regex::compile("x*", "test");
  EXPECT_EQ(re->replace_all("aé", "-"), "-a-é-");
  std::vector<Span> spans;
  re->find_all("aé", spans);
  EXPECT_TRUE(spans.empty());
}

TEST(Regex, RefusesWhatItCannotReproduce) {
  for (const char* p : {"a\\Kb", "(?x)a", "(?i:[a-z])", "[\\S]", "\\R"}) EXPECT_THROW(Regex::compile(p, "test"), Error) << p;
  EXPECT_THROW(Regex::compile("(", "test"), Error);
  // Literals are escaped.
  EXPECT_EQ(Regex::literal("a.b", "test")->replace_all("a.b axb", "-"), "- axb");
}

}  // namespace
}  // namespace qs::tok
