#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/ops.h"

namespace qs {

std::vector<std::pair<const char*, std::unique_ptr<Linear>*>> DecoderLayer::linears() {
  return {{"q_proj", &q}, {"k_proj", &k}, {"v_proj", &v}, {"o_proj", &o},
          {"gate_proj", &gate}, {"up_proj", &up}, {"down_proj", &down}};
}

namespace {

std::vector<float> load_vector(const TensorStore& store, const std::string& name, int64_t size) {
  const Tensor& t = store.get(name);
  if (t.rank() != 1 || t.dim(0) != size)
    fail(store.origin(), ": tensor ", quote(name), " has shape ", t.shape_str(), ", expected [", size, "]");
  return to_f32(t);
}

std::unique_ptr<Linear> load_linear(const TensorStore& store, const std::string& name, int64_t out, int64_t in,
                                    bool bias_required, const LinearFactory& factory) {
  if (factory) {
    if (auto lin = factory(name, out, in, store)) {
      if (lin->out_features() != out || lin->in_features() != in)
        fail(store.origin(), ": layer ", quote(name), " is [", lin->out_features(), ", ", lin->in_features(),
             "], expected [", out, ", ", in, "]");
      if (lin->bias().empty() && (bias_required || store.contains(name + ".bias")))
        lin->set_bias(load_vector(store, name + ".bias", out));
      return lin;
    }
  }
  const Tensor& w = store.get(name + ".weight");
  if (w.rank() != 2 || w.dim(0) != out || w.dim(1) != in)
    fail(store.origin(), ": tensor ", quote(name + ".weight"), " has shape ", w.shape_str(), ", expected [", out, ", ",
         in, "]");
  if (!is_float_weight_dtype(w.dtype))
    fail(store.origin(), ": tensor ", quote(name + ".weight"), " has dtype ", dtype_name(w.dtype),
         ", expected F32, F16 or BF16 (quantized checkpoints are read by their own loaders)");
  auto lin = make_dense_linear(name, w);
  if (bias_required || store.contains(name + ".bias")) lin->set_bias(load_vector(store, name + ".bias", out));
  return lin;
}

}  // namespace

std::unique_ptr<Model> build_model(ModelConfig c, TensorStore store, const std::string& source,
                                   const LinearFactory& factory) {
  ModelWeights w;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  w.embed = store.get("model.embed_tokens.weight");
  if (w.embed.rank() != 2 || w.embed.dim(0) != c.vocab_size || w.embed.dim(1) != H)
    fail(store.origin(), ": tensor 'model.embed_tokens.weight' has shape ", w.embed.shape_str(), ", expected [",
         c.vocab_size, ", ", H, "] (vocab_size, hidden_size from the config)");
  if (!is_float_weight_dtype(w.embed.dtype))
    fail(store.origin(), ": tensor 'model.embed_tokens.weight' has dtype ", dtype_name(w.embed.dtype),
         ", expected F32, F16 or BF16");
  w.final_norm = load_vector(store, "model.norm.weight", H);
  // A quantized checkpoint may store the head under other names (e.g. lm_head.weight_packed), so
  // its factory is asked first.
  std::unique_ptr<Linear> quantized_head = factory ? factory("lm_head", c.vocab_size, H, store) : nullptr;
  if (quantized_head) {
    const LinearFactory take = [&](const std::string&, int64_t, int64_t, const TensorStore&) {
      return std::move(quantized_head);
    };
    w.lm_head = load_linear(store, "lm_head", c.vocab_size, H, false, take);
  } else if (store.contains("lm_head.weight")) {
    w.lm_head = load_linear(store, "lm_head", c.vocab_size, H, false, {});
  } else if (c.tie_word_embeddings) {
    w.lm_head = make_dense_linear("lm_head", w.embed);
    w.lm_head_is_embed = true;
  } else {
    fail(store.origin(), ": missing tensor 'lm_head.weight' (the config says tie_word_embeddings = false)");
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    DecoderLayer d;
    d.attn_norm = load_vector(store, p + "input_layernorm.weight", H);
    d.ffn_norm = load_vector(store, p + "post_attention_layernorm.weight", H);
    const bool qkv_bias = c.model_type == "qwen2" || c.attention_bias;
    d.q = load_linear(store, p + "self_attn.q_proj", c.q_dim(), H, qkv_bias, factory);
    d.k = load_linear(store, p + "self_attn.k_proj", c.kv_dim(), H, qkv_bias, factory);
    d.v = load_linear(store, p + "self_attn.v_proj", c.kv_dim(), H, qkv_bias, factory);
    d.o = load_linear(store, p + "self_attn.o_proj", H, c.q_dim(), c.model_type == "llama" && c.attention_bias, factory);
    d.gate = load_linear(store, p + "mlp.gate_proj", I, H, false, factory);
    d.up = load_linear(store, p + "mlp.up_proj", I, H, false, factory);
    d.down = load_linear(store, p + "mlp.down_proj", H, I, false, factory);
    if (c.qk_norm) {
      d.q_norm = load_vector(store, p + "self_attn.q_norm.weight", c.head_dim);
      d.k_norm = load_vector(store, p + "self_attn.k_norm.weight", c.head_dim);
    }
    w.layers.push_back(std::move(d));
  }
  return std::make_unique<Model>(std::move(c), std::move(w), std::move(store), source);
}

Model::Model(ModelConfig config, ModelWeights weights, TensorStore store, std::string source)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      store_(std::move(store)),
      source_(std::move(source)),
      inv_freq_(rope_inv_freq(config_)) {}

int64_t Model::weight_bytes() const {
  int64_t n = static_cast<int64_t>(weights_.embed.nbytes) + static_cast<int64_t>(weights_.final_norm.size()) * 4;
  if (!weights_.lm_head_is_embed) n += weights_.lm_head->weight_bytes();
  for (auto& layer : const_cast<ModelWeights&>(weights_).layers) {
    for (auto& [role, lin] : layer.linears()) n += (*lin)->weight_bytes();
    n += static_cast<int64_t>(layer.attn_norm.size() + layer.ffn_norm.size()) * 4;
  }
  return n;
}

int64_t Model::decode_bytes_per_token() const {
  int64_t n = weights_.lm_head->weight_bytes() +
              static_cast<int64_t>(weights_.embed.nbytes / std::max<int64_t>(1, config_.vocab_size));
  for (auto& layer : const_cast<ModelWeights&>(weights_).layers)
    for (auto& [role, lin] : layer.linears()) n += (*lin)->weight_bytes();
  return n;
}

void Model::forward(std::span<const SeqInput> inputs, KVCache& cache, ForwardOutput& out,
                    const ForwardOptions& options, ThreadPool* pool_arg) const {
  ThreadPool& pool = pool_arg ? *pool_arg : default_pool();
  const int64_t limit = std::min<int64_t>(cache.capacity(), config_.max_position_embeddings);
  std::vector<char> seen(cache.n_seqs(), 0);
  out.vocab = options.logits ? config_.vocab_size : 0;
  out.hidden_size = config_.hidden_size;
  out.first_row.assign(inputs.size(), -1);
  int64_t rows = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SeqInput& in = inputs[i];
    require(in.seq >= 0 && in.seq < cache.n_seqs(), "forward: sequence ", in.seq, " is not a cache slot (0..",
            cache.n_seqs() - 1, ")");
    require(!seen[in.seq], "forward: sequence ", in.seq, " appears twice in one batch");
    seen[in.seq] = 1;
    require(!in.tokens.empty(), "forward: sequence ", in.seq, " has no tokens");
    const int64_t end = cache.length(in.seq) + static_cast<int64_t>(in.tokens.size());
    if (end > limit)
      fail("sequence of ", end, " tokens exceeds the context of ", limit, " tokens",
           limit == config_.max_position_embeddings ? " (max_position_embeddings)" : " (KV cache capacity)");
    if (config_.sliding_window && end > *config_.sliding_window)
      fail("sequence of ", end, " tokens exceeds the sliding window of ", *config_.sliding_window,
           " tokens, which qstudy does not implement");
    for (int32_t t : in.tokens)
      require(t >= 0 && t < config_.vocab_size, "token id ", t, " is outside the vocabulary (0..", config_.vocab_size - 1,
              ")");
    if (in.outputs != Outputs::None) out.first_row[i] = rows;
    rows += in.outputs == Outputs::All ? static_cast<int64_t>(in.tokens.size()) : in.outputs == Outputs::Last ? 1 : 0;
  }
  out.logits.assign(options.logits ? static_cast<size_t>(rows * config_.vocab_size) : 0, 0.0f);
  out.hidden.assign(options.hidden ? static_cast<size_t>(rows * config_.hidden_size) : 0, 0.0f);

