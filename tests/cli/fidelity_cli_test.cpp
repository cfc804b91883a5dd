// qstudy compare-gen and qstudy sweep end to end on stories260K: the JSON shapes the issue
// specifies, identical models give identical samples under every setting, an interrupted run
// resumes without regenerating, task prompts are graded, and bad requests fail before any work.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "testing/testing.h"

namespace qs {
namespace {

using nlohmann::json;
using testing::run_command;

std::string qstudy(const std::string& args) { return testing::qstudy_exe() + " " + args; }
std::string stories() { return testing::shared_dir() + "/models/stories260K"; }

const std::string& prompt_file() {
  static const std::string path = [] {
    const std::string p = testing::make_temp_dir("prompts") + "/prompts.txt";
    write_file_atomic(p, "Once upon a time\nThe little dog\n\nLily and Tom went to the park\nOne day, a big bear\n");
    return p;
  }();
  return path;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void expect_error(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("qstudy: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(CompareGenCli, JsonShapeAndQuantizedVariantsDrift) {
  auto r = run_command(qstudy("compare-gen --baseline " + stories() + " --variant nf4 --variant w8a8-int8 --prompts " +
                              prompt_file() + " -n 40 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["models"].size(), 2u);
  for (const auto& m : j["models"]) {
    for (const char* k : {"rouge1", "rouge2", "rougeL", "bleu", "chrf", "exact_match", "token_agreement", "semantic_sim"}) {
      ASSERT_TRUE(m.contains(k)) << k;
      ASSERT_TRUE(m.contains(std::string(k) + "_ci95")) << k;
      EXPECT_EQ(m[std::string(k) + "_ci95"].size(), 2u);
      EXPECT_LE(m[std::string(k) + "_ci95"][0].get<double>(), m[k].get<double>() + 1e-12) << k;
    }
    EXPECT_EQ(m["n"], 4);
  }
  EXPECT_EQ(j["models"][0]["model"], "nf4:rtn");
  // NF4 on a 260K-parameter model changes its greedy text; 8-bit changes it less.
  EXPECT_LT(j["models"][0]["rougeL"].get<double>(), 0.95);
  EXPECT_GE(j["models"][1]["rougeL"].get<double>(), j["models"][0]["rougeL"].get<double>());
}

// The same model as "quantized" model: every sample identical, under greedy and sampling.
TEST(CompareGenCli, IdenticalModelsGiveIdenticalSamplesUnderEverySetting) {
  for (const std::string setting : {"--temperature 0", "--temperature 0.8 --samples 3",
                                    "--temperature 1.2 --top-k 20 --top-p 0.9 --samples 2", "--temperature 0.6 --min-p 0.05"}) {
    auto r = run_command(qstudy("compare-gen --baseline " + stories() + " --model " + stories() + " --prompts " +
                                prompt_file() + " -n 32 --seed 5 --json -q " + setting));
    ASSERT_EQ(r.exit_code, 0) << setting << ": " << r.err;
    const json m = json::parse(r.out)["models"][0];
    EXPECT_EQ(m["identical_pct"].get<double>(), 100.0) << setting;
    for (const char* k : {"rouge1", "rougeL", "exact_match", "token_agreement"}) EXPECT_EQ(m[k].get<double>(), 1.0) << setting << " " << k;
    EXPECT_NEAR(m["semantic_sim"].get<double>(), 1.0, 1e-6) << setting;
    EXPECT_NEAR(m["bleu"].get<double>(), 100.0, 1e-9) << setting;
  }
}

TEST(CompareGenCli, InterruptedRunResumesWithoutRegenerating) {
  const std::string dir = testing::make_temp_dir("resume");
  const std::string cmd = qstudy("compare-gen --baseline " + stories() + " --variant q8_0 --fallback --prompts " +
                                 prompt_file() + " -n 24 --temperature 0.7 --samples 2 --out " + dir + " --json -q");
  auto first = run_command(cmd);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::vector<std::string> full = lines_of(dir + "/generations.jsonl");
  ASSERT_EQ(full.size(), 16u);  // 4 prompts x 2 samples x (baseline + variant)
  const json rec = json::parse(full[0]);
  for (const char* k : {"model", "settings", "prompt_id", "sample", "seed", "text", "tokens"}) EXPECT_TRUE(rec.contains(k)) << k;
  // Simulate an interruption: the last records never written, the one before cut mid-line.
  std::string kept;
  for (size_t i = 0; i < 10; ++i) kept += full[i] + "\n";
  kept += full[10].substr(0, full[10].size() / 2);
  write_file_atomic(dir + "/generations.jsonl", kept);
  auto again = run_command(cmd);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const std::vector<std::string> resumed = lines_of(dir + "/generations.jsonl");
  // Finished records are kept as they were (not regenerated), the rest generated again.
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(resumed[i], full[i]);
  size_t complete = 0;
  for (const auto& l : resumed)
    if (json::accept(l)) ++complete;
  EXPECT_EQ(complete, 16u);
  json a = json::parse(first.out), b = json::parse(again.out);
  EXPECT_EQ(a["models"][0]["rougeL"], b["models"][0]["rougeL"]);
  EXPECT_EQ(a["models"][0]["semantic_sim"], b["models"][0]["semantic_sim"]);
  // A complete run resumes to nothing to do: the file does not grow.
  ASSERT_EQ(run_command(cmd).exit_code, 0);
  EXPECT_EQ(lines_of(dir + "/generations.jsonl").size(), resumed.size());
}

TEST(CompareGenCli, TaskPromptsFromGsm8k) {
  auto r = run_command(qstudy("compare-gen --baseline " + stories() + " --model " + stories() +
                              " --prompts gsm8k --limit 3 --num-fewshot 1 --on-long truncate -n 16 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["models"][0]["n"], 3);
  EXPECT_EQ(j["prompts"], "gsm8k");
}

TEST(SweepCli, CurvesPerFormatAndSensitivity) {
  const std::string dir = testing::make_temp_dir("sweep");
  auto r = run_command(qstudy("sweep --baseline " + stories() + " --model " + stories() + " --variant nf4 --prompts " +
                              prompt_file() + " --temperature 0,0.5,1.0 --top-k 0,40 -n 24 --samples 2 --out " + dir +
                              " --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["curves"].size(), 3u);  // baseline, the same model, nf4
  for (const auto& c : j["curves"]) {
    ASSERT_EQ(c["points"].size(), 6u);
    for (const auto& p : c["points"]) {
      for (const char* k : {"temperature", "top_k", "distinct1", "distinct2", "self_bleu", "repetition", "mean_logprob",
                            "mean_logprob_ci95", "length", "decode_tok_s", "rss_bytes"})
        EXPECT_TRUE(p.contains(k)) << k;
      EXPECT_GT(p["length"].get<double>(), 0);
      EXPECT_TRUE(p["accuracy"].is_null());  // plain prompts have no answers
    }
  }
  // Greedy samples of one prompt are identical: self-BLEU 100; sampling diversifies.
  EXPECT_NEAR(j["curves"][0]["points"][0]["self_bleu"].get<double>(), 100.0, 1e-9);
  EXPECT_LT(j["curves"][0]["points"][2]["self_bleu"].get<double>(), 100.0);
  // The same model tracks the baseline exactly at every setting.
  for (const auto& p : j["curves"][1]["points"]) {
    EXPECT_EQ(p["rougeL"].get<double>(), 1.0) << p["setting"];
    EXPECT_NEAR(p["semantic_sim"].get<double>(), 1.0, 1e-6);
    EXPECT_EQ(p["mean_logprob"], j["curves"][0]["points"][&p - &j["curves"][1]["points"][0]]["mean_logprob"]);
  }
  ASSERT_EQ(j["sensitivity"].size(), 2u);
  EXPECT_NEAR(j["sensitivity"][0]["largest_rougeL_gap"]["gap"].get<double>(), 0.0, 1e-12);
  EXPECT_GT(j["sensitivity"][1]["largest_rougeL_gap"]["gap"].get<double>(), 0.05);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sweep.json"));
}

TEST(SweepCli, Gsm8kPromptsAreGraded) {
  auto r = run_command(qstudy("sweep --baseline " + stories() + " --variant q8_0 --fallback --prompts gsm8k --limit 2 "
                              "--num-fewshot 1 --on-long truncate --temperature 0,0.7 -n 8 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["graded"].get<bool>());
  for (const auto& c : j["curves"])
    for (const auto& p : c["points"]) {
      ASSERT_TRUE(p["accuracy"].is_number());
      EXPECT_GE(p["accuracy"].get<double>(), 0.0);
      EXPECT_EQ(p["accuracy_ci95"].size(), 2u);
    }
}

TEST(FidelityCli, BadRequestsFailBeforeAnyWork) {
  const std::string dir = testing::make_temp_dir("fidbad");
  const std::string empty = dir + "/empty.txt", blank = dir + "/blank.txt", long_prompt = dir + "/long.txt";
  write_file_atomic(empty, "");
  write_file_atomic(blank, "\n  \n\t\n");
  std::string words;
  for (int i = 0; i < 700; ++i) words += "the big dog ran ";
  write_file_atomic(long_prompt, words + "\n");
  const std::string base = "compare-gen --baseline " + stories() + " --model " + stories() + " -q ";
  expect_error(run_command(qstudy(base + "--prompts " + empty)), empty);
  expect_error(run_command(qstudy(base + "--prompts " + blank)), blank);
  expect_error(run_command(qstudy(base + "--prompts " + dir + "/missing.txt")), "missing.txt");
  expect_error(run_command(qstudy(base + "--prompts " + prompt_file() + " --temperature -0.5")), "--temperature");
  expect_error(run_command(qstudy(base + "--prompts " + prompt_file() + " --temperature 0.7 --top-p 1.5")), "--top-p");
  expect_error(run_command(qstudy(base + "--prompts " + prompt_file() + " --temperature 0.7 --top-p 0")), "--top-p");
  expect_error(run_command(qstudy(base + "--prompts " + prompt_file() + " --top-k -1")), "--top-k");
  expect_error(run_command(qstudy(base + "--prompts " + prompt_file() + " -n 0")), "--max-new-tokens");
  expect_error(run_command(qstudy(base + "--prompts nosuchtask")), "nosuchtask");
  expect_error(run_command(qstudy("compare-gen --baseline " + stories() + " --prompts " + prompt_file() + " -q")),
               "no model to compare");
  expect_error(run_command(qstudy("compare-gen --baseline " + stories() + " --variant int3 --prompts " + prompt_file() +
                                  " -q")),
               "int3");
  // Longer than the 512-token context: refused by default, truncated (with a warning) on request.
  expect_error(run_command(qstudy(base + "--prompts " + long_prompt + " -n 16")), "--on-long");
  auto t = run_command(qstudy(base + "--prompts " + long_prompt + " -n 16 --on-long truncate --json"));
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.err.find("warning"), std::string::npos) << t.err;
  const std::string sweep = "sweep --baseline " + stories() + " --model " + stories() + " --prompts " + prompt_file() + " -q ";
  expect_error(run_command(qstudy(sweep + "--temperature 0,abc")), "--temperature");
  expect_error(run_command(qstudy(sweep + "--temperature 0,-1")), "--temperature");
  expect_error(run_command(qstudy(sweep + "--top-p 0.9,1.1 --temperature 0.5")), "--top-p");
  expect_error(run_command(qstudy(sweep + "--top-k 10,-2")), "--top-k");
  expect_error(run_command(qstudy(sweep + "--max-new-tokens 8,0")), "--max-new-tokens");
}

}  // namespace
}  // namespace qs
