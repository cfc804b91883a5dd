// Helpers for the checkpoint tests: tiny synthetic models, quantizing them, and comparing two
// models bit for bit (canonical quantized pieces, dense tensors, logits).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/loader.h"
#include "model/synth.h"
#include "quantize/files/checkpoint.h"
#include "quantize/qlinear.h"
#include "quantize/quantize_model.h"
#include "testing/testing.h"

namespace qs::quant::test {

// A synthetic Hugging Face model directory (written once per preset, dtype and seed), with a
// generation_config.json and special_tokens_map.json beside it so copying them is tested.
inline std::string tiny_model_dir(const std::string& preset, DType dtype, uint64_t seed = 7) {
  static std::map<std::string, std::string> made;
  const std::string key = preset + "/" + std::string(dtype_name(dtype)) + "/" + std::to_string(seed);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  const std::string dir = testing::make_temp_dir("ckpt-src-" + preset);
  SynthOptions o;
  o.dtype = dtype;
  o.seed = seed;
  o.init_std = 0.1;
  o.norm_jitter = 0.2;
  write_synthetic_model(find_synth_preset(preset).config, dir, o);
  testing::write_text(dir + "/generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n");
  testing::write_text(dir + "/special_tokens_map.json", "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}\n");
  made[key] = dir;
  return dir;
}

inline std::vector<std::vector<int32_t>> calibration_sequences(int64_t vocab) {
  Rng rng(5);
  std::vector<std::vector<int32_t>> seqs(3);
  for (auto& s : seqs)
    for (int i = 0; i < 24; ++i) s.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab))));
  return seqs;
}

// Loads `dir` and quantizes it with RTN (calibrating static activation scales when needed).
inline std::unique_ptr<Model> quantized_model(const std::string& dir, const QuantizeOptions& options) {
  auto model = load_model(dir);
  if (needs_calibration(options)) {
    CalibrationRunner calib(*model, calibration_sequences(model->config().vocab_size));
    quantize_model(*model, options, &calib);
  } else {
    quantize_model(*model, options);
  }
  return model;
}

inline QuantizeOptions options_for(const std::string& scheme, int64_t group_size = -1, int symmetric = -1) {
  QuantizeOptions o;
  o.scheme = with_overrides(find_scheme(scheme), group_size, symmetric);
  o.fallback = true;
  return o;
}

inline bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// Every canonical piece of two quantized layers, bit for bit.
inline void expect_same_storage(const QuantLinear& a, const QuantLinear& b) {
  SCOPED_TRACE(a.name());
  EXPECT_EQ(a.scheme().full_name(), b.scheme().full_name());
  EXPECT_EQ(a.scheme().act, b.scheme().act);
  EXPECT_EQ(a.scheme().outlier_threshold, b.scheme().outlier_threshold);
  const QuantStorage x = a.storage(), y = b.storage();
  EXPECT_EQ(f32_bits(x.static_activation_scale), f32_bits(y.static_activation_scale));
  ASSERT_EQ(!!x.int_matrix, !!y.int_matrix);
  ASSERT_EQ(!!x.fp8, !!y.fp8);
  ASSERT_EQ(!!x.bnb4, !!y.bnb4);
  ASSERT_EQ(!!x.mxfp4, !!y.mxfp4);
  ASSERT_EQ(!!x.nvfp4, !!y.nvfp4);
  ASSERT_EQ(!!x.gguf_blocks, !!y.gguf_blocks);
  if (x.int_matrix) {
    const auto &p = *x.int_matrix, &q = *y.int_matrix;
    EXPECT_EQ(p.bits, q.bits);
    EXPECT_EQ(p.symmetric, q.symmetric);
    EXPECT_EQ(p.granularity, q.granularity);
    EXPECT_EQ(p.rows, q.rows);
    EXPECT_EQ(p.cols, q.cols);
    EXPECT_EQ(p.group_size, q.group_size);
    EXPECT_TRUE(p.codes == q.codes) << "codes differ";
    EXPECT_TRUE(same_floats(p.scales, q.scales)) << "scales differ";
    EXPECT_TRUE(p.zeros == q.zeros) << "zero points differ";
    EXPECT_TRUE(p.g_idx == q.g_idx) << "g_idx differs";
  }
  if (x.fp8) {
    const auto &p = *x.fp8, &q = *y.fp8;
    EXPECT_EQ(p.format, q.format);
    EXPECT_EQ(p.granularity, q.granularity);
    EXPECT_EQ(p.rows, q.rows);
    EXPECT_EQ(p.cols, q.cols);
    EXPECT_TRUE(p.codes == q.codes) << "codes differ";
    EXPECT_TRUE(same_floats(p.scales, q.scales)) << "scales differ";
  }
  if (x.bnb4) {
    const auto &p = *x.bnb4, &q = *y.bnb4;
    EXPECT_EQ(p.type, q.type);
    EXPECT_EQ(p.rows, q.rows);
    EXPECT_EQ(p.cols, q.cols);
    EXPECT_EQ(p.blocksize, q.blocksize);
    EXPECT_TRUE(p.packed == q.packed) << "codes differ";
    EXPECT_TRUE(same_floats(p.absmax, q.absmax)) << "absmax differs";
    EXPECT_EQ(p.nested, q.nested);
    EXPECT_EQ(f32_bits(p.nested_offset), f32_bits(q.nested_offset));
    EXPECT_EQ(p.nested_absmax.blocksize, q.nested_absmax.blocksize);
    EXPECT_TRUE(p.nested_absmax.codes == q.nested_absmax.codes) << "nested codes differ";
    EXPECT_TRUE(same_floats(p.nested_absmax.absmax, q.nested_absmax.absmax)) << "nested absmax differs";
  }
  if (x.mxfp4) {
    EXPECT_TRUE(x.mxfp4->packed == y.mxfp4->packed) << "codes differ";
    EXPECT_TRUE(x.mxfp4->scales == y.mxfp4->scales) << "scales differ";
  }
  if (x.nvfp4) {
    EXPECT_TRUE(x.nvfp4->packed == y.nvfp4->packed) << "codes differ";
    EXPECT_TRUE(x.nvfp4->block_scales == y.nvfp4->block_scales) << "block scales differ";
    EXPECT_EQ(f32_bits(x.nvfp4->global_scale), f32_bits(y.nvfp4->global_scale)) << "global scale differs";
  }
  if (x.gguf_blocks) {
    EXPECT_TRUE(*x.gguf_blocks == *y.gguf_blocks) << "blocks differ";
  }
}

