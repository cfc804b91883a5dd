// Every bad input is a one-line qs::Error that names the file and the field, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "testing/testing.h"
#include "tokenizer/reference.h"
#include "tokenizer/tokenizer.h"

namespace qs {
namespace {

using json = nlohmann::json;

// The message of the qs::Error that `fn` throws ("" if it does not throw one).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Asserts one line that contains every fragment.
void expect_error(const std::string& message, std::initializer_list<std::string> fragments) {
  ASSERT_FALSE(message.empty()) << "no qs::Error was thrown";
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const std::string& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << "'" << f << "' not in: " << message;
}

std::string load_error(const std::string& tokenizer_json, const std::string& config = "") {
  return error_of([&] { Tokenizer::from_hf_json_text(tokenizer_json, config, "bad/tokenizer.json"); });
}

// A valid minimal BPE tokenizer.json to break one field at a time.
json minimal() {
  return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
}

TEST(Errors, MinimalTokenizerLoads) {
  auto t = Tokenizer::from_hf_json_text(minimal().dump(), "", "ok.json");
  EXPECT_EQ(t->encode("ab"), (std::vector<int32_t>{2}));
}

TEST(Errors, InvalidJson) {
  expect_error(load_error("{\"model\": "), {"bad/tokenizer.json", "invalid JSON", "parse error"});
  expect_error(load_error("[1, 2]"), {"bad/tokenizer.json", "(top level)", "expected a JSON object"});
  expect_error(load_error(""), {"bad/tokenizer.json", "invalid JSON"});
}

TEST(Errors, MissingParts) {
  expect_error(load_error("{}"), {"bad/tokenizer.json", "model", "missing"});
  json j = minimal();
  j["model"].erase("vocab");
  expect_error(load_error(j.dump()), {"model.vocab", "missing"});
  j = minimal();
  j["model"].erase("merges");
  expect_error(load_error(j.dump()), {"model.merges", "missing"});
}

TEST(Errors, UnsupportedModelTypesAreRefusedByName) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    json j = minimal();
    j["model"]["type"] = type;
    expect_error(load_error(j.dump()), {"model.type", type, "not supported"});
  }
}

TEST(Errors, MergesReferringToUnknownTokens) {
  json j = minimal();
  j["model"]["merges"] = {"a b", "a c"};
  expect_error(load_error(j.dump()), {"model.merges[1]", "'c'", "not in the vocabulary"});
  j["model"]["merges"] = {"b a"};  // "ba" is not a token
  expect_error(load_error(j.dump()), {"model.merges[0]", "'ba'", "not in the vocabulary"});
}

TEST(Errors, WrongTypes) {
  json j = minimal();
  j["model"]["vocab"]["a"] = "zero";
  expect_error(load_error(j.dump()), {"model.vocab['a']", "expected an integer id", "string"});
  j = minimal();
  j["model"]["vocab"] = json::array({"a", "b"});
  expect_error(load_error(j.dump()), {"model.vocab", "expected an object"});
  j = minimal();
  j["model"]["merges"] = {5};
  expect_error(load_error(j.dump()), {"model.merges[0]", "number"});
  j["model"]["merges"] = {"ab"};
  expect_error(load_error(j.dump()), {"model.merges[0]", "two tokens and one space"});
  j["model"]["merges"] = json::array({json::array({"a", "b", "c"})});
  expect_error(load_error(j.dump()), {"model.merges[0]", "[left, right]"});
  j = minimal();
  j["added_tokens"] = json::array({{{"id", "7"}, {"content", "<x>"}}});
  expect_error(load_error(j.dump()), {"added_tokens[0].id", "expected an integer"});
  j = minimal();
  j["model"]["byte_fallback"] = "yes";
  expect_error(load_error(j.dump()), {"model.byte_fallback", "expected true or false"});
  j = minimal();
  j["model"]["vocab"]["huge"] = 2000000000;
  expect_error(load_error(j.dump()), {"model.vocab['huge']", "out of range"});
  j = minimal();
  j["model"]["vocab"]["b2"] = 1;
  expect_error(load_error(j.dump()), {"already used"});
}

TEST(Errors, UnsupportedComponentsAreRefusedByName) {
  struct Case {
    const char* field;
    json value;
    const char* fragment;
  };
  std::vector<Case> cases = {
      {"normalizer", {{"type", "BertNormalizer"}}, "normalizer.type"},
      {"normalizer", {{"type", "Precompiled"}}, "Precompiled"},
      {"pre_tokenizer", {{"type", "Digits"}}, "pre_tokenizer.type"},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}}, "behavior"},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "("}}}}, "does not compile"},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "a\\Kb"}}}}, "\\K"},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(?x)a"}}}}, "(?x"},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Oops", "a"}}}}, "pre_tokenizer.pattern"},
      {"decoder", {{"type", "WordPiece"}}, "decoder.type"},
      {"post_processor", {{"type", "Magic"}}, "post_processor.type"},
      {"post_processor", {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<nope>"}}}}}}}, "'<nope>'"},
  };
  for (const Case& c : cases) {
    json j = minimal();
    j[c.field] = c.value;
    expect_error(load_error(j.dump()), {"bad/tokenizer.json", c.fragment});
  }
}

