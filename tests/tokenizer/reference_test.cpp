// Identical ids to the transformers.js reference (@lenml/tokenizers 3.7.2) for the three shared
// tokenizers on the full text of the shared evaluation data, and decode(encode(x)) == x.
//
// Documents (the same strings go to both implementations):
//  - WikiText-2 test (canonical layout): the whole file, each article (from one " = Title = "
//    heading to the next) and each line.
//  - GSM8K test, train, test_socratic: each whole .jsonl file, and each record's question and
//    answer (JSON-decoded: real newlines and Unicode punctuation).
//  - MMLU dev + test: each whole .csv file and each line (a row).
//  - HellaSwag validation: the whole file and each line (contexts and endings, the pieces an
//    evaluator encodes).
// Whole files (up to 7.8 MB, one document) are the hardest test of pre-tokenization across
// newlines; they are used for the byte-level tokenizers (Llama-3, Qwen3). The Llama-2-style
// tokenizer has no pre-tokenizer (a whole text is one BPE word) and transformers.js needs
// minutes per megabyte on such documents, so for it the multi-line documents are the WikiText
// articles and the GSM8K answers (and TinyStories stories in llama2c_test.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "tokenizer/reference.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace qs {
namespace {

using testing::Corpus;
using testing::shared_path;
using testing::split_lines;

Corpus wikitext(bool whole_files) {
  Corpus c{"wikitext", {}, {}};
  const std::string rel = "data/wikitext-2-raw/canonical-layout/wiki.test.raw";
  std::string text = read_text_file(shared_path(rel));
  if (whole_files) c.add(text, rel);
  std::vector<std::string> lines = split_lines(text);
  for (auto& [line, article] : testing::wikitext_articles(lines)) c.add(article, cat(rel, ": article at line ", line));
  for (size_t i = 0; i < lines.size(); ++i) c.add(lines[i], cat(rel, ":", i + 1));
  return c;
}

Corpus gsm8k(bool whole_files) {
  Corpus c{"gsm8k", {}, {}};
  for (const char* name : {"test", "train", "test_socratic"}) {
    std::string rel = cat("data/gsm8k/", name, ".jsonl");
    std::string text = read_text_file(shared_path(rel));
    if (whole_files) c.add(text, rel);
    std::vector<std::string> lines = split_lines(text);
    for (size_t i = 0; i < lines.size(); ++i) {
      auto record = nlohmann::json::parse(lines[i]);
      c.add(record.at("question").get<std::string>(), cat(rel, ":", i + 1, " question"));
      c.add(record.at("answer").get<std::string>(), cat(rel, ":", i + 1, " answer"));
    }
  }
  return c;
}

Corpus mmlu(bool whole_files) {
  Corpus c{"mmlu", {}, {}};
  for (const char* split : {"dev", "test"}) {
    for (const std::string& path : testing::files_in(shared_path(cat("data/mmlu/", split)), ".csv")) {
      std::string text = read_text_file(path);
      if (whole_files) c.add(text, path);
      std::vector<std::string> lines = split_lines(text);
      for (size_t i = 0; i < lines.size(); ++i) c.add(lines[i], cat(path, ":", i + 1));
    }
  }
  return c;
}

Corpus hellaswag(bool whole_files) {
  Corpus c{"hellaswag", {}, {}};
  const std::string rel = "data/hellaswag/hellaswag_val_full.txt";
  std::string text = read_text_file(shared_path(rel));
  if (whole_files) c.add(text, rel);
  std::vector<std::string> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) c.add(lines[i], cat(rel, ":", i + 1));
  return c;
}

std::string tokenizer_dir(const std::string& name) { return shared_path("tokenizers/" + name); }

// What decode(encode(x)) gives back: x itself, after the tokenizer's normalizer (NFC for Qwen).
std::string round_trip_expectation(const std::string& name, const std::string& doc) {
  return name == "qwen3" ? tok::normalize_unicode(doc, tok::UnicodeForm::kNFC) : doc;
}

void compare_with_reference(const std::string& name, const Corpus& corpus, bool check_decode) {
  auto tok = Tokenizer::load(tokenizer_dir(name));
  testing::ReferenceResult ref = testing::run_reference({name, name, "", ""}, corpus, /*add_special=*/true, check_decode);
  ASSERT_EQ(ref.error, "");
  size_t identical = 0, tokens = 0, round_trips = 0, decodes = 0;
  int shown = 0;
  for (size_t i = 0; i < corpus.docs.size(); ++i) {
    std::vector<int32_t> ids = tok->encode(corpus.docs[i], true);
    tokens += ids.size();
    if (ids == ref.ids[i]) {
      ++identical;
    } else if (shown++ < 5) {
      ADD_FAILURE() << name << " differs from transformers.js on " << corpus.labels[i] << ": "
                    << testing::describe_mismatch(*tok, ids, ref.ids[i]);
    }
    std::string back = tok->decode(ids);
    if (back == round_trip_expectation(name, corpus.docs[i])) {
      ++round_trips;
    } else if (shown++ < 5) {
      ADD_FAILURE() << name << ": decode(encode(x)) != x for " << corpus.labels[i];
    }
    if (check_decode) {
      if (tok->decode(ref.ids[i]) == ref.decoded[i]) {
        ++decodes;
      } else if (shown++ < 5) {
        ADD_FAILURE() << name << ": decode differs from transformers.js for " << corpus.labels[i];
      }
    }
  }
  std::printf("%s %s: %zu documents, %zu identical ids (%zu tokens), %zu round trips%s\n", name.c_str(),
              corpus.name.c_str(), corpus.docs.size(), identical, tokens, round_trips,
              check_decode ? cat(", ", decodes, " identical decodes").c_str() : "");
  EXPECT_EQ(identical, corpus.docs.size());
  EXPECT_EQ(round_trips, corpus.docs.size());
  if (check_decode) {
    EXPECT_EQ(decodes, corpus.docs.size());
  }
}

