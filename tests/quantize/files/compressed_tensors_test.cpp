// compressed-tensors specifics: the quantization_config against the format's documented examples,
// scale dtypes as llm-compressor writes them, and the NVFP4 reciprocal global scale.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "checkpoint_testing.h"
#include "core/files.h"
#include "formats/int_quant.h"
#include "io/safetensors.h"
#include "quantize/files/compressed_tensors.h"

namespace qs::quant::test {
namespace {

using nlohmann::json;

json saved_quantization_config(const Model& model, const std::string& src, const std::string& out) {
  save_quantized_model(model, src, out, CheckpointFormat::CompressedTensors);
  return read_json_file(out + "/config.json")["quantization_config"];
}

// compressed-tensors' README ("Compressing a Model to MXFP4"): the quantization_config that
// ModelCompressor.update_config writes for the MXFP4 preset on all Linear layers but lm_head.
const char* kReadmeMxfp4Example = R"({
    "config_groups": {
      "group_0": {
        "format": "mxfp4-pack-quantized",
        "input_activations": {
          "actorder": null,
          "block_structure": null,
          "dynamic": true,
          "group_size": 32,
          "num_bits": 4,
          "observer": null,
          "observer_kwargs": {},
          "scale_dtype": "torch.uint8",
          "strategy": "group",
          "symmetric": true,
          "type": "float",
          "zp_dtype": null
        },
        "output_activations": null,
        "targets": [
          "Linear"
        ],
        "weights": {
          "actorder": null,
          "block_structure": null,
          "dynamic": false,
          "group_size": 32,
          "num_bits": 4,
          "observer": "memoryless_minmax",
          "observer_kwargs": {},
          "scale_dtype": "torch.uint8",
          "strategy": "group",
          "symmetric": true,
          "type": "float",
          "zp_dtype": null
        }
      }
    },
    "format": "mxfp4-pack-quantized",
    "global_compression_ratio": null,
    "ignore": [
      "lm_head"
    ],
    "kv_cache_scheme": null,
    "quant_method": "compressed-tensors",
    "quantization_status": "compressed",
    "sparsity_config": {},
    "transform_config": {},
    "version": "0.18.1.dev0+gac8e2ba.d20260813"
  })";

TEST(CompressedTensorsConfig, MatchesTheReadmeMxfp4Example) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  auto model = quantized_model(src, options_for("mxfp4"));
  ScratchDir out("ct-doc-mxfp4");
  json ours = saved_quantization_config(*model, src, out.path);
  json expected = json::parse(kReadmeMxfp4Example);
  // qstudy's mxfp4 keeps 16-bit activations: the MXFP4A16 preset, which is the MXFP4 preset
  // without input_activations (quantization/quant_scheme.py).
  expected["config_groups"]["group_0"]["input_activations"] = nullptr;
  EXPECT_EQ(ours["version"], files::kCompressedTensorsVersion);
  ours.erase("version");
  expected.erase("version");
  EXPECT_EQ(ours, expected) << "ours:\n" << ours.dump(2) << "\nexpected:\n" << expected.dump(2);
}

// compressed-tensors PR #187 ("Remove MemoryLess Observer"): the config llm-compressor's FP8
// example writes (FP8_DYNAMIC: per-channel FP8 weights, dynamic per-token FP8 activations), in
// the field set of that release. Later releases added scale_dtype / zp_dtype and changed the
// default weight observer from "minmax" to "memoryless_minmax" (PR #540).
const char* kPr187Fp8Example = R"({
        "input_activations": {
          "actorder": null, "block_structure": null, "dynamic": true, "group_size": null, "num_bits": 8,
          "observer": null, "observer_kwargs": {}, "strategy": "token", "symmetric": true, "type": "float"
        },
        "output_activations": null,
        "targets": ["Linear"],
        "weights": {
          "actorder": null, "block_structure": null, "dynamic": false, "group_size": null, "num_bits": 8,
          "observer": "minmax", "observer_kwargs": {}
        }
      })";

