// A named, typed, shaped view of bytes that someone else keeps alive (a memory-mapped file,
// a heap buffer). Model weights are Tensors pointing into mmapped files: loading a model in
// its own dtype copies nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace qs {

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int rank() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data);
  }
  std::string shape_str() const;
};

// A tensor that owns its bytes (heap, 64-byte aligned).
Tensor make_owned_tensor(std::string name, DType dtype, std::vector<int64_t> shape);
// Returns a writable pointer to an owned tensor's data (made by make_owned_tensor).
inline void* mutable_data(Tensor& t) { return const_cast<void*>(t.data); }

// Converts any float tensor (F32, F16, BF16) into a fresh f32 vector.
std::vector<float> to_f32(const Tensor& t);

}  // namespace qs
