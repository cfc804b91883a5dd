// Pieces shared by the checkpoint writers and readers of src/quantize/files: tensors planned
// before their bytes exist (so shards are laid out first and written one tensor at a time),
// sharded safetensors output with a transformers-style index, config.json and tokenizer files,
// the model's linear layers in file order, and checked access to a checkpoint's tensors whose
// errors name the file, the tensor and what was expected.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "core/tensor.h"
#include "io/tensor_store.h"
#include "model/model.h"
#include "quantize/qlinear.h"

namespace qs::quant::files {

// ---- writing ---------------------------------------------------------------------------------

// A tensor to write: its header entry and a function that produces exactly its bytes.
struct PlannedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::function<std::vector<uint8_t>()> produce;
  std::map<std::string, std::string> metadata;  // added to the __metadata__ of its shard
  std::shared_ptr<const void> keep_alive;         // data `produce` reads, when the tensor owns it
  int64_t nbytes() const;
};

std::vector<uint8_t> to_bytes(const void* data, size_t nbytes);
template <class T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  return to_bytes(v.data(), v.size() * sizeof(T));
}
// A tensor whose bytes are already known.
PlannedTensor known_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
// A tensor whose bytes are computed when it is written (e.g. packed from the model's own data).
PlannedTensor lazy_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                          std::function<std::vector<uint8_t>()> produce);
// f32 values stored as `dtype` (F32, F16 or BF16; exact only when lossless_dtype said so).
std::vector<uint8_t> encode_floats(std::span<const float> values, DType dtype);
// `preferred` (F32, F16 or BF16) when every value converts to it exactly, else F32: scales and
// vectors keep the model's dtype as llm-compressor writes them, without changing a single bit.
DType lossless_dtype(std::span<const float> values, DType preferred);
PlannedTensor float_tensor(std::string name, std::vector<int64_t> shape, std::vector<float> values, DType preferred);

// The linear layers of a model in checkpoint order (layers' q, k, v, o, gate, up, down, then the
// output head when it is stored apart from the embedding).
struct ModelLinear {
  std::string name;
  const Linear* linear = nullptr;
  const QuantLinear* quant = nullptr;  // null for dense layers
};
std::vector<ModelLinear> model_linears(const Model& model);
// The dtype of the model's 16-bit (or f32) tensors: the embedding's.
DType model_dtype(const Model& model);
// Dense weight ("<name>.weight" in the layer's own dtype) of a layer that is not quantized.
PlannedTensor dense_weight(const ModelLinear& layer);
// "<name>.bias" when the layer has one.
void add_bias(const ModelLinear& layer, DType dtype, std::vector<PlannedTensor>& out);
// Every tensor of the model that is not a quantized layer's, in checkpoint order, with
// `quantized(layer)` supplying each quantized layer's tensors at its place. A model in Meta's
// rotary layout (llama2.c) gets its q_proj / k_proj rows moved to Hugging Face's (rope_layout.h).
std::vector<PlannedTensor> plan_model_tensors(
    const Model& model, const std::function<std::vector<PlannedTensor>(const ModelLinear&)>& quantized);

struct WrittenShards {
  std::vector<std::string> files;  // relative to the directory
  int64_t tensor_bytes = 0;
};
// model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json when the
// tensors exceed shard_bytes (a tensor larger than a shard gets a shard of its own).
WrittenShards write_sharded_safetensors(const std::string& dir, const std::vector<PlannedTensor>& tensors,
                                        int64_t shard_bytes);

// config.json of `source_dir` (or one describing `model` when there is none) with
// quantization_config set (removed when null), written sorted with indent 2 as
// compressed-tensors and transformers write it. tie_word_embeddings becomes false when the head
// is stored apart from the embedding.
void write_config_json(const Model& model, const std::string& source_dir, const std::string& out_dir,
                       const nlohmann::json& quantization_config);
// Copies tokenizer / generation / chat template files present in `source_dir`; returns their names.
std::vector<std::string> copy_tokenizer_files(const std::string& source_dir, const std::string& out_dir);

// ---- reading ---------------------------------------------------------------------------------

// Checked access to the tensors of one checkpoint. Errors read
// "<file>: tensor 'NAME' has dtype I8, expected I32 (compressed-tensors weight_packed)".
class CheckpointTensors {
 public:
  explicit CheckpointTensors(const TensorStore& store) : store_(store) {}
  const TensorStore& store() const { return store_; }
  const Tensor* find(const std::string& name) const { return store_.find(name); }
  bool has(const std::string& name) const { return store_.contains(name); }
  // "<checkpoint>: missing tensor 'NAME' (what)".
  const Tensor& need(const std::string& name, const std::string& what) const;
  // The file holding the tensor and its quoted name, for messages.
  std::string where(const Tensor& t) const;
  void expect_dtype(const Tensor& t, std::initializer_list<DType> allowed, const std::string& what) const;
  void expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) const;
  // Number of elements, with the shape checked to hold exactly `numel` (any rank).
  void expect_numel(const Tensor& t, int64_t numel, const std::string& what) const;
  // F32 / F16 / BF16 values as f32.
  std::vector<float> floats(const Tensor& t, const std::string& what) const;
  template <class T>
  std::vector<T> copy(const Tensor& t) const {
    std::vector<T> out(t.nbytes / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), t.data, out.size() * sizeof(T));
    return out;
  }
  // __metadata__ of the shard holding `t` (read once per shard).
  const std::map<std::string, std::string>& shard_metadata(const Tensor& t) const;

 private:
  const TensorStore& store_;
  mutable std::map<std::string, std::map<std::string, std::string>> metadata_;
};

// The LinearFactory reading the quantized layers of a checkpoint with this quantization_config
// (dispatches on quant_method: compressed-tensors, gptq, awq, bitsandbytes, qstudy).
LinearFactory checkpoint_reader(const nlohmann::json& quantization_config, const std::string& origin);

// Bias of a layer when the checkpoint has one ("<name>.bias", any float dtype, [out]).
std::vector<float> read_bias(const CheckpointTensors& t, const std::string& name, int64_t out);

// GPTQ act-order group of each input column (I32 or I64 [K]), checked: every group holds exactly
// group_size columns. Empty when it is the trivial c / group_size.
std::vector<int32_t> read_g_idx(const CheckpointTensors& t, const Tensor& g_idx, int64_t K, int64_t group_size);

// The integer scheme for weights of `bits` with `group_size` (0 = per channel) and symmetry:
// w4a16, w3a16, w8a16-int8 (16-bit activations) or w8a8-int8 (int8 per-token activations).
// Errors name `where` when qstudy has no such scheme.
Scheme int_weight_scheme(int bits, int64_t group_size, bool symmetric, ActFormat act, const std::string& where);

// An f32 as its bit pattern "0x%08x" (exact values in safetensors metadata), and back.
std::string f32_hex(float v);
bool parse_f32_hex(const std::string& text, float& out);

}  // namespace qs::quant::files