TEST(CompressedTensorsConfig, MatchesThePr187Fp8DynamicExample) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  auto model = quantized_model(src, options_for("w8a8-fp8"));
  ScratchDir out("ct-doc-fp8");
  const json ours = saved_quantization_config(*model, src, out.path);
  const json group = ours["config_groups"]["group_0"];
  const json doc = json::parse(kPr187Fp8Example);
  for (const char* section : {"input_activations", "weights"})
    for (auto it = doc[section].begin(); it != doc[section].end(); ++it) {
      if (std::string(section) == "weights" && it.key() == "observer") continue;  // default changed in PR #540
      EXPECT_EQ(group[section][it.key()], it.value()) << section << "." << it.key();
    }
  EXPECT_EQ(group["weights"]["observer"], "memoryless_minmax");
  EXPECT_EQ(group["weights"]["strategy"], "channel");  // FP8_DYNAMIC in quant_scheme.py
  EXPECT_EQ(group["weights"]["type"], "float");
  EXPECT_EQ(group["output_activations"], doc["output_activations"]);
  EXPECT_EQ(group["targets"], doc["targets"]);
  EXPECT_EQ(ours["format"], "float-quantized");
  EXPECT_EQ(ours["ignore"], json::array({"lm_head"}));
  // The tensors vLLM's CompressedTensorsW8A8Fp8 loads: FP8 weight, per-channel scale [N, 1].
  const SafetensorsFile f = read_safetensors(out.path + "/model.safetensors");
  std::map<std::string, const Tensor*> by_name;
  for (const auto& t : f.tensors) by_name[t.name] = &t;
  const Tensor* w = by_name.at("model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(w->dtype, DType::F8_E4M3);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{160, 64}));
  EXPECT_EQ(by_name.at("model.layers.0.mlp.up_proj.weight_scale")->shape, (std::vector<int64_t>{160, 1}));
  EXPECT_EQ(by_name.count("model.layers.0.mlp.up_proj.input_scale"), 0u);
}

TEST(CompressedTensorsConfig, PresetArguments) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  struct Expect {
    const char* scheme;
    int64_t group;
    int sym;
    const char* format;
    json weights, input;  // the fields that define the preset (quant_scheme.py)
  };
  const Expect cases[] = {
      {"w8a8-int8", -1, -1, "int-quantized",
       {{"num_bits", 8}, {"type", "int"}, {"strategy", "channel"}, {"symmetric", true}, {"dynamic", false}},
       {{"num_bits", 8}, {"type", "int"}, {"strategy", "token"}, {"symmetric", true}, {"dynamic", true}}},
      {"w4a16", 32, 0, "pack-quantized",
       {{"num_bits", 4}, {"type", "int"}, {"strategy", "group"}, {"group_size", 32}, {"symmetric", false},
        {"zp_dtype", "torch.int8"}},
       nullptr},
      {"w8a8-fp8-static", -1, -1, "float-quantized",
       {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}, {"symmetric", true}},
       {{"num_bits", 8}, {"type", "float"}, {"strategy", "tensor"}, {"dynamic", false}, {"observer", "static_minmax"}}},
      {"nvfp4", -1, -1, "nvfp4-pack-quantized",
       {{"num_bits", 4}, {"type", "float"}, {"strategy", "tensor_group"}, {"group_size", 16},
        {"scale_dtype", "torch.float8_e4m3fn"}, {"zp_dtype", nullptr}},
       nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.scheme);
    auto model = quantized_model(src, options_for(c.scheme, c.group, c.sym));
    ScratchDir out("ct-preset");
    const json qc = saved_quantization_config(*model, src, out.path);
    const json& g = qc["config_groups"]["group_0"];
    EXPECT_EQ(qc["format"], c.format);
    EXPECT_EQ(g["format"], c.format);
    for (auto it = c.weights.begin(); it != c.weights.end(); ++it) EXPECT_EQ(g["weights"][it.key()], *it) << it.key();
    if (c.input.is_null()) {
      EXPECT_TRUE(g["input_activations"].is_null());
    }
    for (auto it = c.input.begin(); !c.input.is_null() && it != c.input.end(); ++it)
      EXPECT_EQ(g["input_activations"][it.key()], *it) << it.key();
  }
}

