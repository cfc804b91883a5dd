// The forward pass against an independent PyTorch implementation (tests/model/ref/llama_ref.py)
// on small random models of every architecture and on the real stories260K checkpoint, through
// every path: one batched prefill, prefill then token-by-token decode with the KV cache, and
// several sequences of different lengths in one pass.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/loader.h"
#include "model/synth.h"
#include "testing/testing.h"

namespace qs {
namespace {

using Seqs = std::vector<std::vector<int32_t>>;

// Runs the PyTorch reference; returns logits of every position of every sequence.
std::vector<std::vector<float>> reference_logits(const std::string& model, const Seqs& seqs, int64_t vocab,
                                                bool bf16_inputs = false) {
  const std::string dir = testing::make_temp_dir("ref");
  std::ofstream(dir + "/tokens.json") << nlohmann::json(seqs).dump();
  const std::string cmd = testing::python() + " " + testing::source_dir() + "/tests/model/ref/llama_ref.py --model " +
                          testing::shell_quote(model) + " --tokens-file " + dir + "/tokens.json --out " + dir + "/out.f32" +
                          (bf16_inputs ? " --bf16-inputs" : "");
  auto r = testing::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/out.f32", std::ios::binary);
  std::vector<std::vector<float>> out;
  for (const auto& s : seqs) {
    std::vector<float> l(s.size() * vocab);
    in.read(reinterpret_cast<char*>(l.data()), static_cast<std::streamsize>(l.size() * 4));
    EXPECT_TRUE(in.good()) << "reference output too short";
    out.push_back(std::move(l));
  }
  return out;
}

// ||a - b|| / ||b|| over the rows [row0, row0 + n) of a reference matrix.
double relative_error(const float* ours, const float* ref, size_t count) {
  double num = 0, den = 0;
  for (size_t i = 0; i < count; ++i) {
    num += (double(ours[i]) - ref[i]) * (double(ours[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

Seqs random_sequences(int64_t vocab, std::vector<int> lengths, uint64_t seed) {
  Rng rng(seed);
  Seqs s;
  for (int n : lengths) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng.below(vocab));
    s.push_back(t);
  }
  return s;
}

struct PathErrors {
  double prefill = 0, decode = 0, batched = 0;
};

// Compares the three execution paths of `model` with the reference on `seqs` (seqs[0] is the
// longest; it is also decoded token by token after a prompt of half its length).
PathErrors check_paths(const Model& model, const Seqs& seqs, const std::vector<std::vector<float>>& ref) {
  PathErrors e;
  {  // one pass, all logits
    KVCache cache(model.config(), 1);
    ForwardOutput out;
    SeqInput in{0, seqs[0], Outputs::All};
    model.forward({&in, 1}, cache, out);
    e.prefill = relative_error(out.logits.data(), ref[0].data(), ref[0].size());
  }
  {  // prompt, then one token at a time through the KV cache
    KVCache cache(model.config(), 1);
    const size_t prompt = seqs[0].size() / 2;
    std::vector<float> ours;
    ForwardOutput out;
    SeqInput in{0, std::span<const int32_t>(seqs[0]).first(prompt), Outputs::All};
    model.forward({&in, 1}, cache, out);
    ours = out.logits;
    for (size_t t = prompt; t < seqs[0].size(); ++t) {
      SeqInput step{0, std::span<const int32_t>(seqs[0]).subspan(t, 1), Outputs::Last};
      model.forward({&step, 1}, cache, out);
      ours.insert(ours.end(), out.logits.begin(), out.logits.end());
    }
    e.decode = relative_error(ours.data(), ref[0].data(), ref[0].size());
  }
  {  // all sequences in one pass, all logits
    KVCache cache(model.config(), static_cast<int>(seqs.size()));
    std::vector<SeqInput> ins;
    for (size_t i = 0; i < seqs.size(); ++i) ins.push_back({static_cast<int>(i), seqs[i], Outputs::All});
    ForwardOutput out;
    model.forward(ins, cache, out);
    for (size_t i = 0; i < seqs.size(); ++i)
      e.batched = std::max(e.batched, relative_error(out.logits_row(out.first_row[i]), ref[i].data(), ref[i].size()));
  }
  return e;
}

class ArchitectureVsPyTorch : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(ArchitectureVsPyTorch, LogitsMatch) {
  const auto& [preset, dtype] = GetParam();
  const SynthPreset& p = find_synth_preset(preset);
  const std::string dir = testing::make_temp_dir("arch-" + preset);
  SynthOptions o;
  o.dtype = dtype;
  o.seed = 7;
  o.init_std = 0.15;     // large enough for peaked, input-dependent distributions
  o.norm_jitter = 0.2;   // norms that are not all ones, so they are tested too
  write_synthetic_model(p.config, dir, o);
  auto model = load_model(dir);
  model->set_max_batch_tokens(32);  // long inputs also cross pass boundaries
  const Seqs seqs = random_sequences(p.config.vocab_size, {70, 9, 33}, 11);
  const auto ref = reference_logits(dir, seqs, p.config.vocab_size);
  const PathErrors e = check_paths(*model, seqs, ref);
  // f32 weights: only f32 rounding separates us from the float64 reference. bf16 weights: the
  // reference uses the same bf16 weights; our activations are rounded to bf16 at each matmul.
  const double tol = dtype == DType::F32 ? 1e-4 : 1e-2;
  EXPECT_LT(e.prefill, tol) << preset;
  EXPECT_LT(e.decode, tol) << preset;
  EXPECT_LT(e.batched, tol) << preset;
  std::printf("%-16s %-5s rel err: prefill %.2e decode %.2e batched %.2e\n", preset.c_str(),
              std::string(dtype_name(dtype)).c_str(), e.prefill, e.decode, e.batched);
  if (dtype == DType::BF16) {
    // The same reference with every matmul input rounded to bf16 emulates our declared numerics.
    // What remains are the few activations whose f32 (ours) and f64 (reference) values round to
    // different bf16 neighbours, each a 2^-8 step: measured 2e-4 .. 1.4e-3, against 6e-3 .. 9e-3
    // for exact math above. The bound shows the bf16 error is the declared rounding and nothing else.
    const auto emulated = reference_logits(dir, seqs, p.config.vocab_size, true);
    const PathErrors c = check_paths(*model, seqs, emulated);
    EXPECT_LT(c.prefill, 4e-3) << preset;
    EXPECT_LT(c.decode, 4e-3) << preset;
    EXPECT_LT(c.batched, 4e-3) << preset;
    std::printf("%-16s BF16 vs bf16-input reference: prefill %.2e decode %.2e batched %.2e\n", preset.c_str(),
                c.prefill, c.decode, c.batched);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Presets, ArchitectureVsPyTorch,
    ::testing::Combine(::testing::Values("tiny-llama3", "tiny-llama-tied", "tiny-qwen2", "tiny-qwen3", "tiny-mistral"),
                       ::testing::Values(DType::F32, DType::BF16)),
    [](const auto& info) {
      std::string n = std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
      for (auto& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST(Stories260K, LogitsMatchPyTorch) {
  const std::string bin = testing::shared_dir() + "/models/stories260K/stories260K.bin";
  auto model = load_model(bin);
  EXPECT_EQ(model->config().num_hidden_layers, 5);
  EXPECT_EQ(model->config().num_key_value_heads, 4);
  const Seqs seqs = random_sequences(512, {120, 17, 64}, 3);
  const auto ref = reference_logits(bin, seqs, 512);
  const PathErrors e = check_paths(*model, seqs, ref);
  EXPECT_LT(e.prefill, 1e-4);
  EXPECT_LT(e.decode, 1e-4);
  EXPECT_LT(e.batched, 1e-4);
  std::printf("stories260K rel err: prefill %.2e decode %.2e batched %.2e\n", e.prefill, e.decode, e.batched);
}

}  // namespace
}  // namespace qs
