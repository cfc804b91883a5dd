// Index of the number formats and block layouts used for quantized LLM weights. Each header
// states its format's definition, layout and the published source it follows.
//   fp8.h          FP8 E4M3 / E5M2 scalars, per-tensor / per-channel scaled matrices, per-token
//                  dynamic activation quantization.
//   int_quant.h    Integer affine quantization (2..8 bits, symmetric / asymmetric, per tensor /
//                  channel / group), clip-ratio MSE search.
//   nf4.h          bitsandbytes NF4 and FP4 with double quantization.
//   mx.h           OCP MXFP4 and NVIDIA NVFP4.
//   gguf_blocks.h  ggml Q8_0 and Q4_0 blocks.
//   packing.h      compressed-tensors pack-quantized, AutoGPTQ and AutoAWQ GEMM layouts.
// Every format has fake_quant_*(W) = dequantize(quantize(W)), the f32 reference W_hat [N, K]
// that the fast kernels of each scheme are checked against.
#pragma once

#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "formats/int_quant.h"
#include "formats/layout.h"
#include "formats/mx.h"
#include "formats/nf4.h"
#include "formats/packing.h"
