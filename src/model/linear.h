// A linear layer y = x W^T (+ b) whose weight may be stored in any format. The dense kinds (f32,
// f16, bf16) read the checkpoint's bytes in place; quantized kinds (src/quantize) subclass this
// and run their own low-bit kernels. The model never needs to know which one it holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace qs {

class Linear {
 public:
  Linear(std::string name, int64_t out_features, int64_t in_features)
      : name_(std::move(name)), out_(out_features), in_(in_features) {}
  virtual ~Linear() = default;

  // y[M, out] = x[M, in] W^T (+ bias). Rows of x and y are contiguous.
  virtual void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const = 0;
  // Bytes of weight data one full pass reads (codes, scales, zero points): the decode roofline.
  virtual int64_t weight_bytes() const = 0;
  // Short format name for reports: "bf16", "f32", "w4a16-g128", ...
  virtual std::string format() const = 0;
  // The weight as f32 [out, in] (after dequantization for quantized kinds).
  virtual std::vector<float> dequantized() const = 0;
  // Operand type of the kernel's multiply-adds: BF16 (VDPBF16PS), I8 (VPDPBUSD) or F32. The
  // prefill roofline of `qstudy bench` uses the peak of the same instruction.
  virtual DType arithmetic() const = 0;

  const std::string& name() const { return name_; }
  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  const std::vector<float>& bias() const { return bias_; }
  void set_bias(std::vector<float> b) { bias_ = std::move(b); }

 protected:
  const float* bias_or_null() const { return bias_.empty() ? nullptr : bias_.data(); }

 private:
  std::string name_;
  int64_t out_, in_;
  std::vector<float> bias_;
};

// A dense layer over a [out, in] F32, F16 or BF16 tensor, read in place (no copy).
std::unique_ptr<Linear> make_dense_linear(const std::string& name, const Tensor& weight);
// A dense layer that owns its f32 weight [out, in] (e.g. rewritten by an algorithm).
std::unique_ptr<Linear> make_owned_dense_linear(const std::string& name, std::vector<float> weight, int64_t out,
                                                int64_t in, DType storage = DType::F32);

}  // namespace qs