  // Cut inputs into pieces of at most max_batch_tokens_ and pack pieces into passes.
  std::vector<int64_t> cursor(inputs.size(), 0);  // next output row per input
  for (size_t i = 0; i < inputs.size(); ++i) cursor[i] = out.first_row[i];
  std::vector<Piece> pass;
  int64_t pass_tokens = 0;
  auto flush = [&] {
    if (!pass.empty()) run_pass(pass, inputs, cache, out, cursor, options, pool);
    pass.clear();
    pass_tokens = 0;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SeqInput& in = inputs[i];
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    for (int64_t b = 0; b < n; b += max_batch_tokens_) {
      const int64_t e = std::min(n, b + max_batch_tokens_);
      if (pass_tokens + (e - b) > max_batch_tokens_) flush();
      pass.push_back({static_cast<int>(i), in.seq, b, e, in.outputs == Outputs::All,
                      in.outputs == Outputs::Last && e == n});
      pass_tokens += e - b;
      if (e < n) flush();  // the next piece of this sequence needs these tokens in the cache
    }
  }
  flush();
}

LayerView DecoderLayer::view() const {
  LayerView w;
  w.attn_norm = attn_norm.data();
  w.ffn_norm = ffn_norm.data();
  w.q_norm = q_norm.empty() ? nullptr : q_norm.data();
  w.k_norm = k_norm.empty() ? nullptr : k_norm.data();
  w.q = q.get(), w.k = k.get(), w.v = v.get(), w.o = o.get();
  w.gate = gate.get(), w.up = up.get(), w.down = down.get();
  return w;
}

