#include "io/llama2c.h"

#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/mapped_file.h"

namespace qs {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42"

int32_t read_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Hands out consecutive fp32 tensors from the data region, checking bounds.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, size_t pos, const std::string& name)
      : data_(data), size_(size), pos_(pos), name_(name) {}
  Tensor take(const std::string& tensor_name, std::vector<int64_t> shape) {
    Tensor t;
    t.name = tensor_name;
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.nbytes = static_cast<size_t>(t.numel()) * 4;
    if (t.nbytes > size_ - pos_)
      fail(name_, ": file ends inside tensor ", quote(tensor_name), " (needs ", t.nbytes, " bytes at offset ", pos_,
           ", file has ", size_, "): truncated llama2.c checkpoint");
    t.data = data_ + pos_;
    pos_ += t.nbytes;
    return t;
  }
  void skip(size_t bytes, const char* what) {
    if (bytes > size_ - pos_) fail(name_, ": file ends inside ", what, ": truncated llama2.c checkpoint");
    pos_ += bytes;
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* data_;
  size_t size_, pos_;
  const std::string& name_;
};

std::string layer_name(int l, const char* suffix) { return cat("model.layers.", l, ".", suffix); }

}  // namespace

Llama2cCheckpoint parse_llama2c(const uint8_t* bytes, size_t size, const std::string& name) {
  Llama2cCheckpoint ck{{}, TensorStore(name)};
  Llama2cHeader& h = ck.header;
  size_t pos = 0;
  if (size >= 8 && static_cast<uint32_t>(read_i32(bytes)) == kMagicV1) {
    h.version = read_i32(bytes + 4);
    if (h.version != 1)
      fail(name, ": llama2.c checkpoint version ", h.version, " is not supported (expected 0 or 1; 2 is int8-quantized)");
    if (size < 256) fail(name, ": truncated llama2.c version 1 header (", size, " bytes, expected 256)");
    pos = 8;
  } else if (size < 28) {
    fail(name, ": file is ", size, " bytes, too short for a llama2.c header (expected 28)");
  }
  int32_t fields[7];
  for (int i = 0; i < 7; ++i) fields[i] = read_i32(bytes + pos + 4 * i);
  h.dim = fields[0];
  h.hidden_dim = fields[1];
  h.n_layers = fields[2];
  h.n_heads = fields[3];
  h.n_kv_heads = fields[4];
  h.vocab_size = fields[5];
  h.seq_len = fields[6];
  if (h.version == 1) {
    h.shared_classifier = bytes[pos + 28] != 0;
    pos = 256;
  } else {
    h.shared_classifier = h.vocab_size > 0;
    if (h.vocab_size < 0) h.vocab_size = -h.vocab_size;
    pos = 28;
  }
  auto check = [&](bool ok, const char* field, const std::string& expected) {
    if (!ok) fail(name, ": header field ", field, " is invalid (", expected, ")");
  };
  check(h.dim > 0 && h.dim <= (1 << 16), "dim", cat("got ", h.dim, ", expected 1..65536"));
  check(h.hidden_dim > 0 && h.hidden_dim <= (1 << 18), "hidden_dim", cat("got ", h.hidden_dim, ", expected 1..262144"));
  check(h.n_layers > 0 && h.n_layers <= 1024, "n_layers", cat("got ", h.n_layers, ", expected 1..1024"));
  check(h.n_heads > 0 && h.dim % h.n_heads == 0, "n_heads",
        cat("got ", h.n_heads, ", expected a positive divisor of dim ", h.dim));
  check(h.n_kv_heads > 0 && h.n_heads % h.n_kv_heads == 0, "n_kv_heads",
        cat("got ", h.n_kv_heads, ", expected a positive divisor of n_heads ", h.n_heads));
  check(h.vocab_size > 0 && h.vocab_size <= (1 << 24), "vocab_size", cat("got ", h.vocab_size, ", expected 1..16777216"));
  check(h.seq_len > 0 && h.seq_len <= (1 << 24), "seq_len", cat("got ", h.seq_len, ", expected 1..16777216"));
  const int64_t head = h.dim / h.n_heads, kv_dim = int64_t{h.n_kv_heads} * head;
  check((head % 2) == 0, "dim/n_heads", cat("head size ", head, " must be even for RoPE"));

  Cursor c(bytes, size, pos, name);
  TensorStore& s = ck.tensors;
  const int64_t dim = h.dim, hid = h.hidden_dim;
  auto per_layer = [&](const char* suffix, std::vector<int64_t> shape) {
    for (int l = 0; l < h.n_layers; ++l) s.add(c.take(layer_name(l, suffix), shape), name);
  };
  if (h.version == 1) {
    per_layer("input_layernorm.weight", {dim});
    per_layer("post_attention_layernorm.weight", {dim});
    s.add(c.take("model.norm.weight", {dim}), name);
    s.add(c.take("model.embed_tokens.weight", {h.vocab_size, dim}), name);
  } else {
    s.add(c.take("model.embed_tokens.weight", {h.vocab_size, dim}), name);
    per_layer("input_layernorm.weight", {dim});
  }
  per_layer("self_attn.q_proj.weight", {dim, dim});
  per_layer("self_attn.k_proj.weight", {kv_dim, dim});
  per_layer("self_attn.v_proj.weight", {kv_dim, dim});
  per_layer("self_attn.o_proj.weight", {dim, dim});
  if (h.version == 0) per_layer("post_attention_layernorm.weight", {dim});
  per_layer("mlp.gate_proj.weight", {hid, dim});
  per_layer("mlp.down_proj.weight", {dim, hid});
  per_layer("mlp.up_proj.weight", {hid, dim});
  if (h.version == 0) {
    s.add(c.take("model.norm.weight", {dim}), name);
    c.skip(static_cast<size_t>(h.seq_len) * head * 4, "the RoPE tables (freq_cis)");  // recomputed exactly instead
  }
  if (!h.shared_classifier) s.add(c.take("lm_head.weight", {h.vocab_size, dim}), name);
  if (c.pos() != size)
    fail(name, ": ", size - c.pos(), " bytes left after the last tensor (header says dim ", h.dim, ", ", h.n_layers,
         " layers, vocab ", h.vocab_size, "): not a llama2.c checkpoint of this shape");
  return ck;
}

Llama2cCheckpoint read_llama2c(const std::string& path) {
  auto file = MappedFile::open(path);
  Llama2cCheckpoint ck = parse_llama2c(file->data(), file->size(), path);
  TensorStore store(path);
  std::shared_ptr<const void> owner(file, file->data());
  for (const auto& n : ck.tensors.names()) {
    Tensor t = ck.tensors.get(n);
    t.owner = owner;
    store.add(std::move(t), path);
  }
  ck.tensors = std::move(store);
  return ck;
}

}  // namespace qs
