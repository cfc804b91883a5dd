#include "bench/model_bench.h"

#include <algorithm>

#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "kernels/roofline.h"

namespace qs {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Arithmetic of the linear layers that do most of the prefill's work (the MLP's down projection
// of the first layer stands for all; mixed schemes are rare and their peak is a choice anyway).
DType compute_dtype(const Model& m) { return const_cast<Model&>(m).weights().layers.at(0).down->arithmetic(); }

}  // namespace

BenchResult run_bench(const Model& model, const BenchOptions& o) {
  const ModelConfig& c = model.config();
  require(o.prompt_tokens >= 1, "--prompt-tokens: expected >= 1");
  require(o.gen_tokens >= 0, "--gen-tokens: expected >= 0");
  require(o.batch >= 1, "--batch: expected >= 1");
  require(o.repetitions >= 1, "--repetitions: expected >= 1");
  const int64_t ctx = o.prompt_tokens + o.gen_tokens;
  if (ctx > c.max_position_embeddings)
    fail("--prompt-tokens + --gen-tokens = ", ctx, " exceeds the model's context of ", c.max_position_embeddings);
  ThreadPool& pool = default_pool();
  BenchResult r;
  r.threads = pool.size();
  r.prompt_tokens = o.prompt_tokens;
  r.gen_tokens = o.gen_tokens;
  r.batch = o.batch;
  r.model_bytes = model.weight_bytes();

  Rng rng(o.seed);
  std::vector<std::vector<int32_t>> prompts(o.batch);
  for (auto& p : prompts) {
    p.resize(o.prompt_tokens);
    for (auto& t : p) t = static_cast<int32_t>(rng.below(c.vocab_size));
  }
  KVCache cache(c, o.batch, ctx);
  ForwardOutput out;
  // Warm-up: touches every weight page and the caches once.
  {
    std::vector<int32_t> warm(std::min<int64_t>(o.prompt_tokens, 16), 1);
    SeqInput in{0, warm, Outputs::Last};
    model.forward({&in, 1}, cache, out);
  }
  Progress progress("bench", o.repetitions, "run");
  for (int rep = 0; rep < o.repetitions; ++rep) {
    for (int s = 0; s < o.batch; ++s) cache.clear(s);
    std::vector<SeqInput> ins;
    for (int s = 0; s < o.batch; ++s) ins.push_back({s, prompts[s], Outputs::Last});
    Stopwatch t;
    model.forward(ins, cache, out);
    r.prefill_runs.push_back(o.prompt_tokens * o.batch / t.seconds());
    if (o.gen_tokens > 0) {
      std::vector<int32_t> next(o.batch, 0);
      Stopwatch d;
      for (int64_t g = 0; g < o.gen_tokens; ++g) {
        ins.clear();
        for (int s = 0; s < o.batch; ++s) {
          next[s] = static_cast<int32_t>((g * 7919 + s) % c.vocab_size);
          ins.push_back({s, std::span<const int32_t>(&next[s], 1), Outputs::Last});
        }
        model.forward(ins, cache, out);
      }
      r.decode_runs.push_back(o.gen_tokens * o.batch / d.seconds());
    }
    progress.add();
  }
  progress.finish();
  r.prefill_tok_s = median(r.prefill_runs);
  r.decode_tok_s = median(r.decode_runs);
  r.peak_rss_bytes = peak_rss_bytes();

  // Floors. Decode reads every linear weight once per step (shared by the batch) plus each
  // sequence's KV cache (mean context over the run).
  const double kv_per_token_pos = 2.0 * c.num_hidden_layers * c.kv_dim() * 4;
  const double mean_ctx = o.prompt_tokens + o.gen_tokens / 2.0;
  const double step_bytes = model.decode_bytes_per_token() + o.batch * kv_per_token_pos * mean_ctx;
  r.decode_bytes_per_token = static_cast<int64_t>(step_bytes);
  int64_t linear_params = 0;
  for (auto& layer : const_cast<Model&>(model).weights().layers)
    for (auto& [role, lin] : layer.linears()) linear_params += (*lin)->out_features() * (*lin)->in_features();
  const double P = static_cast<double>(o.prompt_tokens);
  // Linear layers for every prompt token, the head for the last one, causal attention (QK^T and PV).
  r.prefill_flops = static_cast<int64_t>(o.batch * (2.0 * linear_params * P + 2.0 * c.vocab_size * c.hidden_size +
                                                    2.0 * 2.0 * c.num_hidden_layers * c.q_dim() * P * (P + 1) / 2));
  if (o.measure_machine) {
    r.bandwidth_gb_s = kernels::measure_memory_bandwidth_gbs(pool);
    const DType arith = compute_dtype(model);
    r.peak_arithmetic = arith == DType::I8 ? "int8" : arith == DType::BF16 ? "bf16" : "f32";
    r.peak_gflops = kernels::measure_peak_gflops(arith, pool);
    r.decode_roofline_tok_s = r.bandwidth_gb_s * 1e9 / step_bytes * o.batch;
    r.decode_roofline_pct = 100.0 * r.decode_tok_s / r.decode_roofline_tok_s;
    r.prefill_roofline_tok_s = r.peak_gflops * 1e9 / (r.prefill_flops / (P * o.batch));
    r.prefill_roofline_pct = 100.0 * r.prefill_tok_s / r.prefill_roofline_tok_s;
  }
  return r;
}

}  // namespace qs