void Model::prepare_pass(PassState& st) const {
  const ModelConfig& c = config_;
  const int64_t R = st.rows, H = c.hidden_size, half = c.head_dim / 2;
  st.x.resize(R * H);
  st.xn.resize(R * H);
  st.q.resize(R * c.q_dim());
  st.k.resize(R * c.kv_dim());
  st.v.resize(R * c.kv_dim());
  st.att.resize(R * c.q_dim());
  st.tmp.resize(R * H);
  st.gate.resize(R * c.intermediate_size);
  st.up.resize(R * c.intermediate_size);
  st.cos.resize(R * half);
  st.sin.resize(R * half);
  // Rotary tables in f32, as transformers computes them: angle = position * inv_freq.
  int64_t r = 0;
  for (const auto& seg : st.segments)
    for (int64_t t = 0; t < seg.rows; ++t, ++r) {
      const float pos = static_cast<float>(seg.pos0 + t);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq_[i];
        st.cos[r * half + i] = std::cos(angle);
        st.sin[r * half + i] = std::sin(angle);
      }
    }
}

void Model::embed(std::span<const int32_t> tokens, float* x) const {
  const int64_t H = config_.hidden_size;
  const size_t esz = dtype_size(weights_.embed.dtype);
  for (size_t r = 0; r < tokens.size(); ++r) {
    const void* row = static_cast<const char*>(weights_.embed.data) + static_cast<size_t>(tokens[r]) * H * esz;
    float* dst = x + r * H;
    if (weights_.embed.dtype == DType::F32) std::memcpy(dst, row, H * 4);
    else if (weights_.embed.dtype == DType::BF16) kernels::bf16_to_f32(static_cast<const uint16_t*>(row), dst, H);
    else kernels::f16_to_f32(static_cast<const uint16_t*>(row), dst, H);
  }
}

void Model::rms_norm_rows(const float* x, const float* weight, float* out, int64_t rows, ThreadPool& pool) const {
  const int64_t H = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  auto fn = [&](int64_t r0, int64_t r1) { kernels::rmsnorm(x + r0 * H, weight, out + r0 * H, r1 - r0, H, eps); };
  if (rows >= 4) pool.parallel_for(rows, fn);
  else fn(0, rows);
}

