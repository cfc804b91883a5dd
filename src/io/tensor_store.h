// The tensors of a checkpoint by name, with their files kept mapped. Hugging Face directories
// hold one `model.safetensors` or shards listed in `model.safetensors.index.json`.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace qs {

class TensorStore {
 public:
  // `origin` names the checkpoint in error messages (a directory or file path).
  explicit TensorStore(std::string origin = "") : origin_(std::move(origin)) {}
  // Adds a tensor; a second tensor of the same name is an error naming both sources.
  void add(Tensor t, const std::string& source);
  const Tensor* find(const std::string& name) const;
  // Error "<origin>: missing tensor 'name'" when absent.
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;
  const std::string& source_of(const std::string& name) const;
  const std::string& origin() const { return origin_; }
  size_t size() const { return tensors_.size(); }
  // Total bytes of all tensors.
  int64_t total_bytes() const;
  std::map<std::string, std::string> metadata;  // __metadata__ of the (first) file

 private:
  struct Entry {
    Tensor tensor;
    std::string source;
  };
  std::string origin_;
  std::map<std::string, Entry> tensors_;
};

// Loads every tensor of a HF model directory: model.safetensors, or the shards named in
// model.safetensors.index.json (each shard's tensors must match the index).
TensorStore load_safetensors_dir(const std::string& dir);

}  // namespace qs
