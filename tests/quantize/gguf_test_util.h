// Helpers of the GGUF model tests: logits of a sequence, model comparisons that know about
// llama.cpp's q/k row order, and rewriting a GGUF file with edits (for malformed inputs).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/gguf.h"
#include "model/model.h"
#include "quantize/qlinear.h"

namespace qs::gguf_test {

inline std::vector<int32_t> random_tokens(int64_t vocab, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return t;
}

// Logits of every position of one sequence.
inline std::vector<float> logits(const Model& m, const std::vector<int32_t>& tokens) {
  KVCache cache(m.config(), 1);
  ForwardOutput out;
  SeqInput in{0, tokens, Outputs::All};
  m.forward({&in, 1}, cache, out);
  return out.logits;
}

inline double relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// Row r of llama.cpp's order holds HF row meta_source(r) (convert_hf_to_gguf.py's permute).
inline int64_t meta_source(int64_t r, int64_t head_dim) {
  const int64_t i = r % head_dim;
  return r - i + (i % 2) * (head_dim / 2) + i / 2;
}

// `rows` x `row_len` items of `hf` in llama.cpp's q/k row order.
template <class T>
std::vector<T> to_meta_rows(const std::vector<T>& hf, int64_t rows, int64_t row_len, int64_t head_dim) {
  std::vector<T> out(hf.size());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out.data() + r * row_len, hf.data() + meta_source(r, head_dim) * row_len, static_cast<size_t>(row_len) * sizeof(T));
  return out;
}

// The weight of a layer as stored: GGUF blocks for GgufLinear, else the dequantized floats as bytes.
inline std::vector<uint8_t> stored_bytes(const Linear& l) {
  if (const auto* q = dynamic_cast<const quant::QuantLinear*>(&l))
    if (const auto* b = q->storage().gguf_blocks) return *b;
  const std::vector<float> w = l.dequantized();
  std::vector<uint8_t> out(w.size() * 4);
  std::memcpy(out.data(), w.data(), out.size());
  return out;
}

// Expects `b` (loaded from GGUF) to hold exactly the weights of `a`, with q/k rows in llama.cpp's
// order when `permuted`.
inline void expect_same_weights(const Model& a, const Model& b, bool permuted) {
  const ModelConfig& c = a.config();
  const ModelWeights& wa = a.weights();
  const ModelWeights& wb = b.weights();
  ASSERT_EQ(wa.embed.nbytes, wb.embed.nbytes);
  EXPECT_EQ(std::memcmp(wa.embed.data, wb.embed.data, wa.embed.nbytes), 0) << "embedding";
  EXPECT_EQ(wa.final_norm, wb.final_norm);
  EXPECT_EQ(stored_bytes(*wa.lm_head), stored_bytes(*wb.lm_head)) << "lm_head";
  EXPECT_EQ(wa.lm_head->format(), wb.lm_head->format());
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto& la = const_cast<DecoderLayer&>(wa.layers[static_cast<size_t>(l)]);
    auto& lb = const_cast<DecoderLayer&>(wb.layers[static_cast<size_t>(l)]);
    EXPECT_EQ(la.attn_norm, lb.attn_norm);
    EXPECT_EQ(la.ffn_norm, lb.ffn_norm);
    EXPECT_EQ(la.q_norm, lb.q_norm);
    EXPECT_EQ(la.k_norm, lb.k_norm);
    auto lb_linears = lb.linears();
    auto la_linears = la.linears();
    for (size_t i = 0; i < la_linears.size(); ++i) {
      const Linear& x = **la_linears[i].second;
      const Linear& y = **lb_linears[i].second;
      const std::string role = la_linears[i].first;
      EXPECT_EQ(x.format(), y.format()) << l << " " << role;
      std::vector<uint8_t> want = stored_bytes(x);
      std::vector<float> bias = x.bias();
      if (permuted && (role == "q_proj" || role == "k_proj")) {
        want = to_meta_rows(want, x.out_features(), static_cast<int64_t>(want.size()) / x.out_features(), c.head_dim);
        if (!bias.empty()) bias = to_meta_rows(bias, x.out_features(), 1, c.head_dim);
      }
      EXPECT_EQ(want, stored_bytes(y)) << "layer " << l << " " << role;
      EXPECT_EQ(bias, y.bias()) << "layer " << l << " " << role << " bias";
    }
  }
}

// A tensor of a GGUF file as bytes, for rewriting files with edits.
struct TensorCopy {
  std::string name;
  formats::GgmlType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
};

inline void rewrite_gguf(const std::string& src, const std::string& dst,
                         const std::function<void(std::vector<GgufKV>&, std::vector<TensorCopy>&)>& edit) {
  GgufFile f = read_gguf(src);
  std::vector<GgufKV> kv = f.metadata;
  std::vector<TensorCopy> tensors;
  for (const auto& t : f.tensors) tensors.push_back({t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  edit(kv, tensors);
  std::vector<GgufWriter::Entry> entries;
  for (const auto& t : tensors) entries.push_back({t.name, t.type, t.ne});
  GgufWriter w(dst, kv, entries);
  for (const auto& t : tensors) w.write(t.bytes.data(), t.bytes.size());
  w.finish();
}

inline void set_kv(std::vector<GgufKV>& kv, const std::string& key, GgufValue v) {
  for (auto& x : kv)
    if (x.key == key) {
      x.value = std::move(v);
      return;
    }
  kv.push_back({key, std::move(v)});
}

inline void drop_kv(std::vector<GgufKV>& kv, const std::string& key) {
  std::erase_if(kv, [&](const GgufKV& x) { return x.key == key; });
}

}  // namespace qs::gguf_test
