// Malformed and unsupported checkpoints: each is refused with one line naming the file, the
// tensor or field, and what was expected.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "checkpoint_testing.h"
#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"

namespace qs::quant::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// A valid checkpoint of each kind, written once; each case edits a copy.
std::string base_checkpoint(const std::string& kind) {
  static std::map<std::string, std::string> made;
  if (auto it = made.find(kind); it != made.end()) return it->second;
  const std::string src = tiny_model_dir("tiny-llama3", DType::BF16);
  const std::string dir = testing::make_temp_dir("err-base-" + kind);
  auto save = [&](const QuantizeOptions& o, CheckpointFormat f) { save_quantized_model(*quantized_model(src, o), src, dir, f); };
  if (kind == "pack") save(options_for("w4a16", 32, 0), CheckpointFormat::CompressedTensors);
  else if (kind == "fp8") save(options_for("w8a8-fp8-static"), CheckpointFormat::CompressedTensors);
  else if (kind == "nvfp4") save(options_for("nvfp4"), CheckpointFormat::CompressedTensors);
  else if (kind == "nf4") save(options_for("nf4-dq"), CheckpointFormat::Bitsandbytes);
  else if (kind == "int8") save(options_for("llm-int8"), CheckpointFormat::Bitsandbytes);
  else if (kind == "qstudy") save(options_for("w4a16", 32, 0), CheckpointFormat::Qstudy);
  else {  // gptq / awq from the Python writer
    const std::string mode = kind == "gptq" ? "gptq_v2_asym_g32" : "awq_g32";
    auto r = testing::run_command(testing::python() + " " +
                                  testing::shell_quote(testing::source_dir() + "/tests/quantize/ref/gptq_awq_ref.py") +
                                  " " + testing::shell_quote(src) + " " + testing::shell_quote(dir) + " " + mode);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  made[kind] = dir;
  return dir;
}

// A copy of a base checkpoint to break, removed when the test passes.
struct CheckpointCopy : ScratchDir {
  explicit CheckpointCopy(const std::string& kind) : ScratchDir("err-" + kind) {
    fs::copy(base_checkpoint(kind), path, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  }
  operator const std::string&() const { return path; }
};

void edit_config(const std::string& dir, const std::function<void(json&)>& fn) {
  json c = read_json_file(dir + "/config.json");
  fn(c);
  write_file_atomic(dir + "/config.json", c.dump(2));
}
void edit_qc(const std::string& dir, const std::function<void(json&)>& fn) {
  edit_config(dir, [&](json& c) { fn(c["quantization_config"]); });
}

void edit_tensors(const std::string& dir, const std::function<void(std::vector<OwnedTensor>&)>& fn) {
  const std::string path = dir + "/model.safetensors";
  std::vector<OwnedTensor> ts;
  {
    SafetensorsFile f = read_safetensors(path);
    for (const auto& t : f.tensors) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      ts.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
    }
  }
  fn(ts);
  std::vector<Tensor> out;
  for (auto& t : ts) {
    Tensor x;
    x.name = t.name, x.dtype = t.dtype, x.shape = t.shape, x.data = t.bytes.data(), x.nbytes = t.bytes.size();
    out.push_back(x);
  }
  write_safetensors(path, out, {{"format", "pt"}});
}

OwnedTensor& find(std::vector<OwnedTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("test: no tensor " + name);
}
void erase(std::vector<OwnedTensor>& ts, const std::string& name) {
  std::erase_if(ts, [&](const OwnedTensor& t) { return t.name == name; });
}

const std::string Q = "model.layers.0.self_attn.q_proj";

// The message of loading `dir`, checked to be one line.
std::string load_error(const std::string& dir) {
  try {
    load_model_any(dir);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    return m;
  }
  return "(no error)";
}

#define EXPECT_REFUSED(dir, ...)                                                   \
  do {                                                                             \
    const std::string msg_ = load_error(dir);                                      \
    for (const std::string& part_ : std::vector<std::string>{__VA_ARGS__})        \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "missing " << quote(part_) \
                                                      << " in: " << msg_;          \
  } while (0)

TEST(CheckpointErrors, CompressedTensorsTensors) {
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) { erase(ts, Q + ".weight_scale"); });
    EXPECT_REFUSED(d, "missing tensor '" + Q + ".weight_scale'", "pack-quantized weight_scale");
  }
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) {
      auto& t = find(ts, Q + ".weight_packed");
      t.dtype = DType::U32;
    });
    EXPECT_REFUSED(d, "model.safetensors: tensor '" + Q + ".weight_packed' has dtype U32, expected I32");
  }
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) {
      auto& t = find(ts, Q + ".weight_packed");
      t.shape = {t.shape[0] / 2, t.shape[1] * 2};
    });
    EXPECT_REFUSED(d, Q + ".weight_packed' has shape [32, 16], expected [64, 8]");
  }
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) { reinterpret_cast<int64_t*>(find(ts, Q + ".weight_shape").bytes.data())[1] = 72; });
    EXPECT_REFUSED(d, "weight_shape is [64, 72] but the layer is [64, 64]");
  }
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) { erase(ts, Q + ".weight_zero_point"); });
    EXPECT_REFUSED(d, "missing tensor '" + Q + ".weight_zero_point'", "asymmetric");
  }
  {
    const CheckpointCopy d("pack");
    edit_tensors(d, [](auto& ts) {
      OwnedTensor g{Q + ".weight_g_idx", DType::I32, {64}, std::vector<uint8_t>(256, 0)};
      reinterpret_cast<int32_t*>(g.bytes.data())[5] = 9;
      ts.push_back(g);
    });
    EXPECT_REFUSED(d, Q + ".weight_g_idx'", "g_idx[5] = 9 is outside [0, 2)");
  }
  {
    const CheckpointCopy d("nvfp4");
    edit_tensors(d, [](auto& ts) { find(ts, Q + ".weight_scale").dtype = DType::U8; });
    EXPECT_REFUSED(d, "weight_scale' has dtype U8, expected F8_E4M3", "NVFP4 block scales");
  }
  {
    const CheckpointCopy d("nvfp4");
    edit_tensors(d, [](auto& ts) {
      float bad = -1;
      std::memcpy(find(ts, Q + ".weight_global_scale").bytes.data(), &bad, 4);
    });
    EXPECT_REFUSED(d, "weight_global_scale -1 must be finite and > 0");
  }
  {
    const CheckpointCopy d("fp8");
    edit_tensors(d, [](auto& ts) { erase(ts, Q + ".input_scale"); });
    EXPECT_REFUSED(d, "missing tensor '" + Q + ".input_scale' (static activations need input_scale)");
  }
}