namespace {
// Runs fn over row ranges, in parallel when there are enough rows to pay for it.
template <class Fn>
void rows_parallel(ThreadPool& pool, int64_t rows, Fn&& fn) {
  if (rows >= 4) pool.parallel_for(rows, fn);
  else fn(int64_t{0}, rows);
}
}  // namespace

void Model::attention_block(int l, const LayerView& w, PassState& st, KVCache& cache, int cache_layer,
                            ThreadPool& pool, const LinearTap* tap) const {
  const ModelConfig& c = config_;
  const int64_t R = st.rows, QD = c.q_dim(), KD = c.kv_dim();
  const int hd = c.head_dim, half = hd / 2;
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (tap) (*tap)(l, LinearSlot::QKV, st.xn.data(), R);
  w.q->forward(st.xn.data(), R, st.q.data(), pool);
  w.k->forward(st.xn.data(), R, st.k.data(), pool);
  w.v->forward(st.xn.data(), R, st.v.data(), pool);
  rows_parallel(pool, R, [&](int64_t r0, int64_t r1) {
    if (w.q_norm) {
      kernels::rmsnorm(st.q.data() + r0 * QD, w.q_norm, st.q.data() + r0 * QD, (r1 - r0) * c.num_attention_heads, hd, eps);
      kernels::rmsnorm(st.k.data() + r0 * KD, w.k_norm, st.k.data() + r0 * KD, (r1 - r0) * c.num_key_value_heads, hd, eps);
    }
    kernels::rope(st.q.data() + r0 * QD, r1 - r0, c.num_attention_heads, hd, st.cos.data() + r0 * half,
                  st.sin.data() + r0 * half, c.rope_style);
    kernels::rope(st.k.data() + r0 * KD, r1 - r0, c.num_key_value_heads, hd, st.cos.data() + r0 * half,
                  st.sin.data() + r0 * half, c.rope_style);
  });
  // Append keys and values to each sequence's cache, then attend.
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t hs = cache.head_stride();
  int64_t r = 0;
  for (const auto& seg : st.segments) {
    float* kc = cache.keys(cache_layer, seg.seq);
    float* vc = cache.values(cache_layer, seg.seq);
    for (int64_t t = 0; t < seg.rows; ++t)
      for (int g = 0; g < c.num_key_value_heads; ++g) {
        std::memcpy(kc + g * hs + (seg.pos0 + t) * hd, st.k.data() + (r + t) * KD + g * hd, hd * 4);
        std::memcpy(vc + g * hs + (seg.pos0 + t) * hd, st.v.data() + (r + t) * KD + g * hd, hd * 4);
      }
    kernels::AttentionArgs a;
    a.q = st.q.data() + r * QD;
    a.n_new = seg.rows;
    a.pos0 = seg.pos0;
    a.k = kc;
    a.v = vc;
    a.kv_stride = hs;
    a.n_heads = c.num_attention_heads;
    a.n_kv_heads = c.num_key_value_heads;
    a.head_dim = hd;
    a.scale = scale;
    a.out = st.att.data() + r * QD;
    kernels::attention(a, pool);
    r += seg.rows;
  }
  if (tap) (*tap)(l, LinearSlot::O, st.att.data(), R);
  w.o->forward(st.att.data(), R, st.tmp.data(), pool);
}

void Model::mlp_block(int l, const LayerView& w, PassState& st, ThreadPool& pool, const LinearTap* tap) const {
  const int64_t R = st.rows, I = config_.intermediate_size;
  if (tap) (*tap)(l, LinearSlot::GateUp, st.xn.data(), R);
  w.gate->forward(st.xn.data(), R, st.gate.data(), pool);
  w.up->forward(st.xn.data(), R, st.up.data(), pool);
  rows_parallel(pool, R, [&](int64_t r0, int64_t r1) {
    kernels::silu_mul(st.gate.data() + r0 * I, st.up.data() + r0 * I, st.gate.data() + r0 * I, (r1 - r0) * I);
  });
  if (tap) (*tap)(l, LinearSlot::Down, st.gate.data(), R);
  w.down->forward(st.gate.data(), R, st.tmp.data(), pool);
}

