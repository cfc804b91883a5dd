// The seed corpus of fuzz/quantize/compressed_tensors_fuzz.cpp: the valid seeds load a layer in
// each format (so fuzzing starts from inputs that reach the readers' success paths), the broken
// ones are refused with one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "quantize/files/hf_checkpoint.h"
#include "testing/testing.h"

namespace qs::quant::test {
namespace {

// Loads "model.layers.0.mlp.up_proj" [8, 64] from a seed; "" when it loads, else the error.
std::string load_seed(const std::string& path, std::string* format) {
  const std::string bytes = read_file(path);
  try {
    SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
    TensorStore store(path);
    store.metadata = f.metadata;
    for (auto& t : f.tensors) store.add(std::move(t), path);
    nlohmann::json qc;
    try {
      qc = nlohmann::json::parse(f.metadata.at("quantization_config"));
    } catch (const nlohmann::json::exception&) {
      return "bad JSON";
    }
    auto lin = files::checkpoint_reader(qc, path)("model.layers.0.mlp.up_proj", 8, 64, store);
    if (!lin) return "not quantized";
    ThreadPool pool(1);
    std::vector<float> x(2 * 64, 0.5f), y(2 * 8);
    lin->forward(x.data(), 2, y.data(), pool);
    *format = lin->format();
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
}

TEST(FuzzSeeds, ValidSeedsLoadAndBrokenOnesAreRefused) {
  const std::string dir = testing::source_dir() + "/fuzz/corpus/compressed_tensors";
  const std::map<std::string, std::string> valid = {
      {"ct_pack_w4a16_asym_gidx", "w4a16-g32-asym"}, {"ct_pack_w3a16_channel", "w3a16-per-channel"},
      {"ct_int8_w8a8", "w8a8-int8"},                  {"ct_fp8_static", "w8a8-fp8-static"},
      {"ct_nvfp4", "nvfp4"},                          {"ct_mxfp4", "mxfp4"},
      {"bnb_nf4_dq", "nf4-dq"},                       {"bnb_int8", "llm-int8"},
      {"gptq_v1_g32", "w4a16-g32-asym"},              {"awq_g32", "w4a16-g32-asym"},
      {"qstudy_int", "w4a16-g32-asym"},               {"qstudy_q8_0", "q8_0"}};
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string stem = e.path().stem().string();
    std::string format;
    const std::string err = load_seed(e.path().string(), &format);
    ++seen;
    if (valid.count(stem)) {
      EXPECT_EQ(err, "") << stem;
      EXPECT_EQ(format, valid.at(stem)) << stem;
    } else {
      EXPECT_NE(err, "") << stem << " loaded but is a broken seed";
    }
  }
  EXPECT_GE(seen, 16);
}

}  // namespace
}  // namespace qs::quant::test