TEST(Errors, BadConfig) {
  expect_error(load_error(minimal().dump(), R"({"bos_token": "<s>"})"), {"tokenizer_config", "bos_token", "'<s>'", "not in the vocabulary"});
  expect_error(load_error(minimal().dump(), R"({"add_bos_token": 1})"), {"tokenizer_config", "add_bos_token", "expected true or false"});
  expect_error(load_error(minimal().dump(), "[]"), {"tokenizer_config", "expected a JSON object"});
  expect_error(load_error(minimal().dump(), "{"), {"tokenizer_config", "invalid JSON"});
}

TEST(Errors, MissingFiles) {
  expect_error(error_of([] { Tokenizer::from_hf_json("/nonexistent/tokenizer.json"); }), {"/nonexistent/tokenizer.json"});
  expect_error(error_of([] { Tokenizer::from_llama2c("/nonexistent/tokenizer.bin"); }), {"/nonexistent/tokenizer.bin"});
}

// ---------------------------------------------------------------------------------------------

std::string llama2c_error(const std::string& bytes) {
  return error_of([&] { Tokenizer::from_llama2c_bytes(bytes, "bad/tokenizer.bin"); });
}

TEST(Errors, TruncatedOrMalformedTokenizerBin) {
  const std::string good = read_file(testing::shared_path("models/stories260K/tok512.bin"));
  ASSERT_EQ(Tokenizer::from_llama2c_bytes(good, "tok512.bin")->vocab_size(), 512);
  expect_error(llama2c_error(""), {"bad/tokenizer.bin", "truncated", "max_token_length"});
  expect_error(llama2c_error(good.substr(0, 2)), {"truncated", "header"});
  expect_error(llama2c_error(good.substr(0, 4 + 5)), {"truncated at token 0", "score"});
  expect_error(llama2c_error(good.substr(0, 4 + 8 + 2)), {"truncated at token 0", "bytes of text"});
  expect_error(llama2c_error(good.substr(0, good.size() - 1)), {"truncated at token 511"});
  // Cut at a token boundary: too few tokens for the byte-fallback layout.
  size_t after_100 = 4;
  for (int i = 0; i < 100; ++i) {
    int32_t len;
    std::memcpy(&len, good.data() + after_100 + 4, 4);
    after_100 += 8 + static_cast<size_t>(len);
  }
  expect_error(llama2c_error(good.substr(0, after_100)), {"has 100 tokens", "at least 259"});

  std::string bad = good;
  int32_t v = 0;
  std::memcpy(bad.data(), &v, 4);
  expect_error(llama2c_error(bad), {"max_token_length", "got 0"});
  bad = good;
  v = -3;
  std::memcpy(bad.data() + 8, &v, 4);  // length of token 0
  expect_error(llama2c_error(bad), {"token 0", "length -3"});
  bad = good;
  v = 100;
  std::memcpy(bad.data() + 8, &v, 4);
  expect_error(llama2c_error(bad), {"token 0", "length 100", "max_token_length"});
}

TEST(Errors, TokenizerBinContent) {
  const std::string good = read_file(testing::shared_path("models/stories260K/tok512.bin"));
  // Token 3 is "<0x00>": 4 (header) + <unk> (8+5) + "\n<s>\n" (8+5) + "\n</s>\n" (8+6) + 8.
  const size_t token3 = 4 + 13 + 13 + 14 + 8;
  ASSERT_EQ(good.substr(token3, 6), "<0x00>");
  std::string bad = good;
  bad[token3 + 3] = '7';
  expect_error(llama2c_error(bad), {"token 3", "'<0x70>'", "expected <0x00>"});
  bad = good;
  bad.replace(token3, 6, std::string("<0x0\xff>", 6));
  expect_error(llama2c_error(bad), {"token 3", "not valid UTF-8"});
  // Token 260 "he" becomes a second " t" (token 259).
  size_t at = 4;
  for (int i = 0; i < 260; ++i) {
    int32_t len;
    std::memcpy(&len, good.data() + at + 4, 4);
    at += 8 + static_cast<size_t>(len);
  }
  ASSERT_EQ(good.substr(at + 8, 2), "he");
  bad = good;
  bad.replace(at + 8, 2, " t");
  expect_error(llama2c_error(bad), {"token 260", "duplicates token 259"});
}

TEST(Errors, IdsOutOfRange) {
  auto t = Tokenizer::from_hf_json_text(minimal().dump(), "", "ok.json");
  for (int32_t id : {-1, 3, 1 << 30}) {
    std::vector<int32_t> ids{0, id};
    expect_error(error_of([&] { t->decode(ids); }), {"decode", "token id", std::to_string(id), "out of range"});
    expect_error(error_of([&] { t->id_to_token(id); }), {"id_to_token", std::to_string(id)});
    StreamDecoder stream(*t);
    expect_error(error_of([&] { stream.push(id); }), {"StreamDecoder", std::to_string(id)});
  }
  // An id inside the range that no token has.
  json j = minimal();
  j["model"]["vocab"]["gap"] = 10;
  auto gap = Tokenizer::from_hf_json_text(j.dump(), "", "gap.json");
  EXPECT_EQ(gap->vocab_size(), 11);
  expect_error(error_of([&] { gap->decode(std::vector<int32_t>{5}); }), {"decode", "token id 5", "no token"});
  EXPECT_FALSE(gap->is_special(-1));
  EXPECT_FALSE(gap->is_special(99));
}

}  // namespace
}  // namespace qs
