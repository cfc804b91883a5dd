// A decoder-only transformer of the Llama family (Llama, Mistral, Qwen2, Qwen3, SmolLM) and its
// forward pass. One pass runs the new tokens of several sequences together: every linear layer
// is one GEMM over all their rows (prefill, batched scoring, continuous batching), attention
// runs per sequence against its KV cache. Decode is the same pass with one token per sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/tensor_store.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"

namespace qs {

// A decoder layer's weights seen through plain pointers, so a caller (e.g. AWQ's search) can
// run the layer with some of them replaced.
struct LayerView {
  const float *attn_norm = nullptr, *ffn_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  const Linear *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *gate = nullptr, *up = nullptr,
               *down = nullptr;
};

struct DecoderLayer {
  std::vector<float> attn_norm, ffn_norm;  // [hidden]
  std::vector<float> q_norm, k_norm;       // [head_dim], Qwen3 only
  std::unique_ptr<Linear> q, k, v, o, gate, up, down;
  // The layer's linear layers in execution order, with their short role names.
  std::vector<std::pair<const char*, std::unique_ptr<Linear>*>> linears();
  LayerView view() const;
};

// Which linear layer an input belongs to. q/k/v read the same input, and so do gate/up.
enum class LinearSlot { QKV, O, GateUp, Down };
// Called with the input rows of each linear (group) of layer `layer` before it runs.
using LinearTap = std::function<void(int layer, LinearSlot slot, const float* input, int64_t rows)>;

// Activations of one pass: rows of several sequences, each a run of consecutive rows.
struct PassState {
  struct Segment {
    int seq;             // KV cache slot
    int64_t rows;        // consecutive rows of this sequence
    int64_t pos0;        // position of its first row
  };
  std::vector<Segment> segments;
  int64_t rows = 0;
  std::vector<float> x;               // [rows, hidden] residual stream
  std::vector<float> xn, q, k, v, att, tmp, gate, up, cos, sin;  // scratch
};

struct ModelWeights {
  Tensor embed;                      // [vocab, hidden], F32/F16/BF16, read in place
  std::vector<float> final_norm;     // [hidden]
  std::unique_ptr<Linear> lm_head;   // [vocab, hidden]; views `embed` when tied
  bool lm_head_is_embed = false;     // lm_head reads the embedding bytes (counted once)
  std::vector<DecoderLayer> layers;
};

// What a pass should return for a sequence's new tokens.
enum class Outputs { None, Last, All };

struct SeqInput {
  int seq = 0;                      // KV cache slot; tokens are appended after its current length
  std::span<const int32_t> tokens;  // must be non-empty
  Outputs outputs = Outputs::Last;
};

struct ForwardOptions {
  bool logits = true;   // compute logits for the requested rows
  bool hidden = false;  // also return the final-norm hidden states of those rows
};

// Rows of logits/hidden states, in input order: for each input its Last row or All rows.
struct ForwardOutput {
  int64_t vocab = 0, hidden_size = 0;
  std::vector<float> logits;          // [rows, vocab]
  std::vector<float> hidden;          // [rows, hidden_size] when requested
  std::vector<int64_t> first_row;     // per input: index of its first output row (-1: none)
  int64_t rows() const { return vocab ? static_cast<int64_t>(logits.size()) / vocab : 0; }
  const float* logits_row(int64_t r) const { return logits.data() + r * vocab; }
};

class Model {
 public:
  Model(ModelConfig config, ModelWeights weights, TensorStore store, std::string source);

  const ModelConfig& config() const { return config_; }
  ModelWeights& weights() { return weights_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& source() const { return source_; }
  // Bytes of all weights the model reads: linear layers (in their formats), embeddings, norms.
  int64_t weight_bytes() const;
  // Bytes one decode step reads: every linear layer + one embedding row + norms.
  int64_t decode_bytes_per_token() const;
  // Most tokens one pass processes; longer inputs are split into several passes.
  void set_max_batch_tokens(int64_t n) { max_batch_tokens_ = n < 1 ? 1 : n; }

  // Runs the inputs' tokens, appends them to `cache`, and fills `out`. Positions past the cache
  // capacity or the model's context are errors.
  void forward(std::span<const SeqInput> inputs, KVCache& cache, ForwardOutput& out,
               const ForwardOptions& options = {}, ThreadPool* pool = nullptr) const;

  // Layer-by-layer execution (calibration, quantization algorithms). The caller sets
  // st.segments and st.rows; prepare_pass sizes the buffers and fills the rotary tables.
  void prepare_pass(PassState& st) const;
  // Embedding rows of `tokens` into st.x (rows in order).
  void embed(std::span<const int32_t> tokens, float* x) const;
  // Runs layer `l` (weights `w`, usually weights().layers[l].view()) on st.x in place. Keys and
  // values go to layer `cache_layer` of `cache` at each segment's positions.
  void run_layer(int l, const LayerView& w, PassState& st, KVCache& cache, int cache_layer, ThreadPool& pool,
                 const LinearTap* tap = nullptr) const;
  // The attention block's output (o_proj, before the residual) for normalized inputs st.xn,
  // into st.tmp; and the MLP block's output for st.xn, into st.tmp.
  void attention_block(int l, const LayerView& w, PassState& st, KVCache& cache, int cache_layer, ThreadPool& pool,
                       const LinearTap* tap = nullptr) const;
  void mlp_block(int l, const LayerView& w, PassState& st, ThreadPool& pool, const LinearTap* tap = nullptr) const;
  void rms_norm_rows(const float* x, const float* weight, float* out, int64_t rows, ThreadPool& pool) const;

 private:
  struct Piece {
    int input;
    int seq;
    int64_t begin, end;  // token range within the input
    bool outputs_all, output_last;
  };
  void run_pass(std::span<const Piece> pieces, std::span<const SeqInput> inputs, KVCache& cache,
                ForwardOutput& out, std::vector<int64_t>& out_cursor, const ForwardOptions& options,
                ThreadPool& pool) const;

  ModelConfig config_;
  ModelWeights weights_;
  TensorStore store_;  // keeps the mapped checkpoint alive
  std::string source_;
  std::vector<float> inv_freq_;
  int64_t max_batch_tokens_ = 512;
  mutable PassState scratch_;  // reused between passes (forward is not reentrant)
};

// Makes the Linear of layer `name` (e.g. "model.layers.0.self_attn.q_proj", "lm_head") with the
// given shape from the checkpoint's tensors, or returns nullptr to let the dense loader read
// "<name>.weight". Quantized-checkpoint readers supply one.
using LinearFactory =
    std::function<std::unique_ptr<Linear>(const std::string& name, int64_t out, int64_t in, const TensorStore& store)>;

// Builds a Model from tensors under Hugging Face Llama names. Tensors in F32/F16/BF16 are used in
// place. Errors name the origin and the missing or malformed tensor.
std::unique_ptr<Model> build_model(ModelConfig config, TensorStore store, const std::string& source,
                                   const LinearFactory& factory = {});

}  // namespace qs
