// Linear layers stored in a quantization scheme. Each keeps the canonical quantized pieces
// (codes, scales, zero points, as src/formats defines them: what file writers need) and a
// kernel-ready copy, and runs with the low-bit kernels of kernels/qmatmul.h. Each also has a
// fake-quant reference path (quantize/dequantize, f32 math) that tests compare the kernels with.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/fp8.h"
#include "formats/gguf_blocks.h"
#include "formats/int_quant.h"
#include "formats/mx.h"
#include "formats/nf4.h"
#include "model/linear.h"
#include "quantize/scheme.h"

namespace qs::quant {

// The canonical quantized pieces of a layer (exactly one pointer is set), for file writers.
struct QuantStorage {
  const formats::IntMatrix* int_matrix = nullptr;
  const formats::Fp8Matrix* fp8 = nullptr;
  const formats::Bnb4Matrix* bnb4 = nullptr;
  const formats::MxFp4Matrix* mxfp4 = nullptr;
  const formats::NvFp4Matrix* nvfp4 = nullptr;
  const std::vector<uint8_t>* gguf_blocks = nullptr;  // ggml block_q8_0 / block_q4_0 rows
  float static_activation_scale = 0;                  // w8a8-fp8-static
};

class QuantLinear : public Linear {
 public:
  QuantLinear(std::string name, int64_t out, int64_t in, Scheme scheme)
      : Linear(std::move(name), out, in), scheme_(std::move(scheme)) {}
  const Scheme& scheme() const { return scheme_; }
  std::string format() const override { return scheme_.full_name(); }
  // Integer activations (W8A8-INT8, LLM.int8(), GGUF's Q8_0 x) multiply in int8; the other
  // kinds decode weights to bf16 for VDPBF16PS.
  DType arithmetic() const override {
    const ActFormat a = scheme_.act;
    return a == ActFormat::Int8PerToken || a == ActFormat::LlmInt8 || a == ActFormat::Q8_0Blocks ? DType::I8
                                                                                                 : DType::BF16;
  }
  // Fake-quant reference: activations quantized and dequantized as the scheme says (per row),
  // weight = dequantized(), plain f32 products and sums.
  void reference_forward(const float* x, int64_t M, float* y) const;
  // The scheme's activation fake-quantization of one row (identity for 16-bit activations,
  // which are rounded to bf16 as the kernels do).
  virtual void fake_quant_activations(const float* x, int64_t M, float* out) const;
  // Calibrated per-tensor activation scale of static schemes (0 when dynamic or none).
  virtual float static_activation_scale() const { return 0; }
  virtual QuantStorage storage() const = 0;

 private:
  Scheme scheme_;
};

// Integer weights (w8a8-int8, w8a16-int8, w4a16, w3a16, llm-int8). The IntMatrix may carry a
// GPTQ act-order g_idx: its columns are then stored sorted by group and inputs are permuted.
std::unique_ptr<QuantLinear> make_int_linear(const std::string& name, formats::IntMatrix q, const Scheme& scheme,
                                             std::vector<float> bias = {});
std::unique_ptr<QuantLinear> make_fp8_linear(const std::string& name, formats::Fp8Matrix q, const Scheme& scheme,
                                             float static_act_scale = 0, std::vector<float> bias = {});
std::unique_ptr<QuantLinear> make_bnb4_linear(const std::string& name, formats::Bnb4Matrix q, const Scheme& scheme,
                                              std::vector<float> bias = {});
std::unique_ptr<QuantLinear> make_mxfp4_linear(const std::string& name, formats::MxFp4Matrix q, const Scheme& scheme,
                                               std::vector<float> bias = {});
std::unique_ptr<QuantLinear> make_nvfp4_linear(const std::string& name, formats::NvFp4Matrix q, const Scheme& scheme,
                                               std::vector<float> bias = {});
std::unique_ptr<QuantLinear> make_gguf_linear(const std::string& name, std::vector<uint8_t> blocks, int64_t out,
                                              int64_t in, const Scheme& scheme, std::vector<float> bias = {});

struct RtnOptions {
  bool mse_clip = false;        // search each group's clip ratio (rtn-mse)
  float static_act_scale = 0;   // w8a8-fp8-static: calibrated per-tensor scale
  // Integer schemes: scales rounded to this dtype (the model's, as llm-compressor stores them), so
  // the checkpoint's scales are the ones the codes were computed with.
  formats::ScaleDType scale_dtype = formats::ScaleDType::F32;
};

// Round-to-nearest quantization of W [out, in] (f32) in `scheme`. Errors name the layer when
// its shape does not fit the scheme (see fits()).
std::unique_ptr<QuantLinear> quantize_rtn(const std::string& name, std::span<const float> w, int64_t out, int64_t in,
                                          const Scheme& scheme, const RtnOptions& options = {},
                                          std::vector<float> bias = {});

// Whether a layer of input size `in` can take `scheme` as is; otherwise `why` says what does not fit
// (e.g. "group size 128 does not divide input size 172").
bool fits(const Scheme& scheme, int64_t in, std::string* why = nullptr);

// The IntQuantConfig of an integer scheme for a layer with input size `in` (a group longer than
// the row means one group per row).
formats::IntQuantConfig int_config(const Scheme& scheme, int64_t in,
                                   formats::ScaleDType scale_dtype = formats::ScaleDType::F32);
// The scale dtype matching a layer's storage format ("bf16" -> BF16, "f16" -> F16, else F32).
formats::ScaleDType scale_dtype_for(const Linear& layer);

}  // namespace qs::quant
