// BPE semantics on small hand-made tokenizers (expected ids derived by hand, and checked against
// transformers.js too), configuration of the shared tokenizers, and errors.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/timer.h"
#include "tokenizer/reference.h"

namespace qs {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

// A character-level, SentencePiece-style BPE tokenizer.json (Llama-2's normalizer and decoder):
// tokens a b c ab bc abc aa ▁a, byte tokens only for 'é' and '\n'.
json tiny_tokenizer(const json& merges) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"a", 3},      {"b", 4},      {"c", 5},     {"ab", 6},
                {"bc", 7},    {"abc", 8}, {"▁", 9},    {"<0xC3>", 10}, {"<0xA9>", 11}, {"<0x0A>", 12}, {"▁a", 13}, {"aa", 14}};
  json added = json::array();
  for (auto [id, content] : {std::pair{0, "<unk>"}, {1, "<s>"}, {2, "</s>"}})
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "▁"}},
                                     {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", json::object()}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                  {{"type", "ByteFallback"}},
                                  {{"type", "Fuse"}},
                                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true}, {"vocab", vocab}, {"merges", merges}}}};
}

std::unique_ptr<Tokenizer> tiny(const json& merges) {
  return Tokenizer::from_hf_json_text(tiny_tokenizer(merges).dump(), "", "tiny.json");
}

TEST(Bpe, LowerRankMergesFirst) {
  // "abc": (b,c) has rank 0, so bc forms first and ab never can.
  EXPECT_EQ(tiny({"b c", "a b"})->encode("abc", false), (Ids{9, 3, 7}));
  EXPECT_EQ(tiny({"a b", "b c"})->encode("abc", false), (Ids{9, 6, 5}));
  EXPECT_EQ(tiny({"a b", "b c", "ab c"})->encode("abc", false), (Ids{9, 8}));
  // The new-style [left, right] merge list means the same.
  EXPECT_EQ(tiny(json::array({{"b", "c"}, {"a", "b"}}))->encode("abc", false), (Ids{9, 3, 7}));
}

TEST(Bpe, RankBeatsPosition) {
  // "▁aab": (a, b) has rank 0 and merges before the leftmost pair (▁, a).
  json merges = json::array({{"a", "b"}, {"▁", "a"}});
  EXPECT_EQ(tiny(merges)->encode("aab", false), (Ids{13, 6}));
  EXPECT_EQ(tiny(json::array({{"▁", "a"}, {"a", "b"}}))->encode("ab", false), (Ids{13, 4}));
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  // "▁aaa": the pair (a, a) at positions 1 and 2; the leftmost merges, leaving "aa" "a".
  EXPECT_EQ(tiny({"a a"})->encode("aaa", false), (Ids{9, 14, 3}));
  EXPECT_EQ(tiny({"a a"})->encode("aaaa", false), (Ids{9, 14, 14}));
}

TEST(Bpe, ByteFallbackAndUnknown) {
  auto t = tiny({"a b"});
  // 'é' has no token: its UTF-8 bytes C3 A9 become <0xC3> <0xA9>; '\n' becomes <0x0A>.
  EXPECT_EQ(t->encode("é\nab", true), (Ids{1, 9, 10, 11, 12, 6}));
  EXPECT_EQ(t->decode(Ids{1, 9, 10, 11, 12, 6}), "é\nab");
  // 'x' has no token and no byte token: <unk>, and consecutive unknowns fuse into one.
  EXPECT_EQ(t->encode("xxa", false), (Ids{9, 0, 3}));
  // Ill-formed UTF-8 is U+FFFD (EF BF BD), which has no byte tokens here either.
  EXPECT_EQ(t->encode(std::string("a\xff"), false), (Ids{9, 3, 0}));
}

