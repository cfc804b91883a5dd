#include "io/tensor_store.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"

namespace qs {

void TensorStore::add(Tensor t, const std::string& source) {
  auto [it, inserted] = tensors_.try_emplace(t.name, Entry{t, source});
  if (!inserted)
    fail(source, ": tensor ", quote(t.name), " is also in ", it->second.source, " (duplicate tensor names)");
}

const Tensor* TensorStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second.tensor;
}

const Tensor& TensorStore::get(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) fail(origin_, ": missing tensor ", quote(name));
  return *t;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : tensors_) out.push_back(name);
  return out;
}

const std::string& TensorStore::source_of(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(origin_, ": missing tensor ", quote(name));
  return it->second.source;
}

int64_t TensorStore::total_bytes() const {
  int64_t n = 0;
  for (const auto& [name, e] : tensors_) n += static_cast<int64_t>(e.tensor.nbytes);
  return n;
}

TensorStore load_safetensors_dir(const std::string& dir) {
  TensorStore store(dir);
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  auto add_file = [&](const std::string& path) {
    SafetensorsFile f = read_safetensors(path);
    if (store.size() == 0) store.metadata = f.metadata;
    for (auto& t : f.tensors) store.add(std::move(t), path);
  };
  if (file_exists(index_path)) {
    nlohmann::json index = read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail(index_path, ": missing object 'weight_map' (expected {tensor name: shard file})");
    std::map<std::string, std::string> expected;  // tensor -> shard
    std::set<std::string> shards;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it->is_string()) fail(index_path, ": weight_map[", quote(it.key()), "] must be a file name");
      const std::string shard = it->get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." || shard.empty())
        fail(index_path, ": weight_map[", quote(it.key()), "] = ", quote(shard), " is not a plain file name");
      expected[it.key()] = shard;
      shards.insert(shard);
    }
    if (shards.empty()) fail(index_path, ": weight_map is empty");
    for (const auto& shard : shards) add_file(dir + "/" + shard);
    for (const auto& [name, shard] : expected) {
      if (!store.contains(name)) fail(index_path, ": tensor ", quote(name), " listed in ", shard, " is not in that file");
      if (store.source_of(name) != dir + "/" + shard)
        fail(index_path, ": tensor ", quote(name), " is listed in ", shard, " but stored in ", store.source_of(name));
    }
  } else if (file_exists(single)) {
    add_file(single);
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json (expected a Hugging Face model directory)");
  }
  return store;
}

}  // namespace qs
