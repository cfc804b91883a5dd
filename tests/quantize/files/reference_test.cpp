// Checkpoints written or read by independent Python implementations of the published formats
// (tests/quantize/ref/): AutoGPTQ / AutoAWQ files written in Python must load into exactly the
// weights the Python side meant; compressed-tensors and bitsandbytes files written by qstudy must
// decode in Python (following compressed-tensors' unpack_from_int32 / fp4 unpacking and
// bitsandbytes' dequantization) to the weights qstudy holds, and files those Python writers
// produce must load in qstudy to the weights they meant.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "checkpoint_testing.h"
#include "core/files.h"

namespace qs::quant::test {
namespace {

::testing::AssertionResult run_ref(const std::string& script, const std::string& args) {
  const std::string cmd = testing::python() + " " +
                          testing::shell_quote(testing::source_dir() + "/tests/quantize/ref/" + script) + " " + args;
  auto r = testing::run_command(cmd);
  if (r.exit_code != 0)
    return ::testing::AssertionFailure() << cmd << " exited " << r.exit_code << "\n" << r.out << "\n" << r.err;
  return ::testing::AssertionSuccess();
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / 4);
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

// Compares every decoder linear layer's dequantized weight with OUT/expected/<layer>.f32.
// `ulps` > 0 allows that many units in the last place where the format's own arithmetic
// (e.g. NVFP4's divide by the stored reciprocal) differs from qstudy's canonical one.
void expect_layers_match(const Model& m, const std::string& expected_dir, uint32_t ulps, int* exact_layers = nullptr) {
  int checked = 0, exact = 0;
  for (auto& layer : const_cast<Model&>(m).weights().layers)
    for (auto& [role, slot] : layer.linears()) {
      const Linear& lin = **slot;
      const std::string path = expected_dir + "/" + lin.name() + ".f32";
      if (!file_exists(path)) continue;
      ++checked;
      const std::vector<float> want = read_f32(path), got = lin.dequantized();
      ASSERT_EQ(want.size(), got.size()) << lin.name();
      size_t bad = 0, first = want.size();
      for (size_t i = 0; i < want.size(); ++i) {
        const uint32_t a = f32_bits(want[i]), b = f32_bits(got[i]);
        const bool same = a == b || (want[i] == 0 && got[i] == 0);
        const uint32_t d = a > b ? a - b : b - a;
        if (!same && !(ulps > 0 && (a >> 31) == (b >> 31) && d <= ulps)) bad += (first = std::min(first, i), 1);
      }
      exact += same_floats(want, got);
      EXPECT_EQ(bad, 0u) << lin.name() << ": first difference at " << first << ": expected " << want[first]
                         << ", got " << got[first];
    }
  EXPECT_GT(checked, 0) << "no expected weights in " << expected_dir;
  if (exact_layers) *exact_layers = exact;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// ---- AutoGPTQ / AutoAWQ files written by Python ----------------------------------------------

struct RefCase {
  std::string mode, preset, scheme;  // scheme: the full_name every layer should get
  bool act_order = false;
};
void PrintTo(const RefCase& c, std::ostream* os) { *os << c.mode << " " << c.preset; }

class GptqAwqFromPython : public ::testing::TestWithParam<RefCase> {};

TEST_P(GptqAwqFromPython, LoadsTheWeightsTheWriterMeant) {
  const RefCase& c = GetParam();
  const std::string src = tiny_model_dir(c.preset, DType::BF16);
  ScratchDir out("ref-" + c.mode);
  ASSERT_TRUE(run_ref("gptq_awq_ref.py", testing::shell_quote(src) + " " + testing::shell_quote(out.path) + " " + c.mode));
  auto model = load_model_any(out.path);
  expect_layers_match(*model, out.path + "/expected", 0);
  bool any_g_idx = false;
  for (auto& layer : model->weights().layers)
    for (auto& [role, slot] : layer.linears()) {
      const auto* q = dynamic_cast<const QuantLinear*>(slot->get());
      ASSERT_TRUE(q) << (*slot)->name() << " was not read as quantized";
      EXPECT_EQ(q->format(), c.scheme) << q->name();
      any_g_idx |= !q->storage().int_matrix->g_idx.empty();
    }
  EXPECT_EQ(any_g_idx, c.act_order);
  EXPECT_TRUE(all_finite(logits_of(*model)));
  // Converted to compressed-tensors (as compressed-tensors' AutoAWQ converter does) and back: the
  // same model bit for bit.
  ScratchDir converted("ref-converted-" + c.mode);
  save_quantized_model(*model, out.path, converted.path, CheckpointFormat::CompressedTensors);
  expect_same_model(*model, *load_model_any(converted.path));
}

INSTANTIATE_TEST_SUITE_P(
    Modes, GptqAwqFromPython,
    ::testing::Values(RefCase{"gptq_v1_sym_g32", "tiny-llama3", "w4a16-g32", false},
                      RefCase{"gptq_v1_asym_g16_actorder", "tiny-llama3", "w4a16-g16-asym", true},
                      RefCase{"gptq_v1_asym_g16_actorder", "tiny-qwen2", "w4a16-g16-asym", true},
                      RefCase{"gptq_v2_asym_g32", "tiny-llama3", "w4a16-g32-asym", false},
                      RefCase{"gptq_8bit_channel", "tiny-llama3", "w8a16-int8", false},
                      RefCase{"gptq_quantize_config_g32", "tiny-llama3", "w4a16-g32", true},
                      RefCase{"awq_g32", "tiny-llama3", "w4a16-g32-asym", false},
                      RefCase{"awq_g16", "tiny-qwen2", "w4a16-g16-asym", false}),
    [](const auto& info) { return info.param.mode + "_" + (info.param.preset == "tiny-qwen2" ? "qwen2" : "llama3"); });

// ---- qstudy's files decoded by Python ---------------------------------------------------------

struct OwnCase {
  std::string name, preset, scheme;
  int64_t group;
  int sym;
  CheckpointFormat format;
  uint32_t ulps;  // 0: bit for bit
  std::vector<std::string> overrides;
};
void PrintTo(const OwnCase& c, std::ostream* os) { *os << c.name; }

class OwnFilesInPython : public ::testing::TestWithParam<OwnCase> {};

TEST_P(OwnFilesInPython, DecodeToTheWeightsQstudyHolds) {
  const OwnCase& c = GetParam();
  const std::string src = tiny_model_dir(c.preset, DType::BF16);
  QuantizeOptions o = options_for(c.scheme, c.group, c.sym);
  for (const auto& spec : c.overrides) o.overrides.push_back(parse_override(spec));
  auto model = quantized_model(src, o);
  ScratchDir out("own-" + c.name);
  save_quantized_model(*model, src, out.path, c.format);
  const char* script = c.format == CheckpointFormat::Bitsandbytes ? "bnb_ref.py" : "ct_ref.py";
  ASSERT_TRUE(run_ref(script, "read " + testing::shell_quote(out.path)));
  int exact = 0;
  expect_layers_match(*model, out.path + "/expected", c.ulps, &exact);
  std::printf("%-22s layers decoded bit for bit by the Python reader: %d\n", c.name.c_str(), exact);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, OwnFilesInPython,
    ::testing::Values(
        OwnCase{"ct_w4a16_g32_asym", "tiny-llama3", "w4a16", 32, 0, CheckpointFormat::CompressedTensors, 0, {}},
        OwnCase{"ct_w3a16_g16", "tiny-qwen2", "w3a16", 16, -1, CheckpointFormat::CompressedTensors, 0, {}},
        OwnCase{"ct_w8a16_channel", "tiny-llama3", "w8a16-int8", -1, -1, CheckpointFormat::CompressedTensors, 0, {}},
        OwnCase{"ct_w8a8_int8", "tiny-llama3", "w8a8-int8", -1, -1, CheckpointFormat::CompressedTensors, 0, {}},
        OwnCase{"ct_w8a8_fp8", "tiny-llama3", "w8a8-fp8", -1, -1, CheckpointFormat::CompressedTensors, 0, {}},
        OwnCase{"ct_mxfp4", "tiny-llama3", "mxfp4", -1, -1, CheckpointFormat::CompressedTensors, 0, {}},
        // NVFP4 files divide by the stored reciprocal global scale; qstudy multiplies by g.
        OwnCase{"ct_nvfp4", "tiny-llama3", "nvfp4", -1, -1, CheckpointFormat::CompressedTensors, 4, {}},
        OwnCase{"ct_mixed", "tiny-llama3", "w4a16", 32, -1, CheckpointFormat::CompressedTensors, 0,
                {"mlp\\.down_proj=w8a8-fp8", "k_proj=none"}},
        OwnCase{"bnb_nf4", "tiny-llama3", "nf4", -1, -1, CheckpointFormat::Bitsandbytes, 0, {}},
        OwnCase{"bnb_fp4_dq", "tiny-qwen2", "fp4-dq", -1, -1, CheckpointFormat::Bitsandbytes, 0, {}},
        // bitsandbytes dequantizes int8 as CB * SCB * (1 / 127); qstudy as CB * (SCB / 127).
        OwnCase{"bnb_llm_int8", "tiny-llama3", "llm-int8", -1, -1, CheckpointFormat::Bitsandbytes, 4, {}}),
    [](const auto& info) { return info.param.name; });

// ---- files written by the Python compressed-tensors and bitsandbytes writers ---------------------

struct PyCase {
  std::string script, mode, preset, scheme;
  uint32_t ulps;
};
void PrintTo(const PyCase& c, std::ostream* os) { *os << c.script << " " << c.mode; }

class PythonWrittenFiles : public ::testing::TestWithParam<PyCase> {};

TEST_P(PythonWrittenFiles, LoadToTheWeightsTheWriterMeant) {
  const PyCase& c = GetParam();
  const std::string src = tiny_model_dir(c.preset, DType::BF16);
  ScratchDir out("py-" + c.mode);
  ASSERT_TRUE(run_ref(c.script, "write " + testing::shell_quote(src) + " " + testing::shell_quote(out.path) + " " + c.mode));
  auto model = load_model_any(out.path);
  int exact = 0;
  expect_layers_match(*model, out.path + "/expected", c.ulps, &exact);
  std::printf("%-28s layers loaded bit for bit: %d\n", c.mode.c_str(), exact);
  for (auto& layer : model->weights().layers)
    for (auto& [role, slot] : layer.linears()) {
      const auto* q = dynamic_cast<const QuantLinear*>(slot->get());
      ASSERT_TRUE(q) << (*slot)->name();
      EXPECT_EQ(q->format(), c.scheme);
    }
  EXPECT_TRUE(all_finite(logits_of(*model)));
}

INSTANTIATE_TEST_SUITE_P(
    Writers, PythonWrittenFiles,
    ::testing::Values(PyCase{"ct_ref.py", "w4a16_asym_g32_actorder", "tiny-llama3", "w4a16-g32-asym", 0},
                      PyCase{"ct_ref.py", "w4a16_asym_g16_unpacked_zp", "tiny-qwen2", "w4a16-g16-asym", 0},
                      PyCase{"ct_ref.py", "w8a16_channel", "tiny-llama3", "w8a16-int8", 0},
                      PyCase{"ct_ref.py", "w8a8_int8", "tiny-llama3", "w8a8-int8", 0},
                      PyCase{"bnb_ref.py", "nf4", "tiny-llama3", "nf4", 0},
                      // The file carries torch's dynamic map; qstudy decodes with the exact one
                      // (an ulp or two apart, formats/nf4.h).
                      PyCase{"bnb_ref.py", "nf4_dq", "tiny-llama3", "nf4-dq", 8},
                      PyCase{"bnb_ref.py", "fp4_dq", "tiny-qwen2", "fp4-dq", 8},
                      PyCase{"bnb_ref.py", "int8", "tiny-llama3", "llm-int8", 4}),
    [](const auto& info) { return info.param.script.substr(0, 3) + "_" + info.param.mode; });

}  // namespace
}  // namespace qs::quant::test
