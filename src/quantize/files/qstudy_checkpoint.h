// The qstudy checkpoint format: for schemes and mixes no standard format covers (GGUF blocks in
// safetensors, bitsandbytes next to integer layers, several bnb configurations, ...), and as an
// exact store of any scheme. A Hugging Face directory whose config.json has
//   "quantization_config": {"quant_method": "qstudy", "version": 1,
//     "layers": {"<layer name>": {"scheme": "<base scheme name>", "full_name": "<scheme full_name()>",
//                                 "group_size": g, "symmetric": bool, "outlier_threshold": t,
//                                 "storage": "int" | "fp8" | "bnb4" | "mxfp4" | "nvfp4" | "gguf",
//                                 ... storage parameters below}}}
// Layers not listed are dense ("<L>.weight" in their dtype). Storage of a quantized layer "<L>"
// [N, K] holds the canonical pieces of src/formats bit for bit:
//   int    {"bits", "granularity": "tensor"|"channel"|"group", "matrix_group_size", "matrix_symmetric"}:
//          <L>.q_codes I32 [N, ceil(K / (32 / bits))] (unsigned codes packed along K, value j of a
//          word in bits bits*j.., as formats::pack_rows_int32), <L>.q_scales F32 [N, G] ([1] per
//          tensor), <L>.q_zeros U8 [N, G] (asymmetric only), <L>.q_g_idx I32 [K] (act-order only).
//   fp8    {"granularity": "tensor"|"channel"}: <L>.q_codes F8_E4M3 [N, K], <L>.q_scales F32 [N]
//          ([1] per tensor), <L>.q_input_scale F32 [1] (static activation scale, when set).
//   bnb4   {"type": "nf4"|"fp4", "blocksize", "nested", "nested_blocksize"}: <L>.q_codes U8
//          [ceil(N*K / 2)] (high nibble first), <L>.q_absmax F32 [blocks], or when nested
//          <L>.q_absmax_codes U8 [blocks], <L>.q_absmax_scales F32 [ceil(blocks / nested_blocksize)],
//          <L>.q_absmax_offset F32 [1].
//   mxfp4  {}: <L>.q_codes U8 [N, K / 2] (low nibble first), <L>.q_scales U8 [N, K / 32] (E8M0).
//   nvfp4  {}: <L>.q_codes U8 [N, K / 2], <L>.q_scales F8_E4M3 [N, K / 16], <L>.q_global_scale
//          F32 [1] (g itself, W = E2M1 * E4M3 * g).
//   gguf   {"type": "Q8_0"|"Q4_0"}: <L>.q_blocks U8 [N, K / 32 * block bytes] (ggml blocks per row).
// Biases are "<L>.bias"; embeddings, norms and dense layers as in any Hugging Face checkpoint.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "quantize/files/hf_checkpoint.h"

namespace qs::quant::files {

inline constexpr int kQstudyFormatVersion = 1;

nlohmann::json qstudy_config(const std::vector<ModelLinear>& layers);
std::vector<PlannedTensor> qstudy_tensors(const ModelLinear& layer);
LinearFactory qstudy_reader(const nlohmann::json& quantization_config, const std::string& origin);

}  // namespace qs::quant::files
