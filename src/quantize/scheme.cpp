#include "quantize/scheme.h"

#include <algorithm>

#include "core/error.h"

namespace qs::quant {

namespace {

std::vector<Scheme> make_schemes() {
  const std::vector<std::string> int_algos = {"rtn-mse", "gptq", "awq"};
  std::vector<Scheme> s;
  auto add = [&](Scheme x) { s.push_back(std::move(x)); };
  add({"w8a8-fp8", "FP8 E4M3 weights, per-channel scales; FP8 activations, dynamic per-token scales",
       WeightFormat::Fp8E4M3, 8, 0, true, false, ActFormat::Fp8PerToken, 6.0f, {"smoothquant"}, "float-quantized", ""});
  add({"w8a8-fp8-static", "FP8 E4M3 weights, per-channel scales; FP8 activations, one calibrated scale per tensor",
       WeightFormat::Fp8E4M3, 8, 0, true, false, ActFormat::Fp8Static, 6.0f, {"smoothquant"}, "float-quantized", ""});
  add({"w8a8-int8", "INT8 symmetric per-channel weights; INT8 symmetric dynamic per-token activations",
       WeightFormat::Int, 8, 0, true, false, ActFormat::Int8PerToken, 6.0f,
       {"rtn-mse", "gptq", "smoothquant", "smoothquant+gptq"}, "int-quantized", ""});
  add({"w8a16-int8", "INT8 symmetric per-channel weights; 16-bit activations", WeightFormat::Int, 8, 0, true, false,
       ActFormat::None, 6.0f, int_algos, "pack-quantized", ""});
  add({"w4a16", "INT4 weights, groups of 128 (symmetric; --asym for zero points, --group-size 32/64/0); 16-bit activations",
       WeightFormat::Int, 4, 128, true, false, ActFormat::None, 6.0f, int_algos, "pack-quantized", ""});
  add({"w3a16", "INT3 weights, groups of 128 (symmetric; --asym for zero points); 16-bit activations", WeightFormat::Int,
       3, 128, true, false, ActFormat::None, 6.0f, int_algos, "pack-quantized", ""});
  add({"nf4", "bitsandbytes NF4: blocks of 64 with an absmax scale; 16-bit activations", WeightFormat::Nf4, 4, 64, true,
       false, ActFormat::None, 6.0f, {}, "", ""});
  add({"nf4-dq", "bitsandbytes NF4 with double quantization of the absmax (8-bit, blocks of 256)", WeightFormat::Nf4, 4,
       64, true, true, ActFormat::None, 6.0f, {}, "", ""});
  add({"fp4", "bitsandbytes FP4 (E2M1): blocks of 64 with an absmax scale; 16-bit activations", WeightFormat::Fp4, 4, 64,
       true, false, ActFormat::None, 6.0f, {}, "", ""});
  add({"fp4-dq", "bitsandbytes FP4 with double quantization of the absmax", WeightFormat::Fp4, 4, 64, true, true,
       ActFormat::None, 6.0f, {}, "", ""});
  add({"llm-int8", "LLM.int8(): INT8 vector-wise, input columns with activations above 6.0 kept in 16-bit",
       WeightFormat::Int, 8, 0, true, false, ActFormat::LlmInt8, 6.0f, {}, "", ""});
  add({"mxfp4", "OCP MXFP4: E2M1 elements, one E8M0 power-of-two scale per 32; 16-bit activations",
       WeightFormat::MxFp4, 4, 32, true, false, ActFormat::None, 6.0f, {}, "mxfp4-pack-quantized", ""});
  add({"nvfp4", "NVFP4: E2M1 elements, one FP8 E4M3 scale per 16, one FP32 scale per tensor; 16-bit activations",
       WeightFormat::NvFp4, 4, 16, true, false, ActFormat::None, 6.0f, {}, "nvfp4-pack-quantized", ""});
  add({"q8_0", "GGUF Q8_0 (llama.cpp): int8 blocks of 32 with an f16 scale; activations as Q8_0 blocks",
       WeightFormat::Q8_0, 8, 32, true, false, ActFormat::Q8_0Blocks, 6.0f, {}, "", "Q8_0"});
  add({"q4_0", "GGUF Q4_0 (llama.cpp): 4-bit blocks of 32 with an f16 scale; activations as Q8_0 blocks",
       WeightFormat::Q4_0, 4, 32, true, false, ActFormat::Q8_0Blocks, 6.0f, {}, "", "Q4_0"});
  return s;
}

std::string scheme_names() {
  std::string names;
  for (const auto& s : all_schemes()) names += (names.empty() ? "" : ", ") + s.name;
  return names;
}

}  // namespace

std::string Scheme::full_name() const {
  const Scheme& base = find_scheme(name);
  std::string n = name;
  if (group_size != base.group_size) n += group_size == 0 ? "-per-channel" : cat("-g", group_size);
  if (symmetric != base.symmetric) n += symmetric ? "-sym" : "-asym";
  return n;
}

const std::vector<Scheme>& all_schemes() {
  static const std::vector<Scheme> schemes = make_schemes();
  return schemes;
}

Scheme find_scheme(const std::string& name) {
  for (const auto& s : all_schemes())
    if (s.name == name) return s;
  fail("--scheme: unknown scheme ", quote(name), " (valid: ", scheme_names(), ")");
}

Scheme with_overrides(Scheme s, int64_t group_size, int symmetric) {
  const bool int_weights = s.weight == WeightFormat::Int && s.act != ActFormat::LlmInt8;
  if (group_size >= 0) {
    if (!int_weights || s.act != ActFormat::None)
      fail("--group-size: scheme ", s.name, " has a fixed granularity (only weight-only integer schemes take it)");
    if (group_size != 0 && (group_size < 8 || group_size % 8 != 0))
      fail("--group-size: ", group_size, " is invalid (expected 0 for per-channel, or a multiple of 8 such as 32, 64, 128)");
    s.group_size = group_size;
  }
  if (symmetric >= 0) {
    if (!int_weights || s.act != ActFormat::None)
      fail(symmetric ? "--sym" : "--asym", ": scheme ", s.name, " is symmetric by definition");
    s.symmetric = symmetric != 0;
  }
  return s;
}

const std::vector<std::string>& algorithm_names() {
  static const std::vector<std::string> names = {"rtn", "rtn-mse", "gptq", "awq", "smoothquant", "smoothquant+gptq"};
  return names;
}

void check_algorithm(const Scheme& s, const std::string& algorithm) {
  const auto& all = algorithm_names();
  if (std::find(all.begin(), all.end(), algorithm) == all.end()) {
    std::string names;
    for (const auto& a : all) names += (names.empty() ? "" : ", ") + a;
    fail("--algo: unknown algorithm ", quote(algorithm), " (valid: ", names, ")");
  }
  if (algorithm == "rtn") return;
  if (std::find(s.algorithms.begin(), s.algorithms.end(), algorithm) == s.algorithms.end()) {
    std::string valid = "rtn";
    for (const auto& a : s.algorithms) valid += ", " + a;
    fail("--algo: ", algorithm, " does not apply to scheme ", s.name, " (valid for it: ", valid, ")");
  }
}

}  // namespace qs::quant
