// llama2.c checkpoints (github.com/karpathy/llama2.c): fp32 weights after a small header.
//  version 0 ("legacy"): 7 x int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//    seq_len} (vocab_size < 0: separate classifier), then token embeddings, per-layer tensors
//    grouped by kind, final norm, RoPE tables freq_cis_{real,imag} [seq_len, head_size/2], and
//    the classifier if separate.
//  version 1: magic "ak42" (0x616b3432), int32 version = 1, the 7 ints, a shared-classifier
//    byte, padding to 256 bytes; then norms first, embeddings, per-layer tensors, classifier.
// Tensors are exposed under Hugging Face Llama names with [out, in] shapes, pointing into the
// mapped file. The q/k projections keep Meta's interleaved RoPE pairing (see kernels::RopeStyle).
#pragma once

#include <cstdint>
#include <string>

#include "io/tensor_store.h"

namespace qs {

struct Llama2cHeader {
  int version = 0;
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;
};

struct Llama2cCheckpoint {
  Llama2cHeader header;
  TensorStore tensors;
};

Llama2cCheckpoint parse_llama2c(const uint8_t* bytes, size_t size, const std::string& name);
Llama2cCheckpoint read_llama2c(const std::string& path);

}  // namespace qs
