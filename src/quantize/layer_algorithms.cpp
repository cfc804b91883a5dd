#include "quantize/layer_algorithms.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "formats/int_quant.h"
#include "quantize/algorithms/awq.h"
#include "quantize/algorithms/scale_fold.h"
#include "quantize/algorithms/smoothquant.h"
#include "quantize/qlinear.h"

namespace qs::quant {

namespace {

int64_t slot_inputs(const ModelConfig& c, LinearSlot s) {
  switch (s) {
    case LinearSlot::QKV:
    case LinearSlot::GateUp: return c.hidden_size;
    case LinearSlot::O: return c.q_dim();
    default: return c.intermediate_size;
  }
}

// A dense copy of `lin` with weight `w` (same name and bias), stored as `storage`.
std::unique_ptr<Linear> dense_copy(const Linear& lin, std::vector<float> w, DType storage = DType::F32) {
  auto out = make_owned_dense_linear(lin.name(), std::move(w), lin.out_features(), lin.in_features(), storage);
  out->set_bias(lin.bias());
  return out;
}

double mse(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}

// A Hessian of inputs x for inputs x / s: H_ij -> H_ij / (s_i s_j) (exact up to rounding).
void smooth_hessian(std::vector<float>& h, const std::vector<float>& s) {
  const int64_t k = static_cast<int64_t>(s.size());
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) h[i * k + j] = h[i * k + j] / s[i] / s[j];
}

}  // namespace

std::vector<std::unique_ptr<Linear>*> slot_linears(DecoderLayer& L, LinearSlot slot) {
  switch (slot) {
    case LinearSlot::QKV: return {&L.q, &L.k, &L.v};
    case LinearSlot::O: return {&L.o};
    case LinearSlot::GateUp: return {&L.gate, &L.up};
    default: return {&L.down};
  }
}

LayerObservations observe_layer(const Model& model, int l, CalibrationRunner& calib, const ObserveOptions& o) {
  LayerObservations obs;
  const ModelConfig& c = model.config();
  const std::string prefix = cat("model.layers.", l, ".");
  const char* names[4] = {"q/k/v_proj input", "o_proj input", "gate/up_proj input", "down_proj input"};
  for (int s = 0; s < 4; ++s) {
    SlotObservations& so = obs[s];
    so.k = slot_inputs(c, static_cast<LinearSlot>(s));
    if (o.hessian) so.hessian = std::make_unique<HessianAccumulator>(so.k, prefix + names[s]);
    if (o.stats) so.stats = std::make_unique<ChannelStats>(so.k, prefix + names[s]);
    so.sample_cap = o.sample_rows;
    so.sample.reserve(static_cast<size_t>(so.sample_cap * so.k));
  }
  LinearTap tap = [&](int, LinearSlot slot, const float* x, int64_t rows) {
    SlotObservations& so = obs[static_cast<int>(slot)];
    std::span<const float> xs(x, static_cast<size_t>(rows * so.k));
    if (so.hessian) so.hessian->add(xs, rows);
    if (so.stats) so.stats->add(xs, rows);
    const int64_t take = std::min(rows, so.sample_cap - so.sample_rows);
    if (take > 0) {
      so.sample.insert(so.sample.end(), x, x + take * so.k);
      so.sample_rows += take;
    }
  };
  calib.run_layer(l, model.weights().layers[l].view(), &tap, false);
  for (auto& so : obs)
    if (so.hessian) {
      so.h = so.hessian->take();
      so.hessian.reset();
    }
  return obs;
}

void smooth_layer(DecoderLayer& L, LayerObservations& obs, double alpha) {
  struct Target {
    LinearSlot slot;
    std::vector<float>* norm;
  };
  for (const Target& t : {Target{LinearSlot::QKV, &L.attn_norm}, Target{LinearSlot::GateUp, &L.ffn_norm}}) {
    SlotObservations& so = obs[static_cast<int>(t.slot)];
    require(so.stats != nullptr, "smoothquant: activation statistics were not collected");
    auto linears = slot_linears(L, t.slot);
    std::vector<std::vector<float>> w;
    std::vector<LinearWeight> views;
    for (auto* lin : linears) w.push_back((*lin)->dequantized());
    for (size_t i = 0; i < linears.size(); ++i) views.push_back({w[i], (*linears[i])->out_features()});
    SmoothQuantOptions sq;
    sq.alpha = static_cast<float>(alpha);
    const std::vector<float> s = smoothquant_scales(so.stats->absmax(), weight_column_absmax(views, so.k), sq);
    fold_scales_into_norm(*t.norm, s);
    for (size_t i = 0; i < linears.size(); ++i) {
      scale_input_columns(w[i], (*linears[i])->out_features(), so.k, s);
      *linears[i] = dense_copy(**linears[i], std::move(w[i]));
    }
    if (!so.h.empty()) smooth_hessian(so.h, s);
    so.smoothing = s;
  }
}

