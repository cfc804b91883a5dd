#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace qs {

std::string Tensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Tensor make_owned_tensor(std::string name, DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.nbytes = static_cast<size_t>(t.numel()) * dtype_size(dtype);
  size_t alloc = (t.nbytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, alloc == 0 ? 64 : alloc);
  if (!p) fail("out of memory allocating ", t.nbytes, " bytes for tensor ", quote(t.name));
  std::memset(p, 0, alloc == 0 ? 64 : alloc);
  t.owner = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  t.data = p;
  return t;
}

std::vector<float> to_f32(const Tensor& t) {
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out.data(), t.data, n * 4);
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(t.as<uint16_t>()[i]);
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(t.as<uint16_t>()[i]);
      break;
    default:
      fail("tensor ", quote(t.name), ": dtype ", dtype_name(t.dtype), " is not a float type (expected F32, F16 or BF16)");
  }
  return out;
}

}  // namespace qs