TEST(Bpe, SpecialTokensInTextAreRecognized) {
  auto t = tiny({"a b"});
  EXPECT_EQ(t->encode("ab</s>ab", true), (Ids{1, 9, 6, 2, 9, 6}));
  EXPECT_EQ(t->encode("<s>", false), (Ids{1}));
  // Each text section between special tokens gets its own "▁" prefix (normalized separately).
  EXPECT_EQ(t->decode(Ids{1, 9, 6, 2, 9, 6}, /*skip_special=*/true), "ab ab");
  EXPECT_EQ(t->decode(Ids{1, 9, 6, 2, 9, 6}, /*skip_special=*/false), "<s> ab</s> ab");
  EXPECT_TRUE(t->is_special(2));
  EXPECT_FALSE(t->is_special(3));
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_TRUE(t->adds_bos());
}

TEST(Bpe, HandMadeTokenizersMatchTransformersJs) {
  // A fixed directory, so that the cached reference ids (keyed by file name and content) are reused.
  std::string dir = testing::binary_dir() + "/test-exports/tiny";
  std::filesystem::create_directories(dir);
  testing::Corpus corpus{"tiny", {}, {}};
  for (const char* text : {"abc", "aab", "ab", "aaa", "aaaa", "é\nab", "xxa", "ab</s>ab", "<s>", "  a  b c ", "", "abcabc\n\nab"})
    corpus.add(text, text);
  for (const json& merges : {json{"b c", "a b"}, json{"a b", "b c", "ab c"}, json::array({{"a", "b"}, {"▁", "a"}}), json{"a a"}}) {
    std::string path = cat(dir, "/tokenizer-", testing::fnv1a(merges.dump()), ".json");
    write_file_atomic(path, tiny_tokenizer(merges).dump());
    auto t = Tokenizer::from_hf_json(path);
    testing::ReferenceResult ref = testing::run_reference({"tiny", "", path, ""}, corpus, true);
    ASSERT_EQ(ref.error, "");
    for (size_t i = 0; i < corpus.docs.size(); ++i)
      EXPECT_EQ(t->encode(corpus.docs[i]), ref.ids[i]) << merges.dump() << " on " << json(corpus.docs[i]).dump();
  }
}

TEST(AddedTokens, LstripRstripEatWhiteSpace) {
  json j = tiny_tokenizer({"a b"});
  j["added_tokens"].push_back({{"id", 15}, {"content", "<x>"}, {"lstrip", true}, {"rstrip", true}, {"special", false}});
  auto t = Tokenizer::from_hf_json_text(j.dump(), "", "tiny.json");
  // The spaces on both sides of <x> go; each side is then normalized with its own "▁".
  EXPECT_EQ(t->encode("a  <x>  b", false), (Ids{9, 3, 15, 9, 4}));
  EXPECT_EQ(t->vocab_size(), 16);
  EXPECT_FALSE(t->is_special(15));
  EXPECT_EQ(t->token_to_id("<x>"), 15);
}

// ---------------------------------------------------------------------------------------------
// The shared tokenizers' configuration.

std::string shared_tokenizer(const std::string& name) { return testing::shared_path("tokenizers/" + name); }

TEST(SharedConfig, Llama3) {
  auto t = Tokenizer::load(shared_tokenizer("llama3"));
  EXPECT_EQ(t->vocab_size(), 128256);
  EXPECT_EQ(t->bos_id(), 128000);
  EXPECT_EQ(t->eos_ids(), (Ids{128001}));
  // This tokenizer.json's post-processor is ByteLevel only and the config has no add_bos_token:
  // no BOS is added (transformers.js and transformers agree).
  EXPECT_FALSE(t->adds_bos());
  EXPECT_EQ(t->encode("Hello world"), (Ids{9906, 1917}));
  EXPECT_EQ(t->encode("<|begin_of_text|>Hi<|eot_id|>"), (Ids{128000, 13347, 128009}));
  EXPECT_EQ(t->id_to_token(1917), "Ġworld");
  EXPECT_TRUE(t->is_special(128009));
  EXPECT_NE(t->chat_template().find("bos_token"), std::string::npos);
}

