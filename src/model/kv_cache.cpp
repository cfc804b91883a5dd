#include "model/kv_cache.h"

#include <cstring>

#include "core/error.h"

namespace qs {

KVCache::KVCache(const ModelConfig& config, int n_seqs, int64_t capacity, int n_layers)
    : n_layers_(n_layers > 0 ? n_layers : config.num_hidden_layers),
      n_kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      capacity_(capacity > 0 ? capacity : config.max_position_embeddings),
      seqs_(n_seqs < 1 ? 1 : n_seqs) {}

KVCache::Seq& KVCache::slot(int seq) {
  Seq& s = seqs_.at(seq);
  if (s.k.empty()) {
    const size_t n = static_cast<size_t>(n_layers_) * layer_stride();
    s.k.resize(n);
    s.v.resize(n);
  }
  return s;
}

void KVCache::truncate(int seq, int64_t len) {
  Seq& s = seqs_.at(seq);
  if (len < s.length) s.length = len < 0 ? 0 : len;
}

void KVCache::set_length(int seq, int64_t len) {
  require(len >= 0 && len <= capacity_, "KV cache: sequence length ", len, " exceeds capacity ", capacity_);
  seqs_.at(seq).length = len;
}

void KVCache::copy_prefix(int src, int dst, int64_t len) {
  require(len <= length(src), "KV cache: cannot copy ", len, " tokens from a sequence of ", length(src));
  if (src == dst) {
    truncate(dst, len);
    return;
  }
  Seq& s = slot(src);
  Seq& d = slot(dst);
  const size_t row = static_cast<size_t>(len) * head_dim_ * sizeof(float);
  for (int l = 0; l < n_layers_; ++l) {
    for (int g = 0; g < n_kv_heads_; ++g) {
      const size_t off = static_cast<size_t>(l) * layer_stride() + static_cast<size_t>(g) * head_stride();
      std::memcpy(d.k.data() + off, s.k.data() + off, row);
      std::memcpy(d.v.data() + off, s.v.data() + off, row);
    }
  }
  d.length = len;
}

void KVCache::release(int seq) {
  Seq& s = seqs_.at(seq);
  s.k = {};
  s.v = {};
  s.length = 0;
}

int64_t KVCache::bytes_allocated() const {
  int64_t n = 0;
  for (const auto& s : seqs_) n += static_cast<int64_t>(s.k.size() + s.v.size()) * 4;
  return n;
}

}  // namespace qs