// Scales exact in the model's dtype are written in it (as llm-compressor writes bf16 scales);
// scales that are not stay F32 so nothing is rounded.
TEST(CompressedTensorsTensors, ScaleDtypeIsTheModelsWhenExact) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  const Scheme s = with_overrides(find_scheme("w4a16"), 32, -1);
  auto model = load_model(src);
  for (auto& layer : model->weights().layers)
    for (auto& [role, slot] : layer.linears()) {
      formats::IntQuantConfig cfg = int_config(s, (*slot)->in_features());
      cfg.scale_dtype = formats::ScaleDType::BF16;  // bf16-exact scales, codes from the rounded scale
      *slot = make_int_linear((*slot)->name(),
                              formats::quantize_int((*slot)->dequantized(), (*slot)->out_features(),
                                                    (*slot)->in_features(), cfg, (*slot)->name()),
                              s);
    }
  // quantize_model stores integer scales in the source model's dtype, as llm-compressor does.
  auto rtn_bf16 = quantized_model(src, options_for("w4a16", 32));
  const std::string src_f32 = tiny_model_dir("tiny-llama3", DType::F32);
  auto rtn = quantized_model(src_f32, options_for("w4a16", 32));
  ScratchDir a("ct-bf16-scales"), b("ct-f32-scales"), c("ct-rtn-bf16-scales");
  save_quantized_model(*model, src, a.path, CheckpointFormat::CompressedTensors);
  save_quantized_model(*rtn, src_f32, b.path, CheckpointFormat::CompressedTensors);
  save_quantized_model(*rtn_bf16, src, c.path, CheckpointFormat::CompressedTensors);
  auto dtype_of = [](const std::string& dir, const std::string& name) {
    for (const auto& t : read_safetensors(dir + "/model.safetensors").tensors)
      if (t.name == name) return t.dtype;
    return DType::Bool;
  };
  const std::string scale = "model.layers.1.mlp.down_proj.weight_scale";
  EXPECT_EQ(dtype_of(a.path, scale), DType::BF16);
  EXPECT_EQ(dtype_of(b.path, scale), DType::F32);
  EXPECT_EQ(dtype_of(c.path, scale), DType::BF16);
  expect_same_model(*model, *load_model_any(a.path));
  expect_same_model(*rtn, *load_model_any(b.path));
  expect_same_model(*rtn_bf16, *load_model_any(c.path));
}

// NVFP4 stores r = 1 / g. For the ~1 in 8 scales g that no f32 r reproduces as 1 / r, the exact g
// rides in the shard's metadata; without it the reader's g is the nearest 1 / r.
TEST(CompressedTensorsTensors, Nvfp4GlobalScaleThatNoReciprocalReproduces) {
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  auto model = quantized_model(src, options_for("nvfp4"));
  auto& slot = model->weights().layers[0].q;
  formats::NvFp4Matrix m = *dynamic_cast<const QuantLinear&>(*slot).storage().nvfp4;
  float g = m.global_scale;
  while (f32_bits(1.0f / (1.0f / g)) == f32_bits(g)) g = f32_from_bits(f32_bits(g) + 1);
  m.global_scale = g;
  slot = make_nvfp4_linear(slot->name(), m, find_scheme("nvfp4"));
  ScratchDir out("ct-nvfp4-global");
  save_quantized_model(*model, src, out.path, CheckpointFormat::CompressedTensors);
  const std::string key = "qstudy.nvfp4_global_scale." + slot->name();
  SafetensorsFile f = read_safetensors(out.path + "/model.safetensors");
  ASSERT_EQ(f.metadata.count(key), 1u);
  EXPECT_EQ(f.metadata.at(key), files::f32_hex(g));
  expect_same_model(*model, *load_model_any(out.path));

  // The same file without qstudy's metadata: what vLLM computes, 1 / r, one ulp away.
  std::vector<Tensor> tensors = f.tensors;
  write_safetensors(out.path + "/plain.safetensors", tensors, {{"format", "pt"}});
  f = SafetensorsFile{};
  std::filesystem::rename(out.path + "/plain.safetensors", out.path + "/model.safetensors");
  auto plain = load_model_any(out.path);
  const float read = dynamic_cast<const QuantLinear&>(*plain->weights().layers[0].q).storage().nvfp4->global_scale;
  EXPECT_NE(f32_bits(read), f32_bits(g));
  EXPECT_LE(std::abs(static_cast<int64_t>(f32_bits(read)) - static_cast<int64_t>(f32_bits(g))), 1);
}

}  // namespace
}  // namespace qs::quant::test
