// Round trips: a tiny model quantized in memory, saved in each format that holds its scheme and
// loaded back with load_model_any, must hold the same canonical quantized pieces bit for bit and
// compute the same logits bit for bit (the same kernels on the same numbers).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "checkpoint_testing.h"
#include "core/error.h"
#include "core/files.h"
#include "formats/int_quant.h"
#include "io/safetensors.h"
#include "quantize/files/rope_layout.h"

namespace qs::quant::test {
namespace {

struct Case {
  std::string name;
  std::string preset;
  DType dtype;
  std::string scheme;
  int64_t group = -1;
  int sym = -1;
  CheckpointFormat format = CheckpointFormat::CompressedTensors;
  bool head = false;
  std::vector<std::string> overrides;
};

Case make(std::string name, std::string preset, DType dtype, std::string scheme, int64_t group = -1, int sym = -1,
          CheckpointFormat format = CheckpointFormat::CompressedTensors, bool head = false,
          std::vector<std::string> overrides = {}) {
  Case c;
  c.name = std::move(name);
  c.preset = std::move(preset);
  c.dtype = dtype;
  c.scheme = std::move(scheme);
  c.group = group;
  c.sym = sym;
  c.format = format;
  c.head = head;
  c.overrides = std::move(overrides);
  return c;
}

std::vector<Case> cases() {
  using F = CheckpointFormat;
  const DType bf = DType::BF16, f32 = DType::F32;
  return {
      make("ct_fp8", "tiny-llama3", bf, "w8a8-fp8"),
      make("ct_fp8_static", "tiny-llama3", bf, "w8a8-fp8-static"),
      make("ct_int8", "tiny-llama3", bf, "w8a8-int8"),
      make("ct_w8a16", "tiny-llama3", bf, "w8a16-int8"),
      make("ct_w4a16_g32_head", "tiny-llama3", bf, "w4a16", 32, -1, F::CompressedTensors, true),
      make("ct_w4a16_g32_asym", "tiny-llama3", bf, "w4a16", 32, 0),
      make("ct_w4a16_channel_asym_f32", "tiny-llama3", f32, "w4a16", 0, 0),
      make("ct_w3a16_g32", "tiny-llama3", bf, "w3a16", 32),
      make("ct_w3a16_g32_asym", "tiny-llama3", bf, "w3a16", 32, 0),
      make("ct_nvfp4", "tiny-llama3", bf, "nvfp4"),
      make("ct_mxfp4", "tiny-llama3", bf, "mxfp4"),
      make("ct_qwen2_w4a16_g16_f32", "tiny-qwen2", f32, "w4a16", 16),
      make("ct_qwen2_mxfp4_kept_layers", "tiny-qwen2", bf, "mxfp4"),
      make("ct_qwen2_nvfp4_tied_head", "tiny-qwen2", bf, "nvfp4", -1, -1, F::CompressedTensors, true),
      make("ct_qwen3_int8", "tiny-qwen3", bf, "w8a8-int8"),
      make("ct_two_groups", "tiny-llama3", bf, "w4a16", 32, -1, F::CompressedTensors, false, {"mlp\\.down_proj=w8a16-int8"}),
      make("ct_mixed_precision", "tiny-llama3", bf, "w4a16", 32, 0, F::CompressedTensors, false,
       {"mlp\\.down_proj=w8a8-fp8", "layers\\.1\\.self_attn\\.o_proj=none"}),
      make("bnb_nf4", "tiny-llama3", bf, "nf4", -1, -1, F::Bitsandbytes),
      make("bnb_nf4_dq", "tiny-llama3", bf, "nf4-dq", -1, -1, F::Bitsandbytes),
      make("bnb_fp4", "tiny-llama3", bf, "fp4", -1, -1, F::Bitsandbytes),
      make("bnb_fp4_dq_qwen2_f32", "tiny-qwen2", f32, "fp4-dq", -1, -1, F::Bitsandbytes),
      make("bnb_llm_int8", "tiny-llama3", bf, "llm-int8", -1, -1, F::Bitsandbytes),
      make("bnb_nf4_kept", "tiny-llama3", bf, "nf4", -1, -1, F::Bitsandbytes, false, {"self_attn\\.v_proj=none"}),
      make("qstudy_q8_0", "tiny-llama3", bf, "q8_0", -1, -1, F::Qstudy),
      make("qstudy_q4_0_head", "tiny-llama3", bf, "q4_0", -1, -1, F::Qstudy, true),
      make("qstudy_fp8_static", "tiny-llama3", bf, "w8a8-fp8-static", -1, -1, F::Qstudy),
      make("qstudy_w3a16_asym", "tiny-llama3", bf, "w3a16", 32, 0, F::Qstudy),
      make("qstudy_nvfp4", "tiny-qwen2", bf, "nvfp4", -1, -1, F::Qstudy),
      make("qstudy_mix", "tiny-llama3", bf, "nf4-dq", -1, -1, F::Qstudy, false,
       {"mlp\\.down_proj=q8_0", "self_attn\\.o_proj=w4a16", "self_attn\\.q_proj=llm-int8", "k_proj=mxfp4"}),
  };
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, SameWeightsAndLogits) {
  const Case& c = GetParam();
  const std::string src = tiny_model_dir(c.preset, c.dtype);
  QuantizeOptions o = options_for(c.scheme, c.group, c.sym);
  o.include_head = c.head;
  for (const auto& spec : c.overrides) o.overrides.push_back(parse_override(spec));
  auto model = quantized_model(src, o);
  ScratchDir out("ckpt-" + c.name);
  const SavedCheckpoint saved = save_quantized_model(*model, src, out.path, c.format);
  EXPECT_EQ(saved.format, c.format);
  EXPECT_GT(saved.tensor_bytes, 0);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "generation_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(file_exists(out.path + "/" + f)) << f;
  EXPECT_TRUE(is_quantized_checkpoint(out.path));
  auto loaded = load_model_any(out.path);
  expect_same_model(*model, *loaded);
  // The checkpoint is smaller than the dense source whenever most weights are quantized.
  if (c.overrides.empty()) {
    EXPECT_LT(saved.tensor_bytes, load_model(src)->weight_bytes() + 1) << "quantized checkpoint larger than its source";
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// GPTQ act-order: each layer's columns are quantized in a permuted order (groups of 32
// consecutive permuted columns) and stored in the original order with g_idx, as GPTQ with
// desc_act writes them.
std::unique_ptr<Linear> act_order_layer(const Linear& dense, const Scheme& s, uint64_t seed) {
  const int64_t N = dense.out_features(), K = dense.in_features(), gs = s.group_size;
  const std::vector<float> w = dense.dequantized();
  std::vector<int32_t> perm(K);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed);
  for (int64_t i = K - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
  std::vector<float> permuted(N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < K; ++c) permuted[n * K + c] = w[n * K + perm[c]];
  formats::IntMatrix q = formats::quantize_int(permuted, N, K, int_config(s, K), dense.name());
  std::vector<uint8_t> codes(N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < K; ++c) codes[n * K + perm[c]] = q.codes[n * K + c];
  q.codes = std::move(codes);
  q.g_idx.assign(K, 0);
  for (int64_t c = 0; c < K; ++c) q.g_idx[perm[c]] = static_cast<int32_t>(c / gs);
  return make_int_linear(dense.name(), std::move(q), s, dense.bias());
}

void quantize_act_order(Model& m, const Scheme& s) {
  uint64_t seed = 1;
  for (auto& layer : m.weights().layers)
    for (auto& [role, slot] : layer.linears()) *slot = act_order_layer(**slot, s, seed++);
}

class ActOrder : public ::testing::TestWithParam<CheckpointFormat> {};

TEST_P(ActOrder, GIdxSurvives) {
  for (const std::string preset : {"tiny-llama3", "tiny-qwen2"}) {
    SCOPED_TRACE(preset);
    const std::string src = tiny_model_dir(preset, DType::BF16);
    auto model = load_model(src);
    quantize_act_order(*model, with_overrides(find_scheme("w4a16"), 16, 0));
    const auto* first = dynamic_cast<const QuantLinear*>(model->weights().layers[0].q.get());
    ASSERT_TRUE(first && !first->storage().int_matrix->g_idx.empty());
    ScratchDir out("ckpt-act-order");
    save_quantized_model(*model, src, out.path, GetParam());
    if (GetParam() == CheckpointFormat::CompressedTensors) {
      const auto qc = read_json_file(out.path + "/config.json")["quantization_config"];
      EXPECT_EQ(qc["config_groups"]["group_0"]["weights"]["actorder"], "group");
    }
    expect_same_model(*model, *load_model_any(out.path));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, ActOrder,
                         ::testing::Values(CheckpointFormat::CompressedTensors, CheckpointFormat::Qstudy),
                         [](const auto& info) { return checkpoint_format_name(info.param) == "qstudy" ? "qstudy" : "compressed_tensors"; });

TEST(Checkpoint, ShardsAboveTheShardSizeWithAnIndex) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  auto model = quantized_model(src, options_for("w4a16", 32));
  ScratchDir out("ckpt-shards");
  SaveOptions so;
  so.shard_bytes = 40000;  // the embedding alone is 48 KiB: several shards
  const SavedCheckpoint saved = save_quantized_model(*model, src, out.path, CheckpointFormat::CompressedTensors, so);
  int shards = 0;
  for (const auto& f : saved.files) shards += f.rfind("model-", 0) == 0;
  EXPECT_GE(shards, 3);
  EXPECT_FALSE(file_exists(out.path + "/model.safetensors"));
  const auto index = read_json_file(out.path + "/model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), saved.tensor_bytes);
  EXPECT_EQ(index["weight_map"]["model.layers.0.self_attn.q_proj.weight_packed"].get<std::string>().substr(0, 6), "model-");
  expect_same_model(*model, *load_model_any(out.path));
  // Saving again unsharded into the same directory removes the old shards and index.
  save_quantized_model(*model, src, out.path, CheckpointFormat::CompressedTensors);
  EXPECT_TRUE(file_exists(out.path + "/model.safetensors"));
  EXPECT_FALSE(file_exists(out.path + "/model.safetensors.index.json"));
  for (const auto& f : saved.files) EXPECT_FALSE(f.rfind("model-", 0) == 0 && file_exists(out.path + "/" + f)) << f;
  expect_same_model(*model, *load_model_any(out.path));
}

TEST(Checkpoint, ConfigKeepsTheSourceConfigAndUntiesAQuantizedHead) {
  const std::string src = tiny_model_dir("tiny-qwen2", DType::BF16);
  QuantizeOptions o = options_for("w8a8-int8");
  o.include_head = true;
  auto model = quantized_model(src, o);
  ScratchDir out("ckpt-config");
  save_quantized_model(*model, src, out.path, CheckpointFormat::CompressedTensors);
  auto source = read_json_file(src + "/config.json");
  auto written = read_json_file(out.path + "/config.json");
  EXPECT_EQ(source["tie_word_embeddings"], true);
  EXPECT_EQ(written["tie_word_embeddings"], false);
  for (const char* key : {"model_type", "hidden_size", "rope_theta", "torch_dtype", "vocab_size", "architectures"})
    EXPECT_EQ(written[key], source[key]) << key;
  EXPECT_EQ(written["quantization_config"]["ignore"], nlohmann::json::array());
  auto loaded = load_model_any(out.path);
  EXPECT_FALSE(loaded->weights().lm_head_is_embed);
  expect_same_model(*model, *loaded);
}

TEST(Checkpoint, DefaultFormatAndRefusals) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  auto w4 = quantized_model(src, options_for("w4a16", 32));
  auto nf4 = quantized_model(src, options_for("nf4"));
  auto q8 = quantized_model(src, options_for("q8_0"));
  EXPECT_EQ(default_checkpoint_format(*w4), CheckpointFormat::CompressedTensors);
  EXPECT_EQ(default_checkpoint_format(*nf4), CheckpointFormat::Bitsandbytes);
  EXPECT_EQ(default_checkpoint_format(*q8), CheckpointFormat::Qstudy);
  EXPECT_NE(checkpoint_format_problem(*nf4, CheckpointFormat::CompressedTensors).find("bitsandbytes"), std::string::npos);
  EXPECT_NE(checkpoint_format_problem(*w4, CheckpointFormat::Bitsandbytes).find("not a bitsandbytes format"),
            std::string::npos);
  ScratchDir out("ckpt-refuse");
  EXPECT_THROW(save_quantized_model(*q8, src, out.path, CheckpointFormat::CompressedTensors), Error);
  EXPECT_THROW(save_quantized_model(*w4, src, src, CheckpointFormat::CompressedTensors), Error);
  auto dense = load_model(src);
  EXPECT_THROW(save_quantized_model(*dense, src, out.path, CheckpointFormat::Qstudy), Error);
  try {
    save_quantized_model(*w4, src, out.path, CheckpointFormat::Gguf);
    ADD_FAILURE() << "gguf without a tokenizer did not fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
  }
  EXPECT_NE(checkpoint_format_problem(*w4, CheckpointFormat::Gguf).find("GGUF cannot hold"), std::string::npos);
  try {
    load_model_any(out.path + "/model.gguf");
    ADD_FAILURE() << "a missing .gguf path did not fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.gguf"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_checkpoint_format("bitsandbytes"), CheckpointFormat::Bitsandbytes);
  EXPECT_THROW(parse_checkpoint_format("awq"), Error);
}

TEST(Checkpoint, LoadModelAnyReadsDenseModelsToo) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  EXPECT_FALSE(is_quantized_checkpoint(src));
  auto a = load_model_any(src);
  auto b = load_model(src);
  EXPECT_TRUE(same_floats(logits_of(*a), logits_of(*b)));
  const std::string stories = testing::shared_dir() + "/models/stories260K";
  if (std::filesystem::exists(stories)) {
    EXPECT_EQ(load_model_any(stories)->config().hidden_size, 64);
  }
}

// stories260K (a real llama2.c model, Meta rotary layout) written as a Hugging Face checkpoint:
// q/k rows move to the rotate-half layout, every other layer is written as is; the loaded model
// computes the same q and k values in another order, so its logits match up to the summation
// order of attention scores.
TEST(Checkpoint, Llama2cModelBecomesAHuggingFaceCheckpoint) {
  const std::string dir = testing::shared_dir() + "/models/stories260K";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
  const struct {
    const char* scheme;
    int64_t group;
    CheckpointFormat format;
  } rows[] = {{"w4a16", 32, CheckpointFormat::CompressedTensors}, {"w8a8-fp8", -1, CheckpointFormat::CompressedTensors},
              {"nvfp4", -1, CheckpointFormat::CompressedTensors}, {"nf4-dq", -1, CheckpointFormat::Bitsandbytes},
              {"q8_0", -1, CheckpointFormat::Qstudy}};
  for (const auto& r : rows) {
    SCOPED_TRACE(r.scheme);
    auto model = quantized_model(dir, options_for(r.scheme, r.group));
    ASSERT_EQ(model->config().rope_style, kernels::RopeStyle::Interleaved);
    ScratchDir out("ckpt-stories");
    save_quantized_model(*model, dir, out.path, r.format);
    auto loaded = load_model_any(out.path);
    EXPECT_EQ(loaded->config().rope_style, kernels::RopeStyle::Half);
    const auto a = all_linears(*model), b = all_linears(*loaded);
    ASSERT_EQ(a.size(), b.size());
    const ModelConfig& c = model->config();
    for (size_t i = 0; i < a.size(); ++i) {
      const bool q = a[i]->name().ends_with("q_proj"), k = a[i]->name().ends_with("k_proj");
      std::unique_ptr<Linear> moved;
      const Linear* expected = a[i];
      if (q || k) {
        moved = files::to_rotate_half_rows(*a[i], q ? c.num_attention_heads : c.num_key_value_heads, c.head_dim);
        expected = moved.get();
      }
      const auto* qa = dynamic_cast<const QuantLinear*>(expected);
      const auto* qb = dynamic_cast<const QuantLinear*>(b[i]);
      ASSERT_EQ(!!qa, !!qb) << a[i]->name();
      if (qa) expect_same_storage(*qa, *qb);
      else EXPECT_TRUE(same_floats(expected->dequantized(), b[i]->dequantized())) << a[i]->name();
    }
    const auto la = logits_of(*model), lb = logits_of(*loaded);
    double num = 0, den = 0;
    for (size_t i = 0; i < la.size(); ++i) num += (la[i] - lb[i]) * double(la[i] - lb[i]), den += double(la[i]) * la[i];
    EXPECT_LT(std::sqrt(num / den), 1e-5);
    std::printf("stories260K %-10s %-18s logits rel. diff after the rotary re-layout: %.2e\n", r.scheme,
                checkpoint_format_name(r.format).c_str(), std::sqrt(num / den));
    for (size_t row = 0; row < la.size() / c.vocab_size; ++row) {
      const auto* x = la.data() + row * c.vocab_size;
      const auto* y = lb.data() + row * c.vocab_size;
      EXPECT_EQ(std::max_element(x, x + c.vocab_size) - x, std::max_element(y, y + c.vocab_size) - y) << row;
    }
  }
}

// Sizes per scheme of a tiny model (printed for the report): the linear layers in memory (what a
// forward pass reads), their tensors in the checkpoint, and the whole checkpoint on disk.
TEST(Checkpoint, SizesPerScheme) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  const int64_t dense_linear_bytes = [&] {
    int64_t n = 0;
    auto m = load_model(src);
    for (const Linear* l : all_linears(*m)) n += l->weight_bytes();
    return n;
  }();
  std::printf("tiny-llama3 bf16: decoder + head linear weights %lld bytes dense\n",
              static_cast<long long>(dense_linear_bytes));
  std::printf("%-18s %-19s %14s %14s %14s\n", "scheme", "format", "linears in RAM", "linears in file",
              "files on disk");
  const struct {
    const char* scheme;
    int64_t group;
    CheckpointFormat format;
  } rows[] = {{"w8a8-fp8", -1, CheckpointFormat::CompressedTensors},
              {"w8a8-fp8-static", -1, CheckpointFormat::CompressedTensors},
              {"w8a8-int8", -1, CheckpointFormat::CompressedTensors},
              {"w8a16-int8", -1, CheckpointFormat::CompressedTensors},
              {"w4a16", 32, CheckpointFormat::CompressedTensors},
              {"w3a16", 32, CheckpointFormat::CompressedTensors},
              {"nvfp4", -1, CheckpointFormat::CompressedTensors},
              {"mxfp4", -1, CheckpointFormat::CompressedTensors},
              {"nf4", -1, CheckpointFormat::Bitsandbytes},
              {"nf4-dq", -1, CheckpointFormat::Bitsandbytes},
              {"fp4", -1, CheckpointFormat::Bitsandbytes},
              {"llm-int8", -1, CheckpointFormat::Bitsandbytes},
              {"q8_0", -1, CheckpointFormat::Qstudy},
              {"q4_0", -1, CheckpointFormat::Qstudy},
              {"w4a16", 32, CheckpointFormat::Qstudy}};
  for (const auto& r : rows) {
    QuantizeOptions o = options_for(r.scheme, r.group);
    o.include_head = o.scheme.act != ActFormat::Fp8Static;  // no calibrated scale for the head
    auto m = quantized_model(src, o);
    ScratchDir out("ckpt-sizes");
    const SavedCheckpoint saved = save_quantized_model(*m, src, out.path, r.format);
    int64_t ram = 0, file = 0;
    for (const Linear* l : all_linears(*m)) ram += l->weight_bytes();
    for (const auto& t : read_safetensors(out.path + "/model.safetensors").tensors)
      if (t.name.find("_proj.") != std::string::npos || t.name.rfind("lm_head.", 0) == 0)
        file += static_cast<int64_t>(t.nbytes);
    EXPECT_LT(file, dense_linear_bytes) << r.scheme;
    std::printf("%-18s %-19s %14lld %14lld %14lld\n", o.scheme.full_name().c_str(),
                checkpoint_format_name(r.format).c_str(), static_cast<long long>(ram), static_cast<long long>(file),
                static_cast<long long>(saved.bytes_on_disk));
  }
}

}  // namespace
}  // namespace qs::quant::test
