// Keys and values of every layer for a set of sequences (slots). A slot's storage is allocated on
// first use, so many slots cost nothing until they hold tokens. Per layer and slot the layout is
// [n_kv_heads, capacity, head_dim] (what kernels::attention reads).
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned.h"
#include "model/config.h"

namespace qs {

class KVCache {
 public:
  // capacity: most tokens one sequence can hold (defaults to the model's context length).
  // n_layers: layers to hold (default all; calibration runs one layer at a time with 1).
  KVCache(const ModelConfig& config, int n_seqs, int64_t capacity = 0, int n_layers = 0);

  int n_seqs() const { return static_cast<int>(seqs_.size()); }
  int64_t capacity() const { return capacity_; }
  int64_t length(int seq) const { return seqs_.at(seq).length; }
  // Forget the sequence's tokens (keeps its memory for reuse).
  void clear(int seq) { seqs_.at(seq).length = 0; }
  // Keep only the first `len` tokens.
  void truncate(int seq, int64_t len);
  // Make `dst` hold the first `len` tokens of `src` (shared prompt reuse).
  void copy_prefix(int src, int dst, int64_t len);
  // Release the sequence's memory.
  void release(int seq);

  float* keys(int layer, int seq) { return slot(seq).k.data() + layer * layer_stride(); }
  float* values(int layer, int seq) { return slot(seq).v.data() + layer * layer_stride(); }
  int64_t head_stride() const { return capacity_ * head_dim_; }  // between kv heads
  void set_length(int seq, int64_t len);
  int64_t bytes_allocated() const;

 private:
  struct Seq {
    AlignedVector<float> k, v;
    int64_t length = 0;
  };
  Seq& slot(int seq);
  int64_t layer_stride() const { return int64_t{n_kv_heads_} * capacity_ * head_dim_; }

  int n_layers_, n_kv_heads_, head_dim_;
  int64_t capacity_;
  std::vector<Seq> seqs_;
};

}  // namespace qs
