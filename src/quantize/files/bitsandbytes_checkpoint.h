// bitsandbytes checkpoints as transformers saves models loaded with load_in_4bit / load_in_8bit
// (quant_method "bitsandbytes"; BitsAndBytesConfig.to_dict() in config.json).
//
// 4-bit (Linear4bit / Params4bit, QuantState.as_dict(packed=True)) for a layer "<L>" with weight
// [N, K] in blocks of B:
//   <L>.weight                U8 [ceil(N*K / 2), 1]   two codes per byte, first in the high nibble
//   <L>.weight.absmax         F32 [nb]                per-block absmax (nb = ceil(N*K / B)), or
//                             U8 [nb]                 its 8-bit codes with double quantization
//   <L>.weight.quant_map      F32 [16]                the NF4 / FP4 codebook
//   <L>.weight.nested_absmax      F32 [ceil(nb / 256)]  (double quantization) absmax of the absmax
//   <L>.weight.nested_quant_map   F32 [256]             the signed dynamic 8-bit map
//   <L>.weight.quant_state.bitsandbytes__nf4 (or __fp4)  U8: UTF-8 JSON of the non-tensor state,
//       {"quant_type", "blocksize", "dtype", "shape", and with double quantization
//        "nested_blocksize", "nested_dtype", "nested_offset"} (pack_dict_to_tensor).
// 8-bit (Linear8bitLt, LLM.int8()): <L>.weight I8 [N, K] (row-wise codes), <L>.SCB F32 [N] (row
// absmax: W = weight * SCB / 127), <L>.weight_format U8 [] = 0 (row-major; older layouts refused).
// Layers left in 16-bit are listed in llm_int8_skip_modules.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "quantize/files/hf_checkpoint.h"

namespace qs::quant::files {

// Why `layer` cannot be written as bitsandbytes ("" when it can).
std::string bitsandbytes_problem(const QuantLinear& layer);
// BitsAndBytesConfig.to_dict() for the model's layers; all quantized layers must share one
// bitsandbytes configuration (one quant type, one double-quant flag, one threshold).
nlohmann::json bitsandbytes_config(const std::vector<ModelLinear>& layers, DType model_dtype);
std::vector<PlannedTensor> bitsandbytes_tensors(const ModelLinear& layer, DType model_dtype);

LinearFactory bitsandbytes_reader(const nlohmann::json& quantization_config, const std::string& origin);

}  // namespace qs::quant::files