void Model::run_layer(int l, const LayerView& w, PassState& st, KVCache& cache, int cache_layer, ThreadPool& pool,
                      const LinearTap* tap) const {
  const int64_t R = st.rows, H = config_.hidden_size;
  rms_norm_rows(st.x.data(), w.attn_norm, st.xn.data(), R, pool);
  attention_block(l, w, st, cache, cache_layer, pool, tap);
  rows_parallel(pool, R, [&](int64_t r0, int64_t r1) {
    kernels::add_inplace(st.x.data() + r0 * H, st.tmp.data() + r0 * H, (r1 - r0) * H);
  });
  rms_norm_rows(st.x.data(), w.ffn_norm, st.xn.data(), R, pool);
  mlp_block(l, w, st, pool, tap);
  rows_parallel(pool, R, [&](int64_t r0, int64_t r1) {
    kernels::add_inplace(st.x.data() + r0 * H, st.tmp.data() + r0 * H, (r1 - r0) * H);
  });
}

void Model::run_pass(std::span<const Piece> pieces, std::span<const SeqInput> inputs, KVCache& cache,
                     ForwardOutput& out, std::vector<int64_t>& cursor, const ForwardOptions& options,
                     ThreadPool& pool) const {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size;
  PassState& st = scratch_;
  st.segments.clear();
  st.rows = 0;
  std::vector<int32_t> tokens;
  for (const auto& p : pieces) {
    st.segments.push_back({p.seq, p.end - p.begin, cache.length(p.seq)});
    st.rows += p.end - p.begin;
    const auto& t = inputs[p.input].tokens;
    tokens.insert(tokens.end(), t.begin() + p.begin, t.begin() + p.end);
  }
  prepare_pass(st);
  embed(tokens, st.x.data());
  for (int l = 0; l < c.num_hidden_layers; ++l) run_layer(l, weights_.layers[l].view(), st, cache, l, pool);
  for (const auto& seg : st.segments) cache.set_length(seg.seq, cache.length(seg.seq) + seg.rows);

  // Gather the rows that produce outputs, final norm, then the output head straight into `out`.
  std::vector<int64_t> src_rows, dst_rows;
  {
    int64_t r = 0;
    for (const auto& p : pieces) {
      const int64_t n = p.end - p.begin;
      if (p.outputs_all) {
        for (int64_t t = 0; t < n; ++t) src_rows.push_back(r + t), dst_rows.push_back(cursor[p.input]++);
      } else if (p.output_last) {
        src_rows.push_back(r + n - 1), dst_rows.push_back(cursor[p.input]++);
      }
      r += n;
    }
  }
  if (src_rows.empty()) return;
  const int64_t O = static_cast<int64_t>(src_rows.size());
  std::vector<float> xo(O * H);
  for (int64_t i = 0; i < O; ++i) std::memcpy(xo.data() + i * H, st.x.data() + src_rows[i] * H, H * 4);
  rms_norm_rows(xo.data(), weights_.final_norm.data(), xo.data(), O, pool);
  if (options.hidden)
    for (int64_t i = 0; i < O; ++i) std::memcpy(out.hidden.data() + dst_rows[i] * H, xo.data() + i * H, H * 4);
  if (!options.logits) return;
  // Output rows of one pass are consecutive in `out` (inputs are processed in order).
  bool contiguous = true;
  for (int64_t i = 1; i < O; ++i) contiguous &= dst_rows[i] == dst_rows[0] + i;
  if (contiguous) {
    weights_.lm_head->forward(xo.data(), O, out.logits.data() + dst_rows[0] * c.vocab_size, pool);
  } else {
    std::vector<float> logits(O * c.vocab_size);
    weights_.lm_head->forward(xo.data(), O, logits.data(), pool);
    for (int64_t i = 0; i < O; ++i)
      std::memcpy(out.logits.data() + dst_rows[i] * c.vocab_size, logits.data() + i * c.vocab_size, c.vocab_size * 4);
  }
}

}  // namespace qs
