// The qstudy binary end to end: outputs, JSON shapes, determinism, and one-line errors with a
// non-zero exit for bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/files.h"
#include "testing/testing.h"

namespace qs {
namespace {

using testing::run_command;
using testing::shell_quote;

std::string qstudy(const std::string& args) { return testing::qstudy_exe() + " " + args; }
std::string stories() { return testing::shared_dir() + "/models/stories260K"; }

// The greedy continuation ../shared/README.md records for stories260K.
std::string recorded_greedy_text() {
  std::string readme = read_file(testing::shared_dir() + "/README.md");
  std::string flat = std::regex_replace(readme, std::regex("\\s+"), " ");
  std::smatch m;
  EXPECT_TRUE(std::regex_search(flat, m, std::regex("yields: \"([^\"]+)\"")));
  return m[1];
}

void expect_one_line_error(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
  EXPECT_EQ(r.err.rfind("qstudy: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(Cli, Stories260KGreedyGivesTheRecordedText) {
  const std::string expected = recorded_greedy_text();
  ASSERT_FALSE(expected.empty());
  auto r = run_command(qstudy("generate --model " + stories() + " --prompt 'Once upon a time' --max-new-tokens 64 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const std::string text = "Once upon a time" + j["text"].get<std::string>();
  EXPECT_EQ(text.substr(0, expected.size()), expected);
  for (const char* key : {"text", "tokens", "prompt_tokens", "generated_tokens", "prefill_tok_s", "decode_tok_s"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["prompt_tokens"], 5);
  EXPECT_EQ(j["generated_tokens"].get<size_t>(), j["tokens"].size());
  // Streaming text mode prints the same continuation.
  auto s = run_command(qstudy("generate --model " + stories() + " --prompt 'Once upon a time' --max-new-tokens 64 -q"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.out.substr(0, expected.size()), expected);
}

TEST(Cli, SameSeedSameSample) {
  const std::string cmd = "generate --model " + stories() + " --prompt 'The dog' --max-new-tokens 30 --temperature 0.9 "
                          "--top-p 0.95 --json -q --seed ";
  auto a = run_command(qstudy(cmd + "7")), b = run_command(qstudy(cmd + "7")), c = run_command(qstudy(cmd + "8"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto ta = nlohmann::json::parse(a.out)["tokens"], tb = nlohmann::json::parse(b.out)["tokens"],
       tc = nlohmann::json::parse(c.out)["tokens"];
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(Cli, PerplexityJson) {
  auto r = run_command(qstudy("perplexity --model " + stories() + " --file " + testing::shared_dir() +
                              "/data/tinystories/tinystories_val.txt --chunks 3 --ctx 256 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"ppl", "ppl_stderr", "tokens_scored", "chunks", "ctx"}) EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["chunks"], 3);
  EXPECT_EQ(j["ctx"], 256);
  EXPECT_EQ(j["tokens_scored"], 3 * (256 - 1 - 128));
  EXPECT_GT(j["ppl"].get<double>(), 1.5);
  EXPECT_LT(j["ppl"].get<double>(), 20);  // in-domain text for a TinyStories model
}

TEST(Cli, BenchJson) {
  auto r = run_command(qstudy("bench --model " + stories() + " --prompt-tokens 32 --gen-tokens 16 -r 1 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"prefill_tok_s", "decode_tok_s", "model_bytes", "peak_rss_bytes", "bandwidth_gb_s",
                          "decode_roofline_pct"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(j["bandwidth_gb_s"].get<double>(), 0.5);
  EXPECT_EQ(j["model_bytes"].get<int64_t>(), 1040128);  // 260,032 f32 parameters
}

TEST(Cli, ConvertedModelGeneratesTheSameText) {
  const std::string out = testing::make_temp_dir("convert") + "/hf";
  auto c = run_command(qstudy("convert --model " + stories() + " --out " + out + " -q"));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(file_exists(out + "/" + f)) << f;
  const std::string gen = " --prompt 'Once upon a time there was' --max-new-tokens 60 --json -q";
  auto a = run_command(qstudy("generate --model " + stories() + gen));
  auto b = run_command(qstudy("generate --model " + out + gen));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["tokens"], nlohmann::json::parse(b.out)["tokens"]);
  auto t1 = run_command(qstudy("tokenize --model " + stories() + " --file " + testing::shared_dir() +
                               "/data/tinystories/tinystories_val.txt"));
  auto t2 = run_command(qstudy("tokenize --model " + out + " --file " + testing::shared_dir() +
                               "/data/tinystories/tinystories_val.txt"));
  ASSERT_EQ(t1.exit_code, 0) << t1.err;
  EXPECT_EQ(t1.out, t2.out);
}

TEST(Cli, SynthAndInfo) {
  const std::string out = testing::make_temp_dir("synth") + "/m";
  auto r = run_command(qstudy("synth --preset tiny-qwen3 --out " + out + " -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto i = run_command(qstudy("info --model " + out + " --json"));
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto j = nlohmann::json::parse(i.out);
  EXPECT_EQ(j["model"]["model_type"], "qwen3");
  EXPECT_EQ(j["model"]["head_dim"], 32);
  auto l = run_command(qstudy("synth --list"));
  EXPECT_NE(l.out.find("llama-3.2-1b"), std::string::npos);
}

TEST(Cli, HelpForEveryCommand) {
  auto h = run_command(qstudy("help"));
  EXPECT_EQ(h.exit_code, 0);
  for (const char* cmd : {"generate", "perplexity", "bench", "synth", "convert", "tokenize", "info"}) {
    EXPECT_NE(h.out.find(cmd), std::string::npos) << cmd;
    auto c = run_command(qstudy(std::string(cmd) + " --help"));
    EXPECT_EQ(c.exit_code, 0) << cmd;
    EXPECT_NE(c.out.find("Usage"), std::string::npos) << cmd;
  }
}

TEST(Cli, BadInputIsOneLineError) {
  const std::string dir = testing::make_temp_dir("bad");
  expect_one_line_error(run_command(qstudy("generate --model " + dir + "/nope --prompt hi")), "no such file");
  expect_one_line_error(run_command(qstudy("generate --model " + stories() + " --prompt hi --temperature -1")),
                        "--temperature");
  expect_one_line_error(run_command(qstudy("generate --model " + stories() + " --prompt hi --top-p 1.5")), "--top-p");
  testing::write_text(dir + "/empty.txt", "");
  expect_one_line_error(run_command(qstudy("perplexity --model " + stories() + " --file " + dir + "/empty.txt")),
                        "empty.txt: file is empty");
  testing::write_text(dir + "/latin1.txt", std::string("caf\xe9 au lait", 12));
  expect_one_line_error(run_command(qstudy("perplexity --model " + stories() + " --file " + dir + "/latin1.txt")),
                        "invalid UTF-8 at byte offset 3");
  testing::write_text(dir + "/short.txt", "Once upon a time.");
  expect_one_line_error(run_command(qstudy("perplexity --model " + stories() + " --file " + dir + "/short.txt")),
                        "fewer than one chunk");
  // A HF directory whose config lacks a key, and one with a corrupt safetensors file.
  const std::string hf = dir + "/hf";
  ASSERT_EQ(run_command(qstudy("synth --preset tiny-llama3 --out " + hf + " -q")).exit_code, 0);
  std::string cfg = read_file(hf + "/config.json");
  auto j = nlohmann::json::parse(cfg);
  j.erase("num_attention_heads");
  testing::write_text(hf + "/config.json", j.dump());
  expect_one_line_error(run_command(qstudy("generate --model " + hf + " --prompt hi")), "missing key 'num_attention_heads'");
  testing::write_text(hf + "/config.json", cfg);
  testing::write_text(hf + "/model.safetensors", std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 14));
  expect_one_line_error(run_command(qstudy("generate --model " + hf + " --prompt hi")), "model.safetensors");
  // A tokenizer bigger than the model's vocabulary does not belong to it.
  expect_one_line_error(run_command(qstudy("generate --model " + stories() + " --tokenizer " + testing::shared_dir() +
                                           "/tokenizers/llama3/tokenizer.json --prompt hi")),
                        "do not belong together");
  testing::write_text(dir + "/tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
  expect_one_line_error(run_command(qstudy("tokenize --tokenizer " + dir + "/tokenizer.json --text hi")), "tokenizer.json");
  auto usage = run_command(qstudy("generate --prompt hi"));
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--model"), std::string::npos);
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

// Weights are used in place from the memory map: running a BF16 model costs about its weights in
// resident memory, not a second copy (which would double it).
TEST(Cli, PeakMemoryStaysCloseToTheWeights) {
  const std::string dir = testing::make_temp_dir("rss") + "/smollm2";
  auto s = testing::run_command(qstudy("synth --preset smollm2-135m --out " + dir + " -q"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = testing::run_command(
      qstudy("bench --model " + dir + " --prompt-tokens 64 --gen-tokens 8 -r 1 --no-roofline --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const double weights = j["model_bytes"].get<double>();
  const double peak = j["peak_rss_bytes"].get<double>();
  std::printf("smollm2-135m bf16: weights %.1f MiB, peak RSS %.1f MiB\n", weights / (1 << 20), peak / (1 << 20));
  EXPECT_GT(weights, 250e6);
  // Weights + tokenizer + activations for 64 tokens + KV cache: well under 1.3x the weights.
  EXPECT_LT(peak, 1.3 * weights);
}

}  // namespace
}  // namespace qs
