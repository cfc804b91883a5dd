#include "model/linear.h"

#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace qs {

namespace {

class DenseLinear final : public Linear {
 public:
  DenseLinear(const std::string& name, Tensor w) : Linear(name, w.dim(0), w.dim(1)), w_(std::move(w)) {}

  void forward(const float* x, int64_t M, float* y, ThreadPool& pool) const override {
    kernels::MatmulArgs a;
    a.M = M;
    a.N = out_features();
    a.K = in_features();
    a.x = x;
    a.ldx = a.K;
    a.w = w_.data;
    a.ldw = a.K;
    a.w_dtype = w_.dtype;
    a.y = y;
    a.ldy = a.N;
    a.bias = bias_or_null();
    kernels::matmul(a, pool);
  }
  int64_t weight_bytes() const override { return static_cast<int64_t>(w_.nbytes); }
  std::string format() const override {
    switch (w_.dtype) {
      case DType::BF16: return "bf16";
      case DType::F16: return "f16";
      default: return "f32";
    }
  }
  std::vector<float> dequantized() const override { return to_f32(w_); }
  DType arithmetic() const override { return w_.dtype == DType::BF16 ? DType::BF16 : DType::F32; }

 private:
  Tensor w_;
};

}  // namespace

std::unique_ptr<Linear> make_dense_linear(const std::string& name, const Tensor& weight) {
  if (weight.rank() != 2)
    fail("tensor ", quote(weight.name), ": expected a 2-D [out, in] weight, got shape ", weight.shape_str());
  if (!is_float_weight_dtype(weight.dtype))
    fail("tensor ", quote(weight.name), ": dtype ", dtype_name(weight.dtype),
         " is not supported for dense weights (expected F32, F16 or BF16)");
  return std::make_unique<DenseLinear>(name, weight);
}

std::unique_ptr<Linear> make_owned_dense_linear(const std::string& name, std::vector<float> weight, int64_t out,
                                                int64_t in, DType storage) {
  require(static_cast<int64_t>(weight.size()) == out * in, "layer ", quote(name), ": weight has ", weight.size(),
          " values, expected ", out, " x ", in);
  Tensor t = make_owned_tensor(name, storage, {out, in});
  if (storage == DType::F32) {
    std::copy(weight.begin(), weight.end(), static_cast<float*>(mutable_data(t)));
  } else if (storage == DType::BF16) {
    kernels::f32_to_bf16(weight.data(), static_cast<uint16_t*>(mutable_data(t)), out * in);
  } else {
    fail("layer ", quote(name), ": owned dense storage must be F32 or BF16");
  }
  return std::make_unique<DenseLinear>(name, std::move(t));
}

}  // namespace qs
