// Prompt sources and their encoding for paired generation: files, chat templates (the published
// Qwen3 and Llama-3 chat formats), long prompts refused or truncated, malformed files.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "fidelity/paired_generation.h"
#include "fidelity/prompts.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace qs::fidelity {
namespace {

std::string tokenizer_path(const char* name) { return testing::shared_dir() + "/tokenizers/" + name + "/tokenizer.json"; }

PromptSet one_prompt(const std::string& text) {
  PromptSet s;
  s.source = "test";
  s.prompts.push_back({"p1", text, std::nullopt});
  return s;
}

TEST(ChatPrompts, Qwen3FormatsOneUserTurnWithTheGenerationPrompt) {
  auto tok = Tokenizer::load(tokenizer_path("qwen3"));
  ASSERT_FALSE(tok->chat_template().empty());
  const auto e = encode_prompts(one_prompt("What is 2+2?"), *tok, true, 1000, LongPromptPolicy::Refuse);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(tok->decode(e[0].tokens, false), "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  // The chat markers are single special tokens, not text.
  EXPECT_EQ(e[0].tokens.front(), tok->encode("<|im_start|>", false).front());
  EXPECT_EQ(tok->encode("<|im_start|>", false).size(), 1u);
}

TEST(ChatPrompts, Llama3FormatStartsWithBosOnce) {
  auto tok = Tokenizer::load(tokenizer_path("llama3"));
  const auto e = encode_prompts(one_prompt("Hi"), *tok, true, 1000, LongPromptPolicy::Refuse);
  const std::string text = tok->decode(e[0].tokens, false);
  EXPECT_EQ(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(std::count(e[0].tokens.begin(), e[0].tokens.end(), *tok->bos_id()), 1);
}

TEST(ChatPrompts, TokenizerWithoutTemplateIsAnError) {
  auto tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  EXPECT_THROW(encode_prompts(one_prompt("Hi"), *tok, true, 100, LongPromptPolicy::Refuse), Error);
  // Without --chat the raw text is encoded with BOS.
  const auto e = encode_prompts(one_prompt("Hi"), *tok, false, 100, LongPromptPolicy::Refuse);
  EXPECT_EQ(e[0].tokens, tok->encode("Hi", true));
}

TEST(LongPrompts, RefusedByNameOrTruncatedToTheirLastTokens) {
  auto tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  std::string text;
  for (int i = 0; i < 50; ++i) text += "the dog ran to the park. ";
  const std::vector<int32_t> all = tok->encode(text, true);
  ASSERT_GT(all.size(), 40u);
  try {
    encode_prompts(one_prompt(text), *tok, false, 40, LongPromptPolicy::Refuse);
    ADD_FAILURE() << "a long prompt was not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("p1"), std::string::npos) << e.what();
  }
  const auto t = encode_prompts(one_prompt(text), *tok, false, 40, LongPromptPolicy::Truncate);
  ASSERT_EQ(t[0].tokens.size(), 40u);
  EXPECT_TRUE(std::equal(t[0].tokens.begin(), t[0].tokens.end(), all.end() - 40));
}

TEST(PromptFiles, JsonlFieldsIdsAnswersAndErrors) {
  const std::string dir = testing::make_temp_dir("prompts");
  write_file_atomic(dir + "/p.jsonl", "{\"id\": \"a\", \"q\": \"first\", \"answer\": \"1\"}\n\n{\"q\": \"second\"}\n");
  const PromptSet s = load_prompts(dir + "/p.jsonl", "q");
  ASSERT_EQ(s.prompts.size(), 2u);
  EXPECT_EQ(s.prompts[0].id, "a");
  EXPECT_EQ(s.prompts[0].answer.value_or(""), "1");
  EXPECT_EQ(s.prompts[1].id, "3");  // line number when there is no id
  EXPECT_EQ(load_prompts(dir + "/p.jsonl", "q", 1).prompts.size(), 1u);
  auto error_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of([&] { load_prompts(dir + "/p.jsonl", "prompt"); }).find("p.jsonl:1"), std::string::npos);
  write_file_atomic(dir + "/bad.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \n");
  EXPECT_NE(error_of([&] { load_prompts(dir + "/bad.jsonl"); }).find("bad.jsonl:2"), std::string::npos);
  write_file_atomic(dir + "/empty.txt", "");
  EXPECT_NE(error_of([&] { load_prompts(dir + "/empty.txt"); }).find("empty.txt"), std::string::npos);
}

}  // namespace
}  // namespace qs::fidelity
