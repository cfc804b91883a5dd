// compressed-tensors checkpoints: what llm-compressor writes (ModelCompressor.compress_model +
// update_config) and vLLM / transformers load.
//
// config.json "quantization_config" (as compressed-tensors' update_config writes it: the
// QuantizationConfig model_dump plus version, quant_method, sparsity_config, transform_config,
// keys sorted): config_groups {"group_i": {targets, weights, input_activations,
// output_activations, format}}, format (the groups' common format or "mixed-precision"),
// global_compression_ratio null, ignore (every Linear left unquantized, e.g. "lm_head"),
// kv_cache_scheme null, quant_method "compressed-tensors", quantization_status "compressed",
// sparsity_config {}, transform_config {}, version. QuantizationArgs carry num_bits, type,
// symmetric, group_size, strategy, block_structure, dynamic, actorder, scale_dtype, zp_dtype,
// observer, observer_kwargs (the field set of compressed-tensors 0.12 and later). One scheme in
// the model gives one group targeting ["Linear"]; several give one group per scheme listing its
// layers by name.
//
// Tensors per quantized Linear "<L>" (N outputs, K inputs, G = groups per row):
//   float-quantized  (w8a8-fp8, w8a8-fp8-static): <L>.weight F8_E4M3 [N, K], <L>.weight_scale [N, 1]
//                    (per channel; [1] per tensor), <L>.input_scale [1] (static activations only).
//   int-quantized    (w8a8-int8): <L>.weight I8 [N, K] (signed codes), <L>.weight_scale [N, 1].
//   pack-quantized   (w8a16-int8, w4a16, w3a16): <L>.weight_packed I32 [N, ceil(K / (32 / b))],
//                    <L>.weight_scale [N, G], <L>.weight_shape I64 [2] = [N, K],
//                    <L>.weight_zero_point I32 [ceil(N / (32 / b)), G] (asymmetric, packed along N),
//                    <L>.weight_g_idx I32 [K] (GPTQ act-order, actorder "group").
//                    (formats/packing.h: pack_to_int32 with b = 3 puts 10 codes in a word; vLLM's
//                    kernels take 4 and 8 bits only, compressed-tensors itself packs 1..8.)
//   nvfp4-pack-quantized: <L>.weight_packed U8 [N, K / 2] (E2M1, low nibble first),
//                    <L>.weight_scale F8_E4M3 [N, K / 16], <L>.weight_global_scale F32 [1] holding
//                    the reciprocal of the per-tensor scale g (vLLM and compressed-tensors divide by it).
//                    When no f32 r has 1 / r == g exactly (about one tensor in eight), the shard's
//                    __metadata__ also records g as "qstudy.nvfp4_global_scale.<L>" = "0x<f32 bits>";
//                    other tools ignore it, qstudy's reader uses it only when it agrees with r.
//   mxfp4-pack-quantized: <L>.weight_packed U8 [N, K / 2], <L>.weight_scale U8 [N, K / 32] (E8M0).
// Scales are written in the model's dtype (bf16) when that is exact, as llm-compressor writes
// them, and in F32 otherwise (vLLM and compressed-tensors cast scales on load).
//
// Reading accepts those formats (also "naive-quantized", the older name of the unpacked ones),
// channel / group / tensor strategies where qstudy has the scheme, symmetric and asymmetric
// zero points (packed or unpacked), g_idx, and refuses by name what qstudy cannot run: dense /
// frozen (fake-quant) checkpoints, sparsity, transforms, KV-cache or output quantization, block
// FP8, FP8 weight-only, NVFP4/MXFP4 with 4-bit activations, static int8 activations, 2:4 formats.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/model.h"
#include "quantize/files/hf_checkpoint.h"

namespace qs::quant::files {

// The compressed-tensors release whose serialization the writer follows (the "version" field).
inline constexpr const char* kCompressedTensorsVersion = "0.14.0";

// Why `layer` cannot be written as compressed-tensors ("" when it can).
std::string compressed_tensors_problem(const QuantLinear& layer);
// The quantization_config of a model whose linear layers are `layers` (tied output head absent).
nlohmann::json compressed_tensors_config(const std::vector<ModelLinear>& layers);
// The tensors of one quantized layer (bias excluded).
std::vector<PlannedTensor> compressed_tensors_tensors(const ModelLinear& layer, DType model_dtype);

// The factory building each layer of a compressed-tensors checkpoint from its tensors (nullptr
// for layers the config leaves unquantized). `origin` names the config in errors.
LinearFactory compressed_tensors_reader(const nlohmann::json& quantization_config, const std::string& origin);

}  // namespace qs::quant::files
