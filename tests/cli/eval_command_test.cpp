// qstudy eval and qstudy kld end to end: the JSON shapes the issue specifies, per-example
// records, a baseline comparison (stories260K against its bf16 conversion), and bad input.
#include <gtest/gtest.h>

#include <cstring>
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

// stories260K in bf16 (a Hugging Face directory), made once.
const std::string& bf16_model() {
  static const std::string dir = [] {
    const std::string out = testing::make_temp_dir("bf16") + "/hf";
    auto r = run_command(qstudy("convert --model " + stories() + " --out " + out + " --dtype bf16 -q"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }();
  return dir;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TEST(EvalCli, ResultsJsonAndSamples) {
  const std::string dir = testing::make_temp_dir("evalcli");
  auto r = run_command(qstudy("eval --model " + stories() + " --tasks arc_easy,winogrande,lambada_openai --limit 20 --json " +
                              dir + "/r.json --samples " + dir + "/s.jsonl -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(read_file(dir + "/r.json"));
  for (const char* key : {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "n", "num_fewshot", "version"})
    EXPECT_TRUE(j["results"]["arc_easy"].contains(key)) << key;
  EXPECT_EQ(j["results"]["arc_easy"]["n"], 20);
  EXPECT_TRUE(j["results"]["lambada_openai"].contains("perplexity"));
  for (const char* key : {"model", "model_fingerprint", "scheme", "tasks", "limit", "seed", "add_bos", "max_length"})
    EXPECT_TRUE(j["config"].contains(key)) << key;
  EXPECT_EQ(j["config"]["scheme"], "f32");
  EXPECT_GT(j["speed"]["arc_easy"]["model"]["examples_per_s"].get<double>(), 0);
  EXPECT_FALSE(j.contains("comparison"));
  const auto samples = read_jsonl(dir + "/s.jsonl");
  ASSERT_EQ(samples.size(), 60u);
  for (const char* key : {"task", "doc_id", "prompt_hash", "choices_ll", "pred", "gold", "acc", "acc_norm"})
    EXPECT_TRUE(samples[0].contains(key)) << key;
  // The accuracy is recomputable from the records.
  double acc = 0;
  for (const auto& s : samples)
    if (s["task"] == "arc_easy") acc += s["acc"].get<double>();
  EXPECT_DOUBLE_EQ(acc / 20, j["results"]["arc_easy"]["acc"].get<double>());
  EXPECT_NE(r.out.find("arc_easy"), std::string::npos);  // the table
}

TEST(EvalCli, BaselineComparisonAndKld) {
  const std::string dir = testing::make_temp_dir("evalcmp");
  auto r = run_command(qstudy("eval --model " + bf16_model() + " --baseline " + stories() +
                              " --tasks arc_easy,hellaswag --limit 40 --bootstrap 2000 --json " + dir + "/r.json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(read_file(dir + "/r.json"));
  const json& c = j["comparison"]["arc_easy"];
  for (const char* key : {"recovery_pct", "diff", "ci95", "mcnemar_p", "flips_to_wrong", "flips_to_right", "n", "verdict"})
    EXPECT_TRUE(c.contains(key)) << key;
  EXPECT_EQ(c["ci95"].size(), 2u);
  EXPECT_LE(c["ci95"][0].get<double>(), c["diff"].get<double>());
  EXPECT_GE(c["ci95"][1].get<double>(), c["diff"].get<double>());
  EXPECT_EQ(c["n"], 40);
  EXPECT_TRUE(j["comparison"]["hellaswag"].contains("metrics"));  // acc_norm besides the primary metric
  EXPECT_TRUE(j.contains("baseline_results"));
  EXPECT_EQ(j["config"]["scheme"], "bf16");
  EXPECT_EQ(j["config"]["baseline_scheme"], "f32");
  EXPECT_NE(r.out.find("McNemar"), std::string::npos);

  auto k = run_command(qstudy("kld --model " + bf16_model() + " --baseline " + stories() + " --file " +
                              testing::shared_dir() + "/data/tinystories/tinystories_val.txt --ctx 128 --chunks 4 --json -q"));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const json kj = json::parse(k.out);
  for (const char* key : {"kld_mean", "kld_mean_err", "kld_median", "kld_p99", "kld_max", "same_top_pct", "dp_mean", "dp_rms",
                          "ppl_base", "ppl_model", "ln_ppl_ratio", "tokens"})
    EXPECT_TRUE(kj.contains(key)) << key;
  EXPECT_EQ(kj["tokens"], 4 * 63);
  EXPECT_GT(kj["kld_mean"].get<double>(), 0);      // bf16 weights change the distributions a little
  EXPECT_LT(kj["kld_mean"].get<double>(), 0.01);
  EXPECT_GT(kj["same_top_pct"].get<double>(), 90);
  // llama.cpp's text report, and a compact baseline file that can stand in for the baseline model.
  auto t = run_command(qstudy("kld --model " + bf16_model() + " --baseline " + stories() + " --file " +
                              testing::shared_dir() + "/data/tinystories/tinystories_val.txt --ctx 128 --chunks 4 -q" +
                              " --save-baseline " + dir + "/base.qskld --top-k 64"));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("Mean    KLD:"), std::string::npos);
  EXPECT_NE(t.out.find("Same top p:"), std::string::npos);
  auto f = run_command(qstudy("kld --model " + bf16_model() + " --baseline-file " + dir + "/base.qskld --file " +
                              testing::shared_dir() + "/data/tinystories/tinystories_val.txt --ctx 128 --chunks 4 --json -q"));
  ASSERT_EQ(f.exit_code, 0) << f.err;
  const json fj = json::parse(f.out);
  EXPECT_TRUE(fj["kld_is_lower_bound"].get<bool>());
  EXPECT_LE(fj["kld_mean"].get<double>(), kj["kld_mean"].get<double>() + 1e-12);
  EXPECT_NEAR(fj["ppl_base"].get<double>(), kj["ppl_base"].get<double>(), 1e-9);
}

TEST(EvalCli, MmluGroupsAggregateBySize) {
  const std::string dir = testing::make_temp_dir("evalmmlu");
  auto r = run_command(qstudy("eval --model " + bf16_model() + " --baseline " + stories() +
                              " --tasks mmlu --limit 2 --bootstrap 500 --json " + dir + "/r.json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(read_file(dir + "/r.json"));
  EXPECT_EQ(j["results"].size(), 57u);
  EXPECT_EQ(j["results"]["mmlu_abstract_algebra"]["num_fewshot"], 5);
  EXPECT_EQ(j["groups"]["mmlu"]["n"], 114);
  EXPECT_EQ(j["groups"]["mmlu"]["tasks"], 57);
  EXPECT_EQ(j["groups"]["mmlu_stem"]["n"], 38);
  double sum = 0;
  for (auto& [name, res] : j["results"].items()) sum += res["acc"].get<double>() * res["n"].get<double>();
  EXPECT_NEAR(j["groups"]["mmlu"]["acc"].get<double>(), sum / 114, 1e-12);
  for (const char* key : {"recovery_pct", "diff", "ci95", "mcnemar_p", "flips_to_wrong", "flips_to_right", "n"})
    EXPECT_TRUE(j["comparison"]["mmlu"].contains(key)) << key;
  EXPECT_EQ(j["comparison"]["mmlu"]["n"], 114);
}

void expect_error(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("qstudy: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(EvalCli, BadInput) {
  const std::string dir = testing::make_temp_dir("evalbad");
  // Unknown task: the known ones are listed, nothing is loaded.
  auto u = run_command(qstudy("eval --model " + stories() + " --tasks arc_easy,hellaswag2 -q"));
  expect_error(u, "unknown task 'hellaswag2'; known tasks: ");
  EXPECT_NE(u.err.find("winogrande"), std::string::npos);
  EXPECT_EQ(std::count(u.err.begin(), u.err.end(), '\n'), 1);

  // A baseline whose tokenizer differs (one token renamed) is refused unless forced.
  std::string tok = read_file(stories() + "/tok512.bin");
  size_t off = 4;
  for (int id = 0; id < 300; ++id) {
    int32_t len;
    std::memcpy(&len, tok.data() + off + 4, 4);
    off += 8 + static_cast<size_t>(len);
  }
  tok[off + 8] = tok[off + 8] == 'q' ? 'z' : 'q';  // first byte of token 300
  write_file_atomic(dir + "/other.bin", tok);
  auto t = run_command(qstudy("eval --model " + stories() + " --baseline " + stories() + " --baseline-tokenizer " + dir +
                              "/other.bin --tasks copa --limit 5 -q"));
  expect_error(t, "its tokenizer differs from the model's (token 300 is ");
  EXPECT_NE(t.err.find("--force"), std::string::npos);
  auto forced = run_command(qstudy("eval --model " + stories() + " --baseline " + stories() + " --baseline-tokenizer " +
                                   dir + "/other.bin --tasks copa --limit 5 --force -q"));
  EXPECT_EQ(forced.exit_code, 0) << forced.err;

  // Malformed records: skipped and counted, or (--strict) an error naming file:line; a task
  // whose data is missing fails while the others' results are kept.
  std::filesystem::create_directories(dir + "/data");
  testing::write_text(dir + "/data/d.jsonl",
                      "{\"q\": \"Is it?\", \"choices\": [\"no\", \"yes\"], \"gold\": 1}\n"
                      "{\"q\": \"Broken\", \"choices\": [\"no\", \"yes\"], \"gold\": 1\n"
                      "{\"q\": \"Missing gold\", \"choices\": [\"no\", \"yes\"]}\n"
                      "{\"q\": \"Fine?\", \"choices\": [\"no\", \"yes\"], \"gold\": 0}\n");
  const json def = {{"task", "tiny_bad"},
                    {"output_type", "multiple_choice"},
                    {"dataset", json::array({json{{"path", "d.jsonl"}, {"format", "jsonl"}}})},
                    {"doc_to_text", "Q: {{q}}\nA:"},
                    {"doc_to_choice", "{{choices}}"},
                    {"doc_to_target", "{{gold}}"}};
  testing::write_text(dir + "/tiny_bad.json", def.dump(2));
  json gone = def;
  gone["task"] = "tiny_gone";
  gone["dataset"][0]["path"] = "missing.jsonl";
  testing::write_text(dir + "/tiny_gone.json", gone.dump(2));
  const std::string base = qstudy("eval --model " + stories() + " --data-dir " + dir + "/data -q --json " + dir + "/r.json ");
  auto skip = run_command(base + "--tasks " + dir + "/tiny_bad.json");
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_NE(skip.err.find("d.jsonl:2: malformed JSON line"), std::string::npos) << skip.err;
  EXPECT_NE(skip.err.find("d.jsonl:3: doc_to_target: field 'gold' is undefined"), std::string::npos) << skip.err;
  const json sj = json::parse(read_file(dir + "/r.json"));
  EXPECT_EQ(sj["results"]["tiny_bad"]["n"], 2);
  EXPECT_EQ(sj["results"]["tiny_bad"]["skipped"], 2);
  auto strict = run_command(base + "--strict --tasks " + dir + "/tiny_bad.json");
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_NE(strict.err.find("d.jsonl:2: malformed JSON line"), std::string::npos) << strict.err;
  auto partial = run_command(base + "--tasks " + dir + "/tiny_bad.json," + dir + "/tiny_gone.json");
  EXPECT_EQ(partial.exit_code, 1);
  EXPECT_NE(partial.err.find("no data file found"), std::string::npos) << partial.err;
  const json pj = json::parse(read_file(dir + "/r.json"));
  EXPECT_EQ(pj["results"]["tiny_bad"]["n"], 2);  // kept
  EXPECT_TRUE(pj["errors"].contains("tiny_gone"));

  // kld needs exactly one baseline.
  auto k = run_command(qstudy("kld --model " + stories() + " --file " + testing::shared_dir() +
                              "/data/tinystories/tinystories_val.txt -q"));
  expect_error(k, "exactly one of --baseline");
}

}  // namespace
}  // namespace qs