TEST(CheckpointErrors, CompressedTensorsConfig) {
  struct Edit {
    const char* kind;
    std::function<void(json&)> fn;
    std::vector<std::string> expect;
  };
  const std::vector<Edit> edits = {
      {"pack", [](json& q) { q["quant_method"] = "hqq"; }, {"config.json", "quant_method 'hqq' is not supported"}},
      {"pack", [](json& q) { q["format"] = "marlin-24"; q["config_groups"]["group_0"].erase("format"); },
       {"format 'marlin-24' is not supported"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "rows"; },
       {"config_groups.group_0.weights.strategy: unknown strategy 'rows'"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["weights"]["group_size"] = 48; },
       {"group size 48 does not divide input size 64"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 9; },
       {"weights.num_bits: expected an integer in 1..8"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 2; },
       {"2-bit integer weights have no qstudy scheme"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "tensor"; },
       {"weight strategy 'tensor' is not supported for integer weights"}},
      {"pack", [](json& q) { q["quantization_status"] = "frozen"; }, {"quantization_status is 'frozen'"}},
      {"pack", [](json& q) { q["sparsity_config"] = {{"format", "sparse-24-bitmask"}}; },
       {"quantization_config.sparsity_config is set", "sparse"}},
      {"pack", [](json& q) { q["kv_cache_scheme"] = {{"num_bits", 8}}; }, {"kv_cache_scheme is set"}},
      {"pack", [](json& q) { q.erase("config_groups"); }, {"config_groups: expected a non-empty object"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"] = json::array({"Linear"}); },
       {"preset names with target lists are not expanded"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["targets"] = json::array({"re:(unclosed"}); },
       {"is not a valid regular expression"}},
      {"pack", [](json& q) { q["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}, {"type", "int"}}; },
       {"pack-quantized with quantized input activations"}},
      {"fp8", [](json& q) { q["config_groups"]["group_0"]["input_activations"] = nullptr; },
       {"W8A16-FP8", "no qstudy scheme"}},
      {"fp8", [](json& q) {
         auto& w = q["config_groups"]["group_0"]["weights"];
         w["strategy"] = "block";
         w["block_structure"] = {128, 128};
       },
       {"FP8 weight strategy 'block' is not supported"}},
      {"nvfp4", [](json& q) {
         q["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 4}, {"type", "float"}, {"group_size", 16},
                                                               {"strategy", "tensor_group"}, {"dynamic", "local"}};
       },
       {"NVFP4 with quantized input activations", "16-bit activations only"}},
  };
  for (const auto& e : edits) {
    const CheckpointCopy d(e.kind);
    edit_qc(d, e.fn);
    const std::string msg = load_error(d);
    for (const auto& part : e.expect) EXPECT_NE(msg.find(part), std::string::npos) << "missing " << part << " in: " << msg;
  }
}

TEST(CheckpointErrors, Bitsandbytes) {
  const std::string state = Q + ".weight.quant_state.bitsandbytes__nf4";
  auto set_blob = [&](const std::string& dir, const std::string& text) {
    edit_tensors(dir, [&](auto& ts) {
      auto& t = find(ts, state);
      t.bytes.assign(text.begin(), text.end());
      t.shape = {static_cast<int64_t>(text.size())};
    });
  };
  {
    const CheckpointCopy d("nf4");
    set_blob(d, "{\"quant_type\": \"nf4\", ");
    EXPECT_REFUSED(d, state + "'", "quant state is not valid JSON");
  }
  {
    const CheckpointCopy d("nf4");
    set_blob(d, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [64, 32], "
                "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}");
    EXPECT_REFUSED(d, "quant state shape [64,32] disagrees with the layer's [64, 64]");
  }
  {
    const CheckpointCopy d("nf4");
    set_blob(d, "{\"quant_type\": \"nf4\", \"blocksize\": 60, \"dtype\": \"bfloat16\", \"shape\": [64, 64]}");
    EXPECT_REFUSED(d, "quant state blocksize 60 is not a power of two");
  }
  {
    const CheckpointCopy d("nf4");
    set_blob(d, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [64, 64], \"x\": 1}");
    EXPECT_REFUSED(d, "unexpected quant state key 'x'");
  }
  {
    const CheckpointCopy d("nf4");
    edit_tensors(d, [&](auto& ts) { reinterpret_cast<float*>(find(ts, Q + ".weight.quant_map").bytes.data())[3] = 0.5f; });
    EXPECT_REFUSED(d, Q + ".weight.quant_map'", "custom maps are not supported");
  }
  {
    const CheckpointCopy d("nf4");
    edit_tensors(d, [&](auto& ts) {
      auto& t = find(ts, Q + ".weight.absmax");
      t.bytes.resize(t.bytes.size() - 1);
      t.shape[0] -= 1;
    });
    EXPECT_REFUSED(d, Q + ".weight.absmax' has shape [63], expected 64 values");
  }
  {
    const CheckpointCopy d("nf4");
    edit_tensors(d, [&](auto& ts) { erase(ts, state); });
    EXPECT_REFUSED(d, Q + ".weight': quantized weight without its state");
  }
  {
    const CheckpointCopy d("nf4");
    edit_qc(d, [](json& q) { q["load_in_4bit"] = false, q["_load_in_4bit"] = false; });
    EXPECT_REFUSED(d, "load_in_4bit / load_in_8bit: expected exactly one of them to be true, got neither");
  }
  {
    const CheckpointCopy d("int8");
    edit_tensors(d, [&](auto& ts) { find(ts, Q + ".weight_format").bytes[0] = 2; });
    EXPECT_REFUSED(d, Q + ".weight_format'", "weight_format 2 is a GPU tile layout");
  }
  {
    const CheckpointCopy d("int8");
    edit_qc(d, [](json& q) { q["llm_int8_has_fp16_weight"] = true; });
    EXPECT_REFUSED(d, "llm_int8_has_fp16_weight is true");
  }
}

TEST(CheckpointErrors, GptqAndAwq) {
  const struct {
    const char* kind;
    std::function<void(json&)> fn;
    std::string expect;
    std::string where = "config.json: quantization_config";
  } edits[] = {
      {"gptq", [](json& q) { q["bits"] = 2; }, "2-bit GPTQ is not supported"},
      {"gptq", [](json& q) { q["bits"] = 3; }, "AutoGPTQ packs 3-bit codes across int32 words"},
      {"gptq", [](json& q) { q["checkpoint_format"] = "marlin"; }, "checkpoint_format: 'marlin' is not supported"},
      {"gptq", [](json& q) { q["is_marlin_format"] = true; }, "Marlin-repacked GPTQ is not supported"},
      {"gptq", [](json& q) { q["sym"] = true; }, "the config says sym = true but the zero points are not all 8",
       "model.safetensors: tensor '" + Q + ".qzeros'"},
      {"gptq", [](json& q) { q["group_size"] = 48; }, "group size 48 does not divide input size 64",
       "config.json: layer '" + Q + "'"},
      {"awq", [](json& q) { q["version"] = "GEMV"; }, "AWQ layout 'gemv' is not supported"},
      {"awq", [](json& q) { q["version"] = "exllama"; }, "AWQ layout 'exllama' is not supported"},
      {"awq", [](json& q) { q["backend"] = "llm-awq"; }, "'llm-awq' packs weights differently"},
      {"awq", [](json& q) { q["zero_point"] = false; }, "AWQ without zero points is not supported"},
  };
  for (const auto& e : edits) {
    const CheckpointCopy d(e.kind);
    edit_qc(d, e.fn);
    EXPECT_REFUSED(d, e.where, e.expect);
  }
  {
    const CheckpointCopy d("gptq");
    edit_tensors(d, [](auto& ts) { find(ts, Q + ".scales").dtype = DType::BF16; });
    EXPECT_REFUSED(d, Q + ".scales' has dtype BF16, expected F16");
  }
  {
    const CheckpointCopy d("gptq");
    edit_tensors(d, [](auto& ts) { find(ts, Q + ".qzeros").shape = {4, 4}; });
    EXPECT_REFUSED(d, Q + ".qzeros' has shape [4, 4], expected [2, 8]");
  }
  {
    const CheckpointCopy d("awq");
    edit_tensors(d, [](auto& ts) { erase(ts, Q + ".qzeros"); });
    EXPECT_REFUSED(d, "missing tensor '" + Q + ".qzeros' (AWQ qzeros)");
  }
}

TEST(CheckpointErrors, QstudyAndGeneral) {
  {
    const CheckpointCopy d("qstudy");
    edit_qc(d, [](json& q) { q["version"] = 2; });
    EXPECT_REFUSED(d, "quantization_config.version: expected 1");
  }
  {
    const CheckpointCopy d("qstudy");
    edit_qc(d, [](json& q) { q["layers"][Q]["scheme"] = "w5a16"; });
    EXPECT_REFUSED(d, "quantization_config.layers." + Q + ".scheme: unknown scheme 'w5a16'");
  }
  {
    const CheckpointCopy d("qstudy");
    edit_qc(d, [](json& q) { q["layers"][Q]["group_size"] = 64; });
    EXPECT_REFUSED(d, ".full_name: 'w4a16-g32-asym' disagrees with the scheme's parameters (w4a16-g64-asym)");
  }
  {
    const CheckpointCopy d("qstudy");
    edit_qc(d, [](json& q) { q["layers"][Q]["storage"] = "fp8"; });
    EXPECT_REFUSED(d, ".storage: 'fp8' does not hold scheme w4a16");
  }
  {
    const CheckpointCopy d("qstudy");
    edit_tensors(d, [](auto& ts) { erase(ts, Q + ".q_zeros"); });
    EXPECT_REFUSED(d, "missing tensor '" + Q + ".q_zeros'");
  }
  {
    const CheckpointCopy d("pack");
    edit_config(d, [](json& c) { c.erase("quantization_config"); });
    EXPECT_FALSE(is_quantized_checkpoint(d));
    EXPECT_THROW(load_quantized_model(d), Error);
    // As a dense checkpoint, the packed layers are missing their weights.
    EXPECT_REFUSED(d, "missing tensor 'model.layers.0.self_attn.q_proj.weight'");
  }
  {
    const CheckpointCopy d("pack");
    edit_qc(d, [](json& q) { q.erase("quant_method"); });
    EXPECT_REFUSED(d, "quantization_config.quant_method: missing");
  }
}

}  // namespace
}  // namespace qs::quant::test
