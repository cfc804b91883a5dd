// llama2.c tokenizer.bin: ids identical to llama2.c's run.c (a Python transcription of its
// encode loop), and the exported tokenizer.json encodes exactly like the .bin, in our engine
// and in transformers.js.
//
// Documents: TinyStories validation (the whole file, each story, each line), WikiText-2 test
// (each article, each line) and a set of edge cases (runs of spaces and newlines around words,
// accents, CJK, emoji, digits, empty text).
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/reference.h"
#include "tokenizer/tokenizer.h"

namespace qs {
namespace {

using json = nlohmann::json;
using testing::Corpus;
using testing::shared_path;
using testing::split_lines;

std::string bin_path(const std::string& name) {
  return name == "tok512" ? shared_path("models/stories260K/tok512.bin") : shared_path("tokenizers/llama2/tokenizer.bin");
}

std::vector<std::string> edge_cases() {
  std::vector<std::string> out = {"",       " ",        "Once upon a time",     "naïve café — 東京タワー 🙂👍🏽",
                                  "x",      "\n",       "3.14159 1,000,000 42", "Hello\tworld\r\n",
                                  "ababab", "aaaaaaaa", "Lily's \"red\" ball!", "中文字符和日本語の文字"};
  for (int n = 1; n <= 40; ++n) {
    std::string spaces(static_cast<size_t>(n), ' ');
    for (const std::string& s : {"a" + spaces + "b", spaces + "x", "x" + spaces, "\n" + spaces + "y", spaces,
                                 "The" + spaces + "end." + spaces + "\n" + spaces + "Next"})
      out.push_back(s);
  }
  return out;
}

Corpus tinystories(bool whole_file, size_t max_line_bytes) {
  Corpus c{"tinystories", {}, {}};
  const std::string rel = "data/tinystories/tinystories_val.txt";
  std::string text = read_text_file(shared_path(rel));
  if (whole_file) c.add(text, rel);
  std::vector<std::string> lines = split_lines(text);
  std::string story;
  size_t first = 1;
  for (size_t i = 0; i <= lines.size(); ++i) {
    bool end = i == lines.size() || lines[i].empty();
    if (end && !story.empty()) {
      if (max_line_bytes == 0) c.add(story, cat(rel, ": story at line ", first));
      story.clear();
    }
    if (i == lines.size()) break;
    if (!end) {
      if (story.empty()) first = i + 1;
      story += (story.empty() ? "" : "\n") + lines[i];
    }
  }
  for (size_t i = 0; i < lines.size(); ++i)
    if (max_line_bytes == 0 || lines[i].size() <= max_line_bytes) c.add(lines[i], cat(rel, ":", i + 1));
  for (const std::string& e : edge_cases()) c.add(e, "edge case " + json(e).dump());
  return c;
}

Corpus wikitext_parts() {
  Corpus c{"wikitext", {}, {}};
  const std::string rel = "data/wikitext-2-raw/canonical-layout/wiki.test.raw";
  std::vector<std::string> lines = split_lines(read_text_file(shared_path(rel)));
  for (auto& [line, article] : testing::wikitext_articles(lines)) c.add(article, cat(rel, ": article at line ", line));
  for (size_t i = 0; i < lines.size(); ++i) c.add(lines[i], cat(rel, ":", i + 1));
  return c;
}

// run.c's ids from llama2c_reference.py, cached in the build tree like the node reference.
std::vector<std::vector<int32_t>> run_c_reference(const std::string& bin, const Corpus& corpus) {
  const std::string script = testing::source_dir() + "/tests/tokenizer/llama2c_reference.py";
  std::string docs = json(corpus.docs).dump();
  uint64_t h = testing::fnv1a(read_file(bin), testing::fnv1a(read_file(script), testing::fnv1a(docs)));
  std::string dir = testing::binary_dir() + "/node-ref/cache";
  std::filesystem::create_directories(dir);
  std::string out = cat(dir, "/runc-", std::filesystem::path(bin).stem().string(), "-", h, ".json");
  if (!file_exists(out)) {
    std::string in = out + ".docs.json";
    write_file_atomic(in, docs);
    testing::CommandResult r = testing::run_command(testing::python() + " " + testing::shell_quote(script) + " " +
                                                    testing::shell_quote(bin) + " " + testing::shell_quote(in) + " " +
                                                    testing::shell_quote(out + ".tmp") + " && mv " +
                                                    testing::shell_quote(out + ".tmp") + " " + testing::shell_quote(out));
    std::filesystem::remove(in);
    if (r.exit_code != 0) throw Error("llama2c_reference.py failed: " + r.err);
  }
  return json::parse(read_file(out)).get<std::vector<std::vector<int32_t>>>();
}

bool has_special_text(const std::string& s) {
  return s.find("<s>") != std::string::npos || s.find("</s>") != std::string::npos || s.find("<unk>") != std::string::npos;
}

class Llama2c : public ::testing::TestWithParam<std::string> {};

TEST_P(Llama2c, MatchesRunC) {
  auto tok = Tokenizer::from_llama2c(bin_path(GetParam()));
  Corpus corpus = tinystories(false, 400);  // run.c's naive loop is quadratic: lines up to 400 bytes
  std::vector<std::vector<int32_t>> ref = run_c_reference(bin_path(GetParam()), corpus);
  ASSERT_EQ(ref.size(), corpus.docs.size());
  size_t identical = 0;
  for (size_t i = 0; i < corpus.docs.size(); ++i) {
    ASSERT_FALSE(has_special_text(corpus.docs[i]));
    std::vector<int32_t> ids = tok->encode(corpus.docs[i], true);
    if (ids == ref[i]) {
      ++identical;
    } else if (identical + 5 > i) {
      ADD_FAILURE() << GetParam() << " differs from run.c on " << corpus.labels[i] << ": " << testing::describe_mismatch(*tok, ids, ref[i]);
    }
  }
  std::printf("%s: %zu documents, %zu identical to run.c\n", GetParam().c_str(), corpus.docs.size(), identical);
  EXPECT_EQ(identical, corpus.docs.size());
}

// Our engine reading the exported tokenizer.json (rank-ordered merges, HF semantics) against our
// engine reading the .bin (score-ordered merges, llama2.c semantics).
TEST_P(Llama2c, ExportedJsonEncodesIdentically) {
  auto bin = Tokenizer::from_llama2c(bin_path(GetParam()));
  auto exported = Tokenizer::from_hf_json_text(bin->to_hf_json().dump(), bin->to_hf_config_json().dump(), "exported.json");
  EXPECT_EQ(exported->vocab_size(), bin->vocab_size());
  EXPECT_EQ(exported->bos_id(), 1);
  EXPECT_EQ(exported->eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_TRUE(exported->adds_bos());
  for (const Corpus& corpus : {tinystories(true, 0), wikitext_parts()}) {
    size_t identical = 0, round_trips = 0;
    int shown = 0;
    for (size_t i = 0; i < corpus.docs.size(); ++i) {
      std::vector<int32_t> ids = bin->encode(corpus.docs[i]);
      std::vector<int32_t> ids2 = exported->encode(corpus.docs[i]);
      if (ids == ids2) {
        ++identical;
      } else if (shown++ < 5) {
        ADD_FAILURE() << corpus.labels[i] << ": " << testing::describe_mismatch(*bin, ids2, ids);
      }
      if (bin->decode(ids) == corpus.docs[i]) {
        ++round_trips;
      } else if (shown++ < 5) {
        ADD_FAILURE() << "decode(encode(x)) != x for " << corpus.labels[i];
      }
    }
    std::printf("%s %s: %zu documents, %zu identical ids from .bin and exported tokenizer.json, %zu round trips\n",
                GetParam().c_str(), corpus.name.c_str(), corpus.docs.size(), identical, round_trips);
    EXPECT_EQ(identical, corpus.docs.size());
    EXPECT_EQ(round_trips, corpus.docs.size());
  }
}

TEST_P(Llama2c, ExportedJsonMatchesTransformersJs) {
  auto bin = Tokenizer::from_llama2c(bin_path(GetParam()));
  std::string dir = testing::binary_dir() + "/test-exports/" + GetParam();
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/tokenizer.json", bin->to_hf_json().dump());
  write_file_atomic(dir + "/tokenizer_config.json", bin->to_hf_config_json().dump());
  Corpus corpus = tinystories(false, 0);
  testing::ReferenceResult ref = testing::run_reference(
      {"export-" + GetParam(), "", dir + "/tokenizer.json", dir + "/tokenizer_config.json"}, corpus, true, true);
  ASSERT_EQ(ref.error, "");
  size_t identical = 0, decodes = 0;
  int shown = 0;
  for (size_t i = 0; i < corpus.docs.size(); ++i) {
    std::vector<int32_t> ids = bin->encode(corpus.docs[i]);
    if (ids == ref.ids[i]) {
      ++identical;
    } else if (shown++ < 5) {
      ADD_FAILURE() << corpus.labels[i] << ": " << testing::describe_mismatch(*bin, ids, ref.ids[i]);
    }
    if (bin->decode(ref.ids[i]) == ref.decoded[i]) ++decodes;
  }
  std::printf("%s: %zu documents, %zu identical ids from the .bin and transformers.js on the exported JSON, %zu decodes\n",
              GetParam().c_str(), corpus.docs.size(), identical, decodes);
  EXPECT_EQ(identical, corpus.docs.size());
  EXPECT_EQ(decodes, corpus.docs.size());
}

INSTANTIATE_TEST_SUITE_P(Bins, Llama2c, ::testing::Values("tok512", "llama2"), [](const auto& info) { return info.param; });

TEST(Llama2cFormat, ReadsStories260KTokenizer) {
  auto tok = Tokenizer::from_llama2c(bin_path("tok512"));
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok->id_to_token(1), "<s>");
  EXPECT_EQ(tok->id_to_token(259), "▁t");  // stored as " t"
  EXPECT_EQ(tok->id_to_token(3), "<0x00>");
  // Ids checked against run.c (llama2c_reference.py): BOS, "▁Once", "▁upon", "▁a", "▁time".
  EXPECT_EQ(tok->encode("Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 403, 407, 261, 378}), "Once upon a time");
  EXPECT_EQ(tok->encode(""), (std::vector<int32_t>{1}));  // no dummy prefix for empty text
}

TEST(Llama2cFormat, LiteralMetaspaceIsTheOneDifferenceOfTheExport) {
  auto bin = Tokenizer::from_llama2c(bin_path("llama2"));
  auto exported = Tokenizer::from_hf_json_text(bin->to_hf_json().dump(), bin->to_hf_config_json().dump(), "exported.json");
  // llama2.c has no piece for the character "▁" (it stores spaces as " "): byte fallback E2 96 81.
  EXPECT_EQ(bin->encode("a▁b", false), (std::vector<int32_t>{263, 229, 153, 132, 29890}));
  // HF turns spaces into "▁" before matching, so there "▁" is a space.
  EXPECT_EQ(exported->encode("a▁b", false), exported->encode("a b", false));
}

TEST(Llama2cFormat, SpecialTokensInTextAreRecognized) {
  auto tok = Tokenizer::from_llama2c(bin_path("tok512"));
  std::vector<int32_t> ids = tok->encode("<s>Hi</s>", false);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_EQ(tok->decode(ids, false), "<s> Hi</s>");
}

}  // namespace
}  // namespace qs
