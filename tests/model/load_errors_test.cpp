// A checkpoint that disagrees with its config ends in one clear error naming the tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "model/synth.h"
#include "testing/testing.h"

namespace qs {
namespace {

std::string make_tiny(const std::string& tag) {
  const std::string dir = testing::make_temp_dir(tag);
  SynthOptions o;
  o.dtype = DType::F32;
  write_synthetic_model(find_synth_preset("tiny-llama3").config, dir, o);
  return dir;
}

// Rewrites model.safetensors keeping the tensors `keep` accepts, possibly edited.
void rewrite(const std::string& dir, const std::function<bool(Tensor&)>& keep) {
  std::vector<Tensor> out;
  std::vector<std::vector<uint8_t>> copies;
  {
    auto f = read_safetensors(dir + "/model.safetensors");
    for (auto t : f.tensors) {
      if (!keep(t)) continue;
      copies.emplace_back(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes);
      out.push_back(t);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].data = copies[i].data(), out[i].owner = nullptr;
  write_safetensors(dir + "/model.safetensors", out);
}

std::string load_error(const std::string& dir) {
  try {
    load_model(dir);
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos);
    return m;
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(LoadErrors, MissingTensor) {
  auto dir = make_tiny("missing");
  rewrite(dir, [](Tensor& t) { return t.name != "model.layers.1.mlp.down_proj.weight"; });
  EXPECT_NE(load_error(dir).find("missing tensor 'model.layers.1.mlp.down_proj.weight'"), std::string::npos);
}

TEST(LoadErrors, MissingUntiedHead) {
  auto dir = make_tiny("head");
  rewrite(dir, [](Tensor& t) { return t.name != "lm_head.weight"; });
  EXPECT_NE(load_error(dir).find("tie_word_embeddings = false"), std::string::npos);
}

TEST(LoadErrors, ShapeDisagreesWithConfig) {
  auto dir = make_tiny("shape");
  rewrite(dir, [](Tensor& t) {
    if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {t.shape[1], t.shape[0]};
    return true;
  });
  EXPECT_NE(load_error(dir).find("'model.layers.0.self_attn.k_proj.weight' has shape [64, 32], expected [32, 64]"),
            std::string::npos);
}

TEST(LoadErrors, UnsupportedDtypeIsRefusedByName) {
  auto dir = make_tiny("dtype");
  rewrite(dir, [](Tensor& t) {
    if (t.name == "model.layers.0.mlp.up_proj.weight") {
      t.dtype = DType::I32;  // same byte count as F32
    }
    return true;
  });
  EXPECT_NE(load_error(dir).find("dtype I32"), std::string::npos);
}

TEST(LoadErrors, VocabOfConfigDisagreesWithEmbeddings) {
  auto dir = make_tiny("vocab");
  std::string cfg = testing::run_command("cat " + dir + "/config.json").out;
  auto pos = cfg.find("\"vocab_size\": 384");
  ASSERT_NE(pos, std::string::npos);
  cfg.replace(pos, 17, "\"vocab_size\": 400");
  std::ofstream(dir + "/config.json") << cfg;
  EXPECT_NE(load_error(dir).find("expected [400, 64]"), std::string::npos);
}

TEST(LoadErrors, NotAModel) {
  const std::string dir = testing::make_temp_dir("nothing");
  EXPECT_NE(load_error(dir).find("not a model directory"), std::string::npos);
  EXPECT_NE(load_error(dir + "/nope").find("no such file"), std::string::npos);
  std::ofstream(dir + "/weights.xyz") << "x";
  EXPECT_NE(load_error(dir + "/weights.xyz").find("unrecognized model file"), std::string::npos);
}

}  // namespace
}  // namespace qs
