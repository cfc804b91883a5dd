// Whole-model quantization on the real stories260K: calibrated on the first part of the TinyStories
// validation text, judged by perplexity on a later, disjoint part.
#include "quantize/quantize_model.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "eval/perplexity.h"
#include "model/loader.h"
#include "quantize/calib_data.h"
#include "testing/testing.h"

namespace qs::quant {
namespace {

struct Stories {
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  std::string text = read_text_file(testing::shared_dir() + "/data/tinystories/tinystories_val.txt");
  std::vector<int32_t> calib_tokens, eval_tokens;
  Stories() {
    const std::vector<int32_t> all = tok->encode(text, true);
    // First 40% for calibration, the last 40% for evaluation: no overlap.
    calib_tokens.assign(all.begin(), all.begin() + all.size() * 2 / 5);
    eval_tokens.assign(all.end() - all.size() * 2 / 5, all.end());
  }
  std::vector<std::vector<int32_t>> calib_windows(int n, int len) const {
    std::vector<std::vector<int32_t>> w;
    for (int i = 0; i < n; ++i) {
      std::vector<int32_t> s(calib_tokens.begin() + i * len, calib_tokens.begin() + (i + 1) * len);
      s[0] = 1;
      w.push_back(s);
    }
    return w;
  }
};

const Stories& stories() {
  static const Stories s;
  return s;
}

double ppl_after(const QuantizeOptions& o, bool calibrate) {
  auto model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  std::unique_ptr<CalibrationRunner> calib;
  if (calibrate) calib = std::make_unique<CalibrationRunner>(*model, stories().calib_windows(32, 256));
  if (!o.scheme.name.empty()) quantize_model(*model, o, calib.get());
  PerplexityOptions p;
  p.ctx = 256;
  p.bos = 1;
  p.max_chunks = 24;
  return compute_perplexity(*model, stories().eval_tokens, p).ppl;
}

QuantizeOptions opts(const std::string& scheme, const std::string& algo, int64_t group = -1) {
  QuantizeOptions o;
  o.scheme = with_overrides(find_scheme(scheme), group, -1);
  o.algorithm = algo;
  o.fallback = true;  // down_proj's 172 inputs take no group of 32 or 128: per channel there
  return o;
}

// GPTQ and AWQ lose clearly less perplexity than RTN where rounding hurts (4-bit and 3-bit).
TEST(QuantizeModel, GptqAndAwqBeatRtnOnHeldOutText) {
  const double base = ppl_after(QuantizeOptions{}, false);
  for (auto [scheme, group] : {std::pair{"w3a16", int64_t{32}}, std::pair{"w4a16", int64_t{0}}}) {
    const double rtn = ppl_after(opts(scheme, "rtn", group), false);
    const double gptq = ppl_after(opts(scheme, "gptq", group), true);
    const double awq = ppl_after(opts(scheme, "awq", group), true);
    std::printf("%s g%lld: base %.4f rtn %.4f gptq %.4f awq %.4f\n", scheme, static_cast<long long>(group), base, rtn,
                gptq, awq);
    EXPECT_GT(rtn, base);
    // "Clearly less": at least a quarter of RTN's perplexity increase is recovered.
    EXPECT_LT(gptq - base, 0.75 * (rtn - base)) << scheme;
    EXPECT_LT(awq - base, 0.9 * (rtn - base)) << scheme;
  }
}

TEST(QuantizeModel, SmoothQuantKeepsW8A8Close) {
  const double base = ppl_after(QuantizeOptions{}, false);
  const double sq = ppl_after(opts("w8a8-int8", "smoothquant+gptq"), true);
  const double fp8 = ppl_after(opts("w8a8-fp8-static", "rtn"), true);
  std::printf("base %.4f w8a8-int8 smoothquant+gptq %.4f w8a8-fp8-static %.4f\n", base, sq, fp8);
  EXPECT_LT(sq, base * 1.05);
  EXPECT_LT(fp8, base * 1.05);
}

TEST(QuantizeModel, OverridesKeepAndReplaceLayers) {
  auto model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  QuantizeOptions o = opts("w4a16", "rtn", 0);
  o.overrides = {parse_override("layers\\.0\\.=none"), parse_override("down_proj=w8a16-int8")};
  auto r = quantize_model(*model, o);
  for (const auto& l : r.layers) {
    if (l.name.find("layers.0.") != std::string::npos) EXPECT_EQ(l.format, "f32") << l.name;
    else if (l.name.find("down_proj") != std::string::npos) EXPECT_EQ(l.format, "w8a16-int8") << l.name;
    else EXPECT_EQ(l.format, "w4a16-per-channel") << l.name;
  }
  EXPECT_THROW(parse_override("nopattern"), Error);
  EXPECT_THROW(parse_override("down_proj=int2"), Error);
  EXPECT_THROW(parse_override("(=w4a16"), Error);
}

TEST(QuantizeModel, OptionsAreCheckedBeforeWork) {
  EXPECT_THROW(validate_quantize_options(opts("w4a16", "gptq"), false), Error);  // needs calibration
  EXPECT_THROW(validate_quantize_options(opts("nf4", "awq"), true), Error);      // not for NF4
  EXPECT_THROW(validate_quantize_options(opts("w8a8-fp8-static", "rtn"), false), Error);
  auto model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  QuantizeOptions strict = opts("w4a16", "rtn");
  strict.fallback = false;
  try {
    quantize_model(*model, strict);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide input size 172"), std::string::npos) << e.what();
  }
}

TEST(CalibData, ErrorsAndDeterminism) {
  const std::string dir = testing::make_temp_dir("calib");
  CalibDataOptions o;
  o.file = dir + "/missing.txt";
  EXPECT_THROW(load_calibration_tokens(*stories().tok, o), Error);
  testing::write_text(dir + "/empty.txt", "");
  o.file = dir + "/empty.txt";
  EXPECT_THROW(load_calibration_tokens(*stories().tok, o), Error);
  testing::write_text(dir + "/short.txt", "Once upon a time.");
  o.file = dir + "/short.txt";
  try {
    load_calibration_tokens(*stories().tok, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
  }
  testing::write_text(dir + "/d.jsonl", "{\"text\": \"a b c\"}\n{\"nope\": 1}\n");
  o.file = dir + "/d.jsonl";
  try {
    load_calibration_tokens(*stories().tok, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl:2: no string field 'text'"), std::string::npos) << e.what();
  }
  o.file = testing::shared_dir() + "/data/tinystories/tinystories_val.txt";
  o.samples = 4;
  o.seqlen = 64;
  auto a = load_calibration_tokens(*stories().tok, o), b = load_calibration_tokens(*stories().tok, o);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].size(), 64u);
  EXPECT_EQ(a[0][0], 1);  // BOS
  o.seed = 1;
  EXPECT_NE(load_calibration_tokens(*stories().tok, o), a);
}

}  // namespace
}  // namespace qs::quant
