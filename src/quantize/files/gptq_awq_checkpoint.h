// Readers for AutoGPTQ / GPTQModel and AutoAWQ checkpoints (packing layouts in formats/packing.h).
//
// GPTQ (quant_method "gptq" in config.json's quantization_config, or AutoGPTQ's
// quantize_config.json): per layer "<L>" with K inputs, N outputs, b bits, G groups:
//   <L>.qweight I32 [K*b/32, N], <L>.qzeros I32 [G, N*b/32], <L>.scales F16 [G, N],
//   <L>.g_idx I32 [K] (act-order when not c / group_size), <L>.bias.
// Settings: bits (4 and 8; 2-bit has no qstudy scheme and 3-bit packs codes across words, both
// refused), group_size (-1 = per channel), sym, desc_act, checkpoint_format / format "gptq" (v1:
// stored zero point = z - 1) or "gptq_v2" (z); marlin / bitblas / other kernel layouts are refused.
//
// AWQ (quant_method "awq"): version "gemm" only (gemv, gemv_fast, exllama, ipex, marlin layouts
// and the llm-awq backend are refused), 4-bit, zero_point true:
//   <L>.qweight I32 [K, N/8], <L>.qzeros I32 [G, N/8], <L>.scales F16 [G, N].
// Layers without qweight (modules_to_not_convert, the output head) are read as dense weights.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "quantize/files/hf_checkpoint.h"

namespace qs::quant::files {

LinearFactory gptq_reader(const nlohmann::json& quantization_config, const std::string& origin);
LinearFactory awq_reader(const nlohmann::json& quantization_config, const std::string& origin);

}  // namespace qs::quant::files
