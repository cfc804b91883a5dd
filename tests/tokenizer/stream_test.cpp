// StreamDecoder: pushing ids one by one yields decode(all ids) in pieces, never a broken
// character, and SentencePiece's leading space is stripped only at the very start.
#include <gtest/gtest.h>

#include "tokenizer/reference.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace qs {
namespace {

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = {
      "Once upon a time, there was a little girl named Lily.",
      " leading space and  double  spaces\n\nnew paragraph",
      "naïve café — 東京タワー 🙂👍🏽 emoji and CJK",
      "\xF0\x9F\x98\x80\xF0\x9F\x98\x81 two emoji back to back",
      "x",
      "",
  };
  return t;
}

std::unique_ptr<Tokenizer> load(const std::string& which) {
  if (which == "tok512") return Tokenizer::from_llama2c(testing::shared_path("models/stories260K/tok512.bin"));
  return Tokenizer::load(testing::shared_path("tokenizers/" + which));
}

class Stream : public ::testing::TestWithParam<std::string> {};

TEST_P(Stream, PiecesConcatenateToDecode) {
  auto tok = load(GetParam());
  for (bool skip_special : {true, false}) {
    for (const std::string& text : texts()) {
      std::vector<int32_t> ids = tok->encode(text, true);
      StreamDecoder stream(*tok, skip_special);
      std::string streamed;
      for (int32_t id : ids) {
        std::string piece = stream.push(id);
        // A character is never emitted in parts: each piece is valid UTF-8 on its own, and holds
        // no U+FFFD (the texts have none).
        EXPECT_TRUE(tok::is_valid_utf8(piece));
        EXPECT_EQ(piece.find(tok::kReplacementChar), std::string::npos) << GetParam() << " on " << text;
        streamed += piece;
      }
      streamed += stream.flush();
      EXPECT_EQ(streamed, tok->decode(ids, skip_special)) << GetParam() << " on " << text;
      if (skip_special) {
        // Every text here survives a round trip (Qwen's NFC leaves these unchanged).
        EXPECT_EQ(streamed, text) << GetParam();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Stream, ::testing::Values("llama3", "qwen3", "llama2", "tok512"),
                         [](const auto& info) { return info.param; });

TEST(StreamDecoder, HoldsBackAPartialCharacter) {
  // Llama-2 style byte fallback: "🙂" is four byte tokens in the Stories260K vocabulary.
  auto tok = load("tok512");
  std::vector<int32_t> ids = tok->encode("a🙂", false);
  ASSERT_EQ(ids.size(), 5u);  // "▁a" and <0xF0> <0x9F> <0x99> <0x82>
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(ids[0]), "a");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), "");
  EXPECT_EQ(stream.push(ids[3]), "");
  EXPECT_EQ(stream.push(ids[4]), "🙂");
  // Cut short, flush gives U+FFFD for the incomplete character (as decode does).
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.flush(), tok::kReplacementChar);
}

TEST(StreamDecoder, ByteLevelEmojiSplitAcrossTokens) {
  auto tok = load("llama3");
  std::vector<int32_t> ids = tok->encode("👍🏽", false);
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder stream(*tok);
  std::string out;
  size_t nonempty = 0;
  for (int32_t id : ids) {
    std::string piece = stream.push(id);
    nonempty += !piece.empty();
    out += piece;
  }
  EXPECT_EQ(out + stream.flush(), "👍🏽");
  EXPECT_LE(nonempty, 2u);  // whole characters only: at most one piece per code point
}

}  // namespace
}  // namespace qs