std::array<std::string, 4> awq_layer(Model& model, int l, CalibrationRunner& calib, LayerObservations& obs,
                                     const AwqLayerOptions& o) {
  const ModelConfig& c = model.config();
  DecoderLayer& L = model.weights().layers[l];
  ThreadPool& pool = default_pool();
  std::array<std::string, 4> notes;
  auto cfg_for = [&](LinearSlot slot, int64_t k) { return int_config(*o.slot_scheme[static_cast<int>(slot)], k); };

  // Reference outputs of the attention and MLP blocks on the sample sequences, with their inputs.
  struct ChunkData {
    std::vector<float> xn_attn, out_attn, xn_mlp, out_mlp;
  };
  std::vector<ChunkData> chunks;
  const LayerView original = L.view();
  calib.for_each_chunk(
      [&](PassState& st, KVCache& cache) {
        ChunkData d;
        const int64_t H = c.hidden_size, R = st.rows;
        model.rms_norm_rows(st.x.data(), original.attn_norm, st.xn.data(), R, pool);
        d.xn_attn.assign(st.xn.begin(), st.xn.begin() + R * H);
        model.attention_block(l, original, st, cache, 0, pool);
        d.out_attn.assign(st.tmp.begin(), st.tmp.begin() + R * H);
        for (int64_t i = 0; i < R * H; ++i) st.x[i] += st.tmp[i];
        model.rms_norm_rows(st.x.data(), original.ffn_norm, st.xn.data(), R, pool);
        d.xn_mlp.assign(st.xn.begin(), st.xn.begin() + R * H);
        model.mlp_block(l, original, st, pool);
        d.out_mlp.assign(st.tmp.begin(), st.tmp.begin() + R * H);
        chunks.push_back(std::move(d));
      },
      o.search_sequences);

  // Candidate linears Q(W diag(s)) diag(s)^-1 for the linears reading a slot.
  auto candidates = [&](LinearSlot slot, std::span<const float> s) {
    std::vector<std::unique_ptr<Linear>> out;
    for (auto* lin : slot_linears(L, slot)) {
      const int64_t n = (*lin)->out_features(), k = (*lin)->in_features();
      std::vector<float> w = (*lin)->dequantized();
      scale_input_columns(w, n, k, s);
      std::vector<float> q = formats::fake_quant_int(w, n, k, cfg_for(slot, k), (*lin)->name());
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) q[r * k + j] = q[r * k + j] / s[j];
      // In the model's own dtype, as AutoAWQ evaluates its candidates (and, for a bf16 model,
      // with the bf16 GEMM: half the time of the search).
      out.push_back(dense_copy(**lin, std::move(q), (*lin)->arithmetic() == DType::BF16 ? DType::BF16 : DType::F32));
    }
    return out;
  };
  // Block-output loss for the attention (q/k/v candidates) or MLP (gate/up candidates) block.
  auto block_loss = [&](LinearSlot slot, std::span<const float> s) {
    auto cand = candidates(slot, s);
    LayerView v = original;
    if (slot == LinearSlot::QKV) v.q = cand[0].get(), v.k = cand[1].get(), v.v = cand[2].get();
    else v.gate = cand[0].get(), v.up = cand[1].get();
    double sum = 0;
    int64_t count = 0;
    size_t i = 0;
    calib.for_each_chunk(
        [&](PassState& st, KVCache& cache) {
          const ChunkData& d = chunks[i++];
          const int64_t n = st.rows * c.hidden_size;
          if (slot == LinearSlot::QKV) {
            std::memcpy(st.xn.data(), d.xn_attn.data(), n * 4);
            model.attention_block(l, v, st, cache, 0, pool);
            sum += mse(st.tmp.data(), d.out_attn.data(), n);
          } else {
            std::memcpy(st.xn.data(), d.xn_mlp.data(), n * 4);
            model.mlp_block(l, v, st, pool);
            sum += mse(st.tmp.data(), d.out_mlp.data(), n);
          }
          count += n;
        },
        o.search_sequences);
    return sum / static_cast<double>(count);
  };

  auto weight_views = [&](LinearSlot slot, std::vector<std::vector<float>>& store) {
    std::vector<LinearWeight> views;
    for (auto* lin : slot_linears(L, slot)) store.push_back((*lin)->dequantized());
    size_t i = 0;
    for (auto* lin : slot_linears(L, slot)) views.push_back({store[i++], (*lin)->out_features()});
    return views;
  };
  auto group_of = [&](LinearSlot slot, int64_t k) { return cfg_for(slot, k).group_size; };

  // 1. Search all scales on the original weights (as AutoAWQ does), then apply them.
  std::array<std::vector<float>, 4> scales;
  AwqScaleOptions so;
  so.n_grid = o.n_grid;
  for (LinearSlot slot : {LinearSlot::QKV, LinearSlot::O, LinearSlot::GateUp, LinearSlot::Down}) {
    const int si = static_cast<int>(slot);
    SlotObservations& ob = obs[si];
    if (!o.slot_scheme[si]) {
      notes[si] = "awq skipped: the linears of this input are not all quantized alike";
      continue;
    }
    if (slot == LinearSlot::O && c.kv_dim() != c.q_dim()) {
      notes[si] = "awq scale skipped: v_proj and o_proj shapes differ (GQA), as in AutoAWQ";
      continue;
    }
    std::vector<std::vector<float>> store;
    const auto views = weight_views(slot, store);
    const std::vector<float> x_scale = ob.stats->mean_abs();
    const std::vector<float> w_scale = awq_weight_scale(views, ob.k, group_of(slot, ob.k));
    AwqScaleResult r;
    if (slot == LinearSlot::QKV || slot == LinearSlot::GateUp) {
      r = awq_search_scales(x_scale, w_scale, [&](std::span<const float> s) { return block_loss(slot, s); }, so);
    } else {
      AwqLinearsLoss loss(ob.sample, ob.sample_rows, ob.k, views, cfg_for(slot, ob.k), (*slot_linears(L, slot)[0])->name(),
                          pool);
      r = awq_search_scales(x_scale, w_scale, loss, so);
    }
    scales[si] = r.scales;
    notes[si] = cat("awq ratio ", r.ratio);
  }
  auto apply = [&](LinearSlot slot, std::vector<float>* norm, std::unique_ptr<Linear>* producer) {
    const int si = static_cast<int>(slot);
    const std::vector<float>& s = scales[si];
    if (s.empty()) return;
    if (norm) fold_scales_into_norm(*norm, s);
    if (producer) {
      std::vector<float> w = (*producer)->dequantized();
      std::vector<float> bias = (*producer)->bias();
      fold_scales_into_output_rows(w, (*producer)->out_features(), (*producer)->in_features(), s, bias);
      auto copy = make_owned_dense_linear((*producer)->name(), std::move(w), (*producer)->out_features(),
                                          (*producer)->in_features());
      copy->set_bias(std::move(bias));
      *producer = std::move(copy);
    }
    for (auto* lin : slot_linears(L, slot)) {
      std::vector<float> w = (*lin)->dequantized();
      scale_input_columns(w, (*lin)->out_features(), (*lin)->in_features(), s);
      *lin = dense_copy(**lin, std::move(w));
    }
    // The recorded inputs are divided by s, as AutoAWQ's apply_scale does to its input features.
    SlotObservations& ob = obs[si];
    for (int64_t r = 0; r < ob.sample_rows; ++r)
      for (int64_t j = 0; j < ob.k; ++j) ob.sample[r * ob.k + j] /= s[j];
  };
  apply(LinearSlot::QKV, &L.attn_norm, nullptr);
  apply(LinearSlot::O, nullptr, &L.v);
  apply(LinearSlot::GateUp, &L.ffn_norm, nullptr);
  apply(LinearSlot::Down, nullptr, &L.up);

  // 2. Clip search on every quantized linear except q and k (AutoAWQ's avoid_clipping).
  AwqClipOptions co;
  co.n_grid = o.n_grid;
  for (LinearSlot slot : {LinearSlot::QKV, LinearSlot::O, LinearSlot::GateUp, LinearSlot::Down}) {
    const int si = static_cast<int>(slot);
    if (!o.slot_scheme[si]) continue;
    SlotObservations& ob = obs[si];
    for (auto* lin : slot_linears(L, slot)) {
      if (lin == &L.q || lin == &L.k) continue;
      const int64_t n = (*lin)->out_features(), k = (*lin)->in_features();
      std::vector<float> w = (*lin)->dequantized();
      const std::vector<float> max_val =
          awq_search_clip(w, n, k, ob.sample, ob.sample_rows, cfg_for(slot, k), co, (*lin)->name(), pool);
      awq_apply_clip(w, n, k, max_val, group_of(slot, k));
      *lin = dense_copy(**lin, std::move(w));
    }
  }
  return notes;
}

}  // namespace qs::quant
