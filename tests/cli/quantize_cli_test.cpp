// qstudy quantize end to end on stories260K: the report, checkpoints written in each standard
// format load back and score exactly as the in-memory quantized model, a GGUF file runs with its
// own vocabulary, and bad requests are one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "testing/testing.h"

namespace qs {
namespace {

using nlohmann::json;
using testing::run_command;

std::string qstudy(const std::string& args) { return testing::qstudy_exe() + " " + args; }
std::string stories() { return testing::shared_dir() + "/models/stories260K"; }
std::string text_file() { return testing::shared_dir() + "/data/tinystories/tinystories_val.txt"; }

// stories260K converted to a Hugging Face directory (f32), made once: checkpoints saved from it
// keep its tensor layout exactly.
const std::string& hf_stories() {
  static const std::string dir = [] {
    const std::string out = testing::make_temp_dir("qhf") + "/hf";
    auto r = run_command(qstudy("convert --model " + stories() + " --out " + out + " -q"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }();
  return dir;
}

double ppl_of(const std::string& model_and_flags) {
  auto r = run_command(qstudy("perplexity --model " + model_and_flags + " --file " + text_file() +
                              " --ctx 128 --chunks 12 --json -q"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return -1;
  return json::parse(r.out)["ppl"].get<double>();
}

TEST(QuantizeCli, ListsEverySchemeWithItsFiles) {
  auto r = run_command(qstudy("quantize --list"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"w8a8-fp8", "w8a8-int8", "w4a16", "w3a16", "nf4", "nf4-dq", "fp4", "fp4-dq", "llm-int8", "mxfp4",
                        "nvfp4", "q8_0", "q4_0", "gptq", "awq", "smoothquant"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(QuantizeCli, ReportJson) {
  auto r = run_command(qstudy("quantize --model " + stories() + " --scheme w8a8-int8 --json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["algorithm"], "rtn");
  EXPECT_EQ(j["layers"].size(), 35u);  // 5 layers x 7 linears
  EXPECT_LT(j["bytes_after"].get<double>(), 0.3 * j["bytes_before"].get<double>());
  for (const auto& l : j["layers"]) EXPECT_LT(l["weight_rel_error"].get<double>(), 0.05) << l["name"];
}

// --awq-grid sets the scale search's grid: with one point only ratio 0 (no scaling) can win, with
// the default 20 some slot of some layer takes another.
TEST(QuantizeCli, AwqGridReachesTheSearch) {
  auto awq_ratios = [](const std::string& flags) {
    auto r = run_command(qstudy("quantize --model " + stories() + " --scheme w4a16 --group-size 32 --fallback --algo awq --calib " +
                                text_file() + " --calib-samples 4 --calib-seqlen 128 --awq-search-samples 2 --json -q " +
                                flags));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> ratios;
    if (r.exit_code != 0) return ratios;
    const json report = json::parse(r.out);  // named: a range-for over a temporary's member dangles
    for (const auto& l : report["layers"]) {
      const std::string note = l["note"];
      const size_t at = note.find("awq ratio ");
      if (at != std::string::npos) ratios.insert(note.substr(at + 10, note.find(';', at) - at - 10));
    }
    return ratios;
  };
  EXPECT_EQ(awq_ratios("--awq-grid 1"), std::set<std::string>{"0"});
  const std::set<std::string> full = awq_ratios("");
  EXPECT_GT(full.size(), 1u);
}

// A checkpoint written to disk and loaded back scores exactly like the model quantized in memory.
TEST(QuantizeCli, SavedCheckpointsReloadIdentically) {
  struct Case {
    std::string flags, format;
  };
  for (const Case& c : {Case{"--scheme w4a16 --group-size 32 --fallback", "compressed-tensors"},
                        Case{"--scheme w8a8-fp8", "compressed-tensors"}, Case{"--scheme nf4-dq", "bitsandbytes"},
                        Case{"--scheme q4_0 --fallback", "qstudy"}}) {
    const std::string dir = testing::make_temp_dir("qsave") + "/out";
    auto r = run_command(qstudy("quantize --model " + hf_stories() + " " + c.flags + " --format " + c.format + " --out " +
                                dir + " --json -q"));
    ASSERT_EQ(r.exit_code, 0) << c.flags << ": " << r.err;
    EXPECT_EQ(json::parse(r.out)["saved"]["format"], c.format);
    EXPECT_TRUE(std::filesystem::exists(dir + "/tokenizer.json")) << c.flags;
    const double in_memory = ppl_of(hf_stories() + " --quantize " + c.flags.substr(std::string("--scheme ").size()));
    const double reloaded = ppl_of(dir);
    EXPECT_NEAR(reloaded, in_memory, 1e-9 * in_memory) << c.flags;
  }
}

// From a llama2.c checkpoint there are no tokenizer files to copy: tokenizer.json is written.
TEST(QuantizeCli, CheckpointOfALlama2cModelCarriesItsTokenizer) {
  const std::string dir = testing::make_temp_dir("qsave2c") + "/out";
  auto r = run_command(qstudy("quantize --model " + stories() + " --scheme w8a16-int8 --out " + dir + " -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(dir + "/tokenizer.json"));
  // The saved model holds q/k in Hugging Face order, so float sums run in another order: close, not identical.
  EXPECT_NEAR(ppl_of(dir), ppl_of(stories() + " --quantize w8a16-int8"), 1e-3);
}

TEST(QuantizeCli, GgufFileRunsWithItsOwnVocabulary) {
  const std::string dir = testing::make_temp_dir("qgguf");
  auto r = run_command(qstudy("quantize --model " + stories() + " --scheme q8_0 --fallback --format gguf --out " + dir +
                              "/m.gguf -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double base = ppl_of(stories()), gguf = ppl_of(dir + "/m.gguf");
  EXPECT_NEAR(gguf, base, 0.02 * base);  // Q8_0 is close to lossless
  EXPECT_NEAR(gguf, ppl_of(stories() + " --quantize q8_0 --fallback"), 1e-9 * gguf);
  auto g = run_command(qstudy("generate --model " + dir + "/m.gguf --prompt 'Once upon a time' -n 8 --json -q"));
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(json::parse(g.out)["prompt_tokens"], 5);
}

TEST(QuantizeCli, BadRequestsAreOneLineErrors) {
  auto check = [](const testing::CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
  };
  const std::string q = "quantize --model " + stories() + " -q ";
  check(run_command(qstudy(q + "--scheme int5")), "int5");
  check(run_command(qstudy(q + "--scheme w4a16 --algo magic")), "magic");
  check(run_command(qstudy(q + "--scheme w4a16 --algo gptq")), "--calib");
  check(run_command(qstudy(q + "--scheme w4a16 --algo awq --awq-search-samples 0")), "--awq-search-samples");
  check(run_command(qstudy(q + "--scheme w4a16 --algo awq --awq-grid 0")), "--awq-grid");
  check(run_command(qstudy(q + "--scheme q4_0")), "--fallback");
  check(run_command(qstudy(q + "--scheme nf4 --format gguf --out /tmp/x.gguf")), "GGUF cannot hold");
  check(run_command(qstudy(q + "--scheme w4a16 --group-size 32 --fallback --format bitsandbytes --out " +
                           testing::make_temp_dir("qbad"))),
        "bitsandbytes");
}

}  // namespace
}  // namespace qs
