// Whole-model speed in the spirit of llama-bench: load time, prefill and decode throughput, peak
// memory, and how close each gets to its floor on this machine: decode against (bytes read per
// token) / (memory bandwidth measured here), prefill against (FLOPs) / (peak FLOP/s measured here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace qs {

struct BenchOptions {
  int64_t prompt_tokens = 512;
  int64_t gen_tokens = 128;
  int repetitions = 3;     // timed runs; the median is reported
  int batch = 1;           // sequences decoded together
  uint64_t seed = 0;       // for the random prompt tokens
  bool measure_machine = true;  // bandwidth and peak FLOP/s (a few seconds)
};

struct BenchResult {
  int threads = 0;
  int64_t prompt_tokens = 0, gen_tokens = 0;
  int batch = 1;
  double prefill_tok_s = 0, decode_tok_s = 0;           // medians
  std::vector<double> prefill_runs, decode_runs;        // every timed run (tok/s)
  int64_t model_bytes = 0;                              // all weights
  int64_t decode_bytes_per_token = 0;                   // weights + mean KV cache read per decode step
  int64_t prefill_flops = 0;                            // FLOPs of one prefill
  int64_t peak_rss_bytes = 0;
  double bandwidth_gb_s = 0, peak_gflops = 0;  // peak: G(FL)OP/s of the linear layers' arithmetic
  std::string peak_arithmetic;                  // "bf16", "int8" or "f32"
  double decode_roofline_tok_s = 0, decode_roofline_pct = 0;
  double prefill_roofline_tok_s = 0, prefill_roofline_pct = 0;
};

BenchResult run_bench(const Model& model, const BenchOptions& options);

}  // namespace qs