bool byte_level(const std::string& name) { return name != "llama2"; }

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, WikiText) { compare_with_reference(GetParam(), wikitext(byte_level(GetParam())), true); }
TEST_P(Reference, Gsm8k) { compare_with_reference(GetParam(), gsm8k(byte_level(GetParam())), false); }
TEST_P(Reference, Mmlu) { compare_with_reference(GetParam(), mmlu(byte_level(GetParam())), false); }
TEST_P(Reference, HellaSwag) { compare_with_reference(GetParam(), hellaswag(byte_level(GetParam())), false); }

// A shared tokenizer.json with some components replaced, against transformers.js on the
// WikiText articles and lines.
void compare_variant(const std::string& label, const nlohmann::json& tokenizer_json, bool check_decode) {
  Corpus corpus = wikitext(false);
  corpus.name = "wikitext-parts";
  std::string dir = testing::binary_dir() + "/test-exports/" + label;
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/tokenizer.json", tokenizer_json.dump());
  auto tok = Tokenizer::from_hf_json(dir + "/tokenizer.json");
  testing::ReferenceResult ref = testing::run_reference({label, "", dir + "/tokenizer.json", ""}, corpus, true, check_decode);
  ASSERT_EQ(ref.error, "");
  size_t identical = 0, decodes = 0;
  for (size_t i = 0; i < corpus.docs.size(); ++i) {
    std::vector<int32_t> ids = tok->encode(corpus.docs[i]);
    if (ids == ref.ids[i]) {
      ++identical;
    } else if (identical + 5 > i) {
      ADD_FAILURE() << label << " on " << corpus.labels[i] << ": " << testing::describe_mismatch(*tok, ids, ref.ids[i]);
    }
    if (check_decode && tok->decode(ref.ids[i]) == ref.decoded[i]) ++decodes;
  }
  std::printf("%s: %zu documents, %zu identical ids%s\n", label.c_str(), corpus.docs.size(), identical,
              check_decode ? cat(", ", decodes, " identical decodes").c_str() : "");
  EXPECT_EQ(identical, corpus.docs.size());
  if (check_decode) {
    EXPECT_EQ(decodes, corpus.docs.size());
  }
}

nlohmann::json shared_json(const std::string& name) {
  return nlohmann::json::parse(read_file(tokenizer_dir(name) + "/tokenizer.json"));
}

// GPT-2's split regex (the ByteLevel pre-tokenizer with use_regex, with and without a prefix
// space), run with Llama-3's vocabulary and merges: the shared files have no GPT-2 tokenizer.
TEST(ReferenceVariants, Gpt2SplitRegex) {
  for (bool prefix_space : {false, true}) {
    nlohmann::json j = shared_json("llama3");
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", prefix_space}, {"trim_offsets", true}, {"use_regex", true}};
    compare_variant(prefix_space ? "gpt2-split-prefix" : "gpt2-split", j, false);
  }
}

// The newer SentencePiece-style layout: no normalizer, a Metaspace pre-tokenizer and decoder.
TEST(ReferenceVariants, MetaspacePreTokenizer) {
  nlohmann::json j = shared_json("llama2");
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", true}, {"prepend_scheme", "always"}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", nlohmann::json::array({{{"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", true}, {"prepend_scheme", "always"}},
                                                      {{"type", "ByteFallback"}},
                                                      {{"type", "Fuse"}}})}};
  compare_variant("metaspace", j, true);
}

// Ill-formed UTF-8: we replace each maximal ill-formed subpart by U+FFFD, as node's UTF-8
// decoder does when it reads the same bytes from a file.
TEST_P(Reference, IllFormedUtf8LikeNodeReadsIt) {
  std::string bytes = std::string("caf\xC3\xA9 ok \xFF\xFE x\xE2\x82 y \xF0\x9F\x98 z \xC0\xAF\xED\xA0\x80 ") +
                      "\xF4\x90\x80\x80 end\n\xE6\x9D\xB1\xE4\xBA";
  std::string dir = testing::make_temp_dir("ill-formed");
  write_file_atomic(dir + "/text.bin", bytes);
  auto tok = Tokenizer::load(tokenizer_dir(GetParam()));
  testing::ReferenceResult ref =
      testing::run_reference({GetParam(), GetParam(), "", ""}, Corpus{"ill-formed", {}, {}}, true, false, dir + "/text.bin");
  ASSERT_EQ(ref.error, "");
  EXPECT_EQ(tok->encode(bytes), ref.ids[0]);
  EXPECT_EQ(tok->decode(tok->encode(bytes)), round_trip_expectation(GetParam(), tok::to_valid_utf8(bytes)));
}

INSTANTIATE_TEST_SUITE_P(SharedTokenizers, Reference, ::testing::Values("llama3", "qwen3", "llama2"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qs