TEST(SharedConfig, Qwen3) {
  auto t = Tokenizer::load(shared_tokenizer("qwen3"));
  EXPECT_EQ(t->vocab_size(), 151669);
  EXPECT_EQ(t->bos_id(), std::nullopt);
  EXPECT_EQ(t->eos_ids(), (Ids{151645}));  // <|im_end|>
  EXPECT_FALSE(t->adds_bos());
  EXPECT_EQ(t->token_to_id("<tool_call>"), 151657);
  EXPECT_FALSE(t->is_special(151657));  // added but not special: decode keeps it
  EXPECT_EQ(t->decode(t->encode("a<tool_call>b")), "a<tool_call>b");
  EXPECT_NE(t->chat_template().find("<|im_start|>"), std::string::npos);
}

TEST(SharedConfig, Llama2) {
  auto t = Tokenizer::load(shared_tokenizer("llama2"));
  EXPECT_EQ(t->vocab_size(), 32000);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_ids(), (Ids{2}));
  EXPECT_TRUE(t->adds_bos());
  EXPECT_EQ(t->encode("Hello", true).front(), 1);
  EXPECT_EQ(t->encode("Hello", false).front(), t->token_to_id("▁Hello"));
  EXPECT_EQ(t->chat_template(), "");
}

TEST(SharedConfig, GenerationConfigAddsEosIds) {
  // A model directory whose generation_config.json lists <|eot_id|> as well.
  std::string dir = testing::make_temp_dir("llama3-instruct");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::create_symlink(shared_tokenizer("llama3") + "/" + f, dir + "/" + f);
  write_file_atomic(dir + "/generation_config.json", R"({"bos_token_id": 128000, "eos_token_id": [128001, 128009]})");
  EXPECT_EQ(Tokenizer::load(dir)->eos_ids(), (Ids{128001, 128009}));
  write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": 999999})");
  EXPECT_THROW(Tokenizer::load(dir), Error);
}

TEST(SharedConfig, LoadDetectsFormats) {
  EXPECT_EQ(Tokenizer::load(shared_tokenizer("llama2") + "/tokenizer.json")->vocab_size(), 32000);
  EXPECT_EQ(Tokenizer::load(shared_tokenizer("llama2") + "/tokenizer.bin")->vocab_size(), 32000);
  EXPECT_EQ(Tokenizer::load(testing::shared_path("models/stories260K/tok512.bin"))->vocab_size(), 512);
  EXPECT_THROW(Tokenizer::load(testing::shared_path("models/stories260K")), Error);  // no tokenizer in it
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), Error);
}

TEST(Threads, ConcurrentEncodingGivesTheSameIds) {
  // encode/decode are const and share no mutable state (regex match data is per thread).
  auto t = Tokenizer::load(shared_tokenizer("qwen3"));
  std::string text = read_text_file(testing::shared_path("data/gsm8k/test.jsonl")).substr(0, 200000);
  const std::vector<int32_t> expected = t->encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::string> decoded(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      got[i] = t->encode(text);
      decoded[i] = t->decode(got[i]);
    });
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], expected);
    EXPECT_EQ(decoded[i], text);
  }
}

TEST(Speed, EncodesWikiTextWellUnderASecond) {
  auto t = Tokenizer::load(shared_tokenizer("llama3"));
  std::string text = read_text_file(testing::shared_path("data/wikitext-2-raw/canonical-layout/wiki.test.raw"));
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    Stopwatch sw;
    size_t n = t->encode(text).size();
    best = std::min(best, sw.seconds());
    EXPECT_EQ(n, 289076u);
  }
  std::printf("llama3: %.1f MB/s on WikiText-2 test (%.3f s)\n", text.size() / best / 1e6, best);
  EXPECT_LT(best, 1.0);  // typically ~0.1 s; a shared machine may be slow, not 10x slow
}

}  // namespace
}  // namespace qs
