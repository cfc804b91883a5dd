// GGUF vocabularies: each shared tokenizer (Llama-3 and Qwen3 tokenizer.json, the Llama-2
// tokenizer.json, the llama2.c tok512.bin of stories260K) is written as GGUF metadata the way
// convert_hf_to_gguf.py writes it, read back, and must give identical ids to the original on
// real text (every WikiText-2 test article and line, every TinyStories story, special tokens
// in the text) and decode identically. The originals are themselves checked against
// transformers.js and llama2.c in reference_test.cpp and llama2c_test.cpp. Then: what the
// metadata holds, round trips from GGUF to GGUF, and one-line errors for malformed vocabularies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/gguf.h"
#include "tokenizer/reference.h"
#include "tokenizer/tokenizer.h"

namespace qs {
namespace {

using testing::shared_path;
using testing::split_lines;

// Real text: WikiText-2 test (each article and each non-blank line), TinyStories (each story),
// and strings with special tokens and odd spacing.
std::vector<std::string> documents(const std::vector<std::string>& specials) {
  std::vector<std::string> docs;
  std::vector<std::string> lines = split_lines(read_text_file(shared_path("data/wikitext-2-raw/canonical-layout/wiki.test.raw")));
  for (auto& [line, article] : testing::wikitext_articles(lines)) docs.push_back(article);
  for (const auto& l : lines)
    if (l.size() > 1) docs.push_back(l);
  std::string story;
  for (const auto& l : split_lines(read_text_file(shared_path("data/tinystories/tinystories_val.txt")))) {
    if (l.empty()) {
      if (!story.empty()) docs.push_back(story);
      story.clear();
    } else {
      story += (story.empty() ? "" : "\n") + l;
    }
  }
  for (const auto& s : specials) {
    docs.push_back(s + "Hello world" + s);
    docs.push_back("Question: " + s + " answer\n\n" + s + s + "  end  ");
  }
  for (const std::string s : {"", " ", "  leading", "trailing  ", "naïve café — 東京タワー 🙂👍🏽", "\t\r\n x \n\n"})
    docs.push_back(s);
  return docs;
}

std::string write_vocab_gguf(const Tokenizer& t, int64_t vocab_size, const std::string& tag) {
  const std::string path = qs::testing::make_temp_dir("gguf-vocab-" + tag) + "/vocab.gguf";
  std::vector<GgufKV> kv = {{"general.architecture", GgufValue::string("llama")}};
  for (auto& x : t.to_gguf_metadata(vocab_size)) kv.push_back(std::move(x));
  GgufWriter w(path, std::move(kv), {});
  w.finish();
  return path;
}

struct Compared {
  size_t documents = 0, tokens = 0;
};

Compared expect_same_encoding(const Tokenizer& original, const Tokenizer& gguf, const std::vector<std::string>& docs) {
  Compared c;
  int reported = 0;
  for (const auto& d : docs) {
    for (bool special : {true, false}) {
      const auto a = original.encode(d, special);
      const auto b = gguf.encode(d, special);
      if (a != b && reported++ < 3) ADD_FAILURE() << "different ids for " << qs::quote(d) << " (add_special " << special << ")";
      c.tokens += a.size();
    }
    const auto ids = original.encode(d, true);
    if (original.decode(ids) != gguf.decode(ids) && reported++ < 3) ADD_FAILURE() << "different decode of " << qs::quote(d);
    if (original.decode(ids, false) != gguf.decode(ids, false) && reported++ < 3)
      ADD_FAILURE() << "different decode (keeping specials) of " << qs::quote(d);
    ++c.documents;
  }
  EXPECT_EQ(reported, 0);
  return c;
}

void expect_same_specials(const Tokenizer& a, const Tokenizer& b) {
  EXPECT_EQ(a.bos_id(), b.bos_id());
  EXPECT_EQ(a.eos_ids(), b.eos_ids());
  EXPECT_EQ(a.adds_bos(), b.adds_bos());
  EXPECT_EQ(a.chat_template(), b.chat_template());
}

const GgufValue& key(const GgufFile& f, const char* k) {
  const GgufValue* v = f.find(k);
  if (!v) throw Error(cat("missing ", k));
  return *v;
}

TEST(GgufVocab, Llama3ByteLevelIsIdentical) {
  auto original = Tokenizer::load(shared_path("tokenizers/llama3"));
  const std::string path = write_vocab_gguf(*original, 128256, "llama3");
  GgufFile f = read_gguf(path);
  EXPECT_EQ(*key(f, "tokenizer.ggml.model").as_string(), "gpt2");
  EXPECT_EQ(*key(f, "tokenizer.ggml.pre").as_string(), "llama-bpe");
  EXPECT_EQ(key(f, "tokenizer.ggml.tokens").size(), 128256u);
  EXPECT_EQ(key(f, "tokenizer.ggml.merges").size(), 280147u);
  EXPECT_EQ((*key(f, "tokenizer.ggml.token_type").as_ints())[128000], 3);  // <|begin_of_text|>: control
  EXPECT_EQ((*key(f, "tokenizer.ggml.tokens").as_strings())[128009], "<|eot_id|>");
  auto gguf = Tokenizer::from_gguf(f);
  EXPECT_EQ(gguf->vocab_size(), original->vocab_size());
  expect_same_specials(*original, *gguf);
  Compared c = expect_same_encoding(*original, *gguf, documents({"<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>"}));
  std::printf("llama3 via GGUF: %zu documents, %zu tokens identical\n", c.documents, c.tokens);
  // The file also loads through the generic entry point.
  EXPECT_EQ(Tokenizer::load(path)->encode("Hello world"), original->encode("Hello world"));
}

TEST(GgufVocab, Qwen3ByteLevelIsIdenticalAndPadded) {
  auto original = Tokenizer::load(shared_path("tokenizers/qwen3"));
  const std::string path = write_vocab_gguf(*original, 151936, "qwen3");  // Qwen3's embedding rows
  GgufFile f = read_gguf(path);
  EXPECT_EQ(*key(f, "tokenizer.ggml.pre").as_string(), "qwen2");
  const auto& tokens = *key(f, "tokenizer.ggml.tokens").as_strings();
  const auto types = *key(f, "tokenizer.ggml.token_type").as_ints();
  ASSERT_EQ(tokens.size(), 151936u);
  EXPECT_EQ(tokens[151669], "[PAD151669]");
  EXPECT_EQ(types[151669], 5);       // unused
  EXPECT_EQ(types[151644], 3);       // <|im_start|>: control
  EXPECT_EQ(types[151667], 4);       // <think>: user-defined (not special)
  EXPECT_EQ(f.opt_int("tokenizer.ggml.eos_token_id"), 151645);
  EXPECT_FALSE(f.find("tokenizer.ggml.bos_token_id"));
  EXPECT_EQ(f.opt_int("tokenizer.ggml.padding_token_id"), 151643);
  EXPECT_FALSE(*f.opt_bool("tokenizer.ggml.add_bos_token"));
  auto gguf = Tokenizer::from_gguf(f);
  expect_same_specials(*original, *gguf);
  EXPECT_FALSE(gguf->is_special(151667));
  EXPECT_TRUE(gguf->is_special(151644));
  Compared c = expect_same_encoding(*original, *gguf, documents({"<|im_start|>", "<|im_end|>", "<think>"}));
  std::printf("qwen3 via GGUF: %zu documents, %zu tokens identical\n", c.documents, c.tokens);
  // NFC as in Qwen's tokenizer.json: a decomposed "é" encodes like the composed one.
  EXPECT_EQ(gguf->encode("cafe\xCC\x81"), original->encode("caf\xC3\xA9"));
  EXPECT_EQ(gguf->decode(std::vector<int32_t>{151700}), "[PAD151700]");
}

TEST(GgufVocab, Llama2cTok512IsIdentical) {
  auto original = Tokenizer::from_llama2c(shared_path("models/stories260K/tok512.bin"));
  const std::string path = write_vocab_gguf(*original, 512, "tok512");
  GgufFile f = read_gguf(path);
  EXPECT_EQ(*key(f, "tokenizer.ggml.model").as_string(), "llama");
  const auto types = *key(f, "tokenizer.ggml.token_type").as_ints();
  EXPECT_EQ(types[0], 2);    // <unk>
  EXPECT_EQ(types[1], 3);    // <s>
  EXPECT_EQ(types[3], 6);    // <0x00>
  EXPECT_EQ(types[300], 1);
  EXPECT_EQ((*key(f, "tokenizer.ggml.tokens").as_strings())[1], "<s>");
  EXPECT_EQ(key(f, "tokenizer.ggml.scores").size(), 512u);
  auto gguf = Tokenizer::from_gguf(f);
  expect_same_specials(*original, *gguf);
  Compared c = expect_same_encoding(*original, *gguf, documents({"<s>", "</s>"}));
  std::printf("tok512 via GGUF: %zu documents, %zu tokens identical\n", c.documents, c.tokens);
}

TEST(GgufVocab, Llama2TokenizerJsonIsIdentical) {
  // SentencePiece-style tokenizer.json (no scores): scores are derived from the merge ranks.
  auto original = Tokenizer::load(shared_path("tokenizers/llama2"));
  const std::string path = write_vocab_gguf(*original, 32000, "llama2");
  GgufFile f = read_gguf(path);
  EXPECT_EQ(*key(f, "tokenizer.ggml.model").as_string(), "llama");
  EXPECT_EQ(f.opt_int("tokenizer.ggml.unknown_token_id"), 0);
  auto gguf = Tokenizer::from_gguf(f);
  expect_same_specials(*original, *gguf);
  std::vector<std::string> docs;
  std::vector<std::string> lines = split_lines(read_text_file(shared_path("data/wikitext-2-raw/canonical-layout/wiki.test.raw")));
  for (const auto& l : lines)
    if (l.size() > 1) docs.push_back(l);
  for (const std::string s : {"<s>Hello</s>", " \n  x", "naïve café — 東京タワー 🙂👍🏽"}) docs.push_back(s);
  Compared c = expect_same_encoding(*original, *gguf, docs);
  std::printf("llama2 tokenizer.json via GGUF: %zu documents, %zu tokens identical\n", c.documents, c.tokens);
}

TEST(GgufVocab, GgufToGgufKeepsTheVocabulary) {
  auto original = Tokenizer::from_llama2c(shared_path("models/stories260K/tok512.bin"));
  GgufFile first = read_gguf(write_vocab_gguf(*original, 512, "rt1"));
  auto once = Tokenizer::from_gguf(first);
  GgufFile second = read_gguf(write_vocab_gguf(*once, 520, "rt2"));  // 8 more rows: padded
  for (const char* k : {"tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                        "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix"})
    EXPECT_EQ(key(first, k).describe(), key(second, k).describe()) << k;
  const auto& t1 = *key(first, "tokenizer.ggml.tokens").as_strings();
  const auto& t2 = *key(second, "tokenizer.ggml.tokens").as_strings();
  ASSERT_EQ(t2.size(), 520u);
  EXPECT_TRUE(std::equal(t1.begin(), t1.end(), t2.begin()));
  EXPECT_EQ(t2[515], "[PAD515]");
  auto twice = Tokenizer::from_gguf(second);
  EXPECT_EQ(twice->encode("The little dog ran."), original->encode("The little dog ran."));
  // to_hf_json of a GGUF vocabulary is a tokenizer.json that encodes the same.
  auto hf = Tokenizer::from_hf_json_text(once->to_hf_json().dump(), once->to_hf_config_json().dump(), "from-gguf");
  for (const std::string s : {"Once upon a time, there was a little girl.", "Lily's \"red\" ball! 3.14"})
    EXPECT_EQ(hf->encode(s), original->encode(s)) << s;
  EXPECT_THROW(once->to_gguf_metadata(100), Error);  // fewer rows than tokens
}

// A minimal vocabulary file with `kv` replacing or adding keys of a valid "gpt2" vocabulary.
GgufFile vocab_file(std::vector<GgufKV> changes, const std::vector<std::string>& drop = {}) {
  std::vector<std::string> tokens = {"a", "b", "ab", "<s>"};
  std::vector<GgufKV> kv = {{"tokenizer.ggml.model", GgufValue::string("gpt2")},
                            {"tokenizer.ggml.pre", GgufValue::string("qwen2")},
                            {"tokenizer.ggml.tokens", GgufValue::strings(tokens)},
                            {"tokenizer.ggml.token_type", GgufValue::i32_array(std::vector<int32_t>{1, 1, 1, 3})},
                            {"tokenizer.ggml.merges", GgufValue::strings({"a b"})},
                            {"tokenizer.ggml.bos_token_id", GgufValue::u32(3)}};
  for (auto& c : changes) {
    bool replaced = false;
    for (auto& x : kv)
      if (x.key == c.key) x.value = c.value, replaced = true;
    if (!replaced) kv.push_back(c);
  }
  GgufFile f;
  f.path = "v.gguf";
  for (auto& x : kv)
    if (std::find(drop.begin(), drop.end(), x.key) == drop.end()) f.metadata.push_back(x);
  return f;
}

void expect_vocab_error(const GgufFile& f, std::vector<std::string> needles) {
  try {
    Tokenizer::from_gguf(f);
    ADD_FAILURE() << "no error, expected " << needles[0];
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.rfind("v.gguf", 0), 0u) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(GgufVocab, SmallVocabularyWorks) {
  auto t = Tokenizer::from_gguf(vocab_file({}));
  EXPECT_EQ(t->encode("ab<s>a", false), (std::vector<int32_t>{2, 3, 0}));
}

TEST(GgufVocab, RefusesMalformedVocabularies) {
  expect_vocab_error(vocab_file({{"tokenizer.ggml.model", GgufValue::string("bert")}}),
                     {"tokenizer.ggml.model", "'bert' is not supported"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.pre", GgufValue::string("falcon")}}),
                     {"tokenizer.ggml.pre", "'falcon'", "llama-bpe, qwen2"});
  expect_vocab_error(vocab_file({}, {"tokenizer.ggml.model"}), {"tokenizer.ggml.model", "no tokenizer"});
  expect_vocab_error(vocab_file({}, {"tokenizer.ggml.tokens"}), {"tokenizer.ggml.tokens"});
  expect_vocab_error(vocab_file({}, {"tokenizer.ggml.merges"}), {"tokenizer.ggml.merges"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.tokens", GgufValue::u32(3)}}), {"tokenizer.ggml.tokens", "array of strings"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.scores", GgufValue::f32_array(std::vector<float>{1, 2})}}),
                     {"tokenizer.ggml.scores", "expected 4"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.token_type", GgufValue::i32_array(std::vector<int32_t>{1, 1, 9, 1})}}),
                     {"tokenizer.ggml.token_type", "token 2 has type 9"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.bos_token_id", GgufValue::u32(4)}}),
                     {"tokenizer.ggml.bos_token_id", "id 4 is outside"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.merges", GgufValue::strings({"ab"})}}),
                     {"tokenizer.ggml.merges", "merge 0"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.tokens", GgufValue::strings({"a", "\xff", "ab", "<s>"})}}),
                     {"tokenizer.ggml.tokens", "token 1 is not valid UTF-8"});
  expect_vocab_error(vocab_file({{"tokenizer.ggml.add_eos_token", GgufValue::boolean(true)}}),
                     {"add_eos_token", "no tokenizer.ggml.eos_token_id"});
}

// The fuzz seeds (fuzz/io/make_gguf_seeds.py) are what they say they are.
TEST(GgufVocab, FuzzSeeds) {
  const std::string dir = qs::testing::source_dir() + "/fuzz/corpus/gguf_vocab/";
  auto spm = Tokenizer::from_gguf_file(dir + "spm.gguf");
  // "▁abc": "ab" (score -4) merges before "▁a" (-6), then "▁ab" (-7); "▁abc" is no token.
  EXPECT_EQ(spm->encode("abc ab", true), (std::vector<int32_t>{1, 266, 262, 266}));  // <s> ▁ab c ▁ab
  for (const char* pre : {"qwen2", "llama-bpe", "gpt-2"}) {
    auto t = Tokenizer::from_gguf_file(dir + "gpt2_" + pre + ".gguf");
    EXPECT_EQ(t->encode(" ab<think>", false), (std::vector<int32_t>{258, 260})) << pre;  // Ġab <think>
  }
  EXPECT_THROW(Tokenizer::from_gguf_file(dir + "gpt2_falcon.gguf"), Error);
  EXPECT_THROW(Tokenizer::from_gguf_file(dir + "truncated.gguf"), Error);
}

}  // namespace
}  // namespace qs