// All linear layers of a model in order (the head even when it reads the embedding).
inline std::vector<const Linear*> all_linears(const Model& m) {
  std::vector<const Linear*> out;
  for (auto& layer : const_cast<Model&>(m).weights().layers)
    for (auto& [role, slot] : layer.linears()) out.push_back(slot->get());
  out.push_back(m.weights().lm_head.get());
  return out;
}

// The logits of a fixed token sequence (all positions).
inline std::vector<float> logits_of(const Model& m) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 12; ++i) tokens.push_back(static_cast<int32_t>((i * 37 + 5) % m.config().vocab_size));
  KVCache cache(m.config(), 1);
  ForwardOutput out;
  SeqInput in{0, tokens, Outputs::All};
  m.forward({&in, 1}, cache, out);
  return out.logits;
}

// Two models hold the same weights bit for bit and compute the same logits bit for bit.
inline void expect_same_model(const Model& a, const Model& b) {
  const auto la = all_linears(a), lb = all_linears(b);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(a.weights().lm_head_is_embed, b.weights().lm_head_is_embed);
  for (size_t i = 0; i < la.size(); ++i) {
    SCOPED_TRACE(la[i]->name());
    EXPECT_EQ(la[i]->name(), lb[i]->name());
    EXPECT_EQ(la[i]->format(), lb[i]->format());
    EXPECT_TRUE(same_floats(la[i]->bias(), lb[i]->bias())) << "bias differs";
    const auto* qa = dynamic_cast<const QuantLinear*>(la[i]);
    const auto* qb = dynamic_cast<const QuantLinear*>(lb[i]);
    ASSERT_EQ(!!qa, !!qb);
    if (qa) expect_same_storage(*qa, *qb);
    else EXPECT_TRUE(same_floats(la[i]->dequantized(), lb[i]->dequantized())) << "dense weight differs";
  }
  const Tensor &ea = a.weights().embed, &eb = b.weights().embed;
  EXPECT_EQ(ea.dtype, eb.dtype);
  ASSERT_EQ(ea.nbytes, eb.nbytes);
  EXPECT_EQ(std::memcmp(ea.data, eb.data, ea.nbytes), 0) << "embedding differs";
  EXPECT_TRUE(same_floats(a.weights().final_norm, b.weights().final_norm));
  for (size_t l = 0; l < a.weights().layers.size(); ++l) {
    EXPECT_TRUE(same_floats(a.weights().layers[l].attn_norm, b.weights().layers[l].attn_norm));
    EXPECT_TRUE(same_floats(a.weights().layers[l].ffn_norm, b.weights().layers[l].ffn_norm));
    EXPECT_TRUE(same_floats(a.weights().layers[l].q_norm, b.weights().layers[l].q_norm));
  }
  const auto xa = logits_of(a), xb = logits_of(b);
  EXPECT_TRUE(same_floats(xa, xb)) << "logits differ";
}

// A scratch directory removed when the test passes (kept with QSTUDY_KEEP_TEST_DIRS=1).
struct ScratchDir {
  explicit ScratchDir(const std::string& tag) : path(testing::make_temp_dir(tag)) {}
  ~ScratchDir() {
    const char* keep = std::getenv("QSTUDY_KEEP_TEST_DIRS");
    if (!::testing::Test::HasFailure() && !(keep && *keep == '1')) std::filesystem::remove_all(path);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string path;
};

}  // namespace qs::quant::test
