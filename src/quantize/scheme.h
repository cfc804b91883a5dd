// Quantization schemes: named, documented combinations of weight format, activation format,
// granularity and symmetry: the formats the three reference studies compare. `qstudy quantize
// --list` prints this table. Names follow llm-compressor's presets where one exists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qs::quant {

enum class WeightFormat { Fp8E4M3, Int, Nf4, Fp4, MxFp4, NvFp4, Q8_0, Q4_0 };
enum class ActFormat {
  None,            // 16-bit activations (weight-only quantization)
  Int8PerToken,    // dynamic symmetric int8, one scale per token (vLLM W8A8-INT8)
  Fp8PerToken,     // dynamic FP8 E4M3, one scale per token (FP8_DYNAMIC)
  Fp8Static,       // FP8 E4M3 with one calibrated scale per tensor
  LlmInt8,         // LLM.int8(): int8 vector-wise with outlier columns in 16-bit
  Q8_0Blocks,      // llama.cpp: activations quantized to Q8_0 blocks for the dot products
};

struct Scheme {
  std::string name;
  std::string summary;
  WeightFormat weight = WeightFormat::Int;
  int bits = 4;
  int64_t group_size = 128;  // along K; 0 = one scale per output channel
  bool symmetric = true;
  bool double_quant = false;  // bitsandbytes nested absmax
  ActFormat act = ActFormat::None;
  float outlier_threshold = 6.0f;  // LLM.int8()
  // Algorithms that apply besides rtn (see algorithm_names()).
  std::vector<std::string> algorithms;
  // compressed-tensors format name ("" when not representable), GGUF type name ("" when none).
  std::string compressed_tensors_format;
  std::string gguf_type;

  bool weight_only() const { return act == ActFormat::None; }
  // Name with the user's overrides, e.g. "w4a16-g64-asym".
  std::string full_name() const;
};

const std::vector<Scheme>& all_schemes();
// Errors list the valid names.
Scheme find_scheme(const std::string& name);
// Applies --group-size (0 = per channel) and --asym/--sym; errors when the scheme has no such
// parameter (e.g. a group size for FP8 per-channel or NF4's fixed blocks).
Scheme with_overrides(Scheme s, int64_t group_size, int symmetric /* -1 keep, 0 asym, 1 sym */);

// rtn, rtn-mse, gptq, awq, smoothquant, smoothquant+gptq.
const std::vector<std::string>& algorithm_names();
// Errors name the valid algorithms, and those valid for this scheme.
void check_algorithm(const Scheme& s, const std::string& algorithm);

}  // namespace qs::quant
