// A GGUF file laid out as llama.cpp's tools write one, made by an independent Python writer
// (tests/quantize/ref/llamacpp_gguf_ref.py: Q4_K embeddings, Q6_K output, Q4_0/Q8_0 layers with
// every other decodable type mixed in, F32 norms, Llama-3 rope scaling as rope_freqs.weight, a
// SentencePiece vocabulary): it loads, reports how each tensor is used, and its logits equal an
// independent PyTorch forward over the dequantized weights. Then malformed model files: one-line
// errors naming the file and the key or tensor.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf_test_util.h"
#include "model/loader.h"
#include "quantize/files/gguf_model.h"
#include "testing/testing.h"

namespace qs {
namespace {

using namespace gguf_test;

const std::string& llamacpp_file() {
  static const std::string path = [] {
    const std::string p = testing::make_temp_dir("llamacpp-gguf") + "/mixed.gguf";
    auto r = testing::run_command(testing::python() + " " + testing::source_dir() +
                                  "/tests/quantize/ref/llamacpp_gguf_ref.py make " + p + " " +
                                  testing::shared_dir() + "/models/stories260K/tok512.bin");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

using Seqs = std::vector<std::vector<int32_t>>;

std::vector<std::vector<float>> reference(const Seqs& seqs, const char* weights) {
  const std::string dir = testing::make_temp_dir("llamacpp-ref");
  std::ofstream(dir + "/tokens.json") << nlohmann::json(seqs).dump();
  auto r = testing::run_command(testing::python() + " " + testing::source_dir() +
                                "/tests/quantize/ref/llamacpp_gguf_ref.py forward " + llamacpp_file() + " " + dir +
                                "/tokens.json " + dir + "/out.f32 --weights " + weights);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/out.f32", std::ios::binary);
  std::vector<std::vector<float>> out;
  for (const auto& s : seqs) {
    std::vector<float> l(s.size() * 512);
    in.read(reinterpret_cast<char*>(l.data()), static_cast<std::streamsize>(l.size() * 4));
    EXPECT_TRUE(in.good());
    out.push_back(std::move(l));
  }
  return out;
}

// Logits of each sequence through three paths: alone, token by token after a prompt, all in one
// batch; returns the largest relative error against `ref`.
double worst_error(const Model& m, const Seqs& seqs, const std::vector<std::vector<float>>& ref) {
  double worst = 0;
  for (size_t i = 0; i < seqs.size(); ++i) worst = std::max(worst, relative_error(logits(m, seqs[i]), ref[i]));
  {
    KVCache cache(m.config(), 1);
    ForwardOutput out;
    const size_t prompt = seqs[0].size() / 2;
    SeqInput in{0, std::span<const int32_t>(seqs[0]).first(prompt), Outputs::All};
    m.forward({&in, 1}, cache, out);
    std::vector<float> all = out.logits;
    for (size_t t = prompt; t < seqs[0].size(); ++t) {
      SeqInput step{0, std::span<const int32_t>(seqs[0]).subspan(t, 1), Outputs::Last};
      m.forward({&step, 1}, cache, out);
      all.insert(all.end(), out.logits.begin(), out.logits.end());
    }
    worst = std::max(worst, relative_error(all, ref[0]));
  }
  {
    KVCache cache(m.config(), static_cast<int>(seqs.size()));
    std::vector<SeqInput> ins;
    for (size_t i = 0; i < seqs.size(); ++i) ins.push_back({static_cast<int>(i), seqs[i], Outputs::All});
    ForwardOutput out;
    m.forward(ins, cache, out);
    for (size_t i = 0; i < seqs.size(); ++i) {
      std::vector<float> rows(out.logits_row(out.first_row[i]), out.logits_row(out.first_row[i]) + ref[i].size());
      worst = std::max(worst, relative_error(rows, ref[i]));
    }
  }
  return worst;
}

const Linear& layer(const Model& m, int l, const char* role) {
  for (auto& [r, lin] : const_cast<DecoderLayer&>(m.weights().layers[static_cast<size_t>(l)]).linears())
    if (std::string(r) == role) return **lin;
  throw Error(role);
}

TEST(LlamaCppFile, LoadsWithEveryTypeAndMatchesPyTorch) {
  const Seqs seqs = {random_tokens(512, 60, 1), random_tokens(512, 9, 2), random_tokens(512, 31, 3)};
  GgufLoadOptions exact;
  exact.dequantized_dtype = DType::F32;
  GgufLoadReport report;
  auto m = load_gguf_model(llamacpp_file(), exact, &report);
  const ModelConfig& c = m->config();
  EXPECT_EQ(report.architecture, "llama");
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_style, kernels::RopeStyle::Interleaved);
  ASSERT_TRUE(c.rope_scaling.has_value());  // recovered from rope_freqs.weight
  EXPECT_EQ(c.rope_scaling->type, "llama3");
  EXPECT_EQ(c.rope_scaling->factor, 8.0);
  EXPECT_EQ(c.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  // How each type is run.
  EXPECT_EQ(m->weights().lm_head->format(), "f32 (from Q6_K)");
  EXPECT_EQ(layer(*m, 0, "q_proj").format(), "q4_0");
  EXPECT_EQ(layer(*m, 1, "q_proj").format(), "q8_0");
  EXPECT_EQ(layer(*m, 0, "v_proj").format(), "f32 (from Q6_K)");
  EXPECT_EQ(layer(*m, 0, "o_proj").format(), "f32 (from Q4_1)");
  EXPECT_EQ(layer(*m, 0, "down_proj").format(), "f32 (from Q2_K)");
  EXPECT_EQ(layer(*m, 1, "gate_proj").format(), "f32 (from Q3_K)");
  EXPECT_EQ(layer(*m, 1, "o_proj").format(), "f16");
  EXPECT_EQ(layer(*m, 1, "up_proj").format(), "bf16");
  EXPECT_EQ(m->weights().embed.dtype, DType::F32);
  ASSERT_FALSE(report.tensors.empty());
  EXPECT_EQ(report.tensors[0].name, "token_embd.weight");
  EXPECT_EQ(report.tensors[0].ggml_type, "Q4_K");
  EXPECT_EQ(report.tensors[0].use, "dequantized to f32");
  EXPECT_GT(report.mapped_bytes, 0);
  EXPECT_GT(report.copied_bytes, 0);

  // Exact dequantized weights: only f32 rounding (and the Q8_0 activation codes it can flip: one
  // flipped code moves a Q4_0/Q8_0 row's output by a step of its block, so the worst logit over
  // 100 positions moves by up to ~1e-3 with the summation order of the GEMM blocking) separates
  // qstudy from the float64 reference.
  const double exact_err = worst_error(*m, seqs, reference(seqs, "f32"));
  EXPECT_LT(exact_err, 1.5e-3);

  // The default load keeps the dequantized tensors in bf16: exactly the f32 load's values
  // rounded to nearest even.
  auto b = load_gguf_model(llamacpp_file());
  EXPECT_EQ(b->weights().lm_head->format(), "bf16 (from Q6_K)");
  EXPECT_EQ(layer(*b, 1, "k_proj").format(), "bf16 (from Q5_1)");
  EXPECT_EQ(layer(*b, 0, "q_proj").format(), "q4_0");
  ASSERT_EQ(b->weights().embed.dtype, DType::BF16);
  auto rounded = [](std::vector<float> v) {
    for (auto& x : v) x = bf16_to_f32(f32_to_bf16(x));
    return v;
  };
  EXPECT_TRUE(same_bits(to_f32(b->weights().embed), rounded(to_f32(m->weights().embed))));
  EXPECT_TRUE(same_bits(b->weights().lm_head->dequantized(), rounded(m->weights().lm_head->dequantized())));
  for (const char* role : {"v_proj", "o_proj", "down_proj"})
    EXPECT_TRUE(same_bits(layer(*b, 0, role).dequantized(), rounded(layer(*m, 0, role).dequantized()))) << role;
  // Its logits against the reference with the same bf16 weights and bf16 inputs to those
  // layers: an activation rounded to the other bf16 neighbour (f32 vs float64 activations)
  // perturbs later Q8_0 activation codes too, so the agreement is looser than above, but the
  // emulation must still explain most of the bf16 effect (without it: about 2e-2).
  const auto bf16_ref = reference(seqs, "bf16");
  const double bf16_err = worst_error(*b, seqs, bf16_ref);
  const double unemulated = worst_error(*b, seqs, reference(seqs, "f32"));
  EXPECT_LT(bf16_err, 1e-2);
  EXPECT_LT(bf16_err, unemulated / 2);
  std::printf("llama.cpp-made file vs PyTorch: f32 dequantization %.2e; bf16 dequantization %.2e (%.2e against the "
              "f32 reference)\n", exact_err, bf16_err, unemulated);
}

TEST(LlamaCppFile, VocabularyEncodesLikeTheTokenizerBin) {
  auto t = load_gguf_tokenizer(llamacpp_file());
  auto original = Tokenizer::from_llama2c(testing::shared_dir() + "/models/stories260K/tok512.bin");
  for (const std::string s : {"Once upon a time, there was a little girl named Lily.", "She said: \"Let's play!\" 42 times.",
                              "", "naïve café"})
    EXPECT_EQ(t->encode(s), original->encode(s)) << s;
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_ids(), std::vector<int32_t>{2});
}

// A malformed copy of a valid small model file; expects load_gguf_model to fail naming `needles`.
void expect_load_error(const std::string& valid,
                       const std::function<void(std::vector<GgufKV>&, std::vector<TensorCopy>&)>& edit,
                       std::vector<std::string> needles, bool tokenizer = false) {
  const std::string bad = testing::make_temp_dir("gguf-bad") + "/bad.gguf";
  rewrite_gguf(valid, bad, edit);
  try {
    if (tokenizer) load_gguf_tokenizer(bad);
    else load_gguf_model(bad);
    ADD_FAILURE() << "no error; expected " << needles[0];
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.rfind(bad + ": ", 0), 0u) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

TEST(GgufModelErrors, OneLineErrorsNameFileAndKeyOrTensor) {
  const std::string valid = llamacpp_file();
  ASSERT_NO_THROW(load_gguf_model(valid));
  using KV = std::vector<GgufKV>;
  using TS = std::vector<TensorCopy>;
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "general.architecture", GgufValue::string("gemma")); },
                    {"general.architecture", "'gemma' is not supported", "llama, qwen2, qwen3"});
  expect_load_error(valid, [](KV& kv, TS&) { drop_kv(kv, "general.architecture"); }, {"general.architecture"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "split.count", GgufValue::u16(3)); },
                    {"'split.count'", "one of 3 parts"});
  expect_load_error(valid, [](KV& kv, TS&) { drop_kv(kv, "llama.block_count"); },
                    {"missing metadata key 'llama.block_count'"});
  expect_load_error(valid, [](KV& kv, TS&) { drop_kv(kv, "llama.attention.layer_norm_rms_epsilon"); },
                    {"'llama.attention.layer_norm_rms_epsilon'"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "llama.embedding_length", GgufValue::string("256")); },
                    {"'llama.embedding_length'", "expected an integer"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "llama.attention.head_count_kv", GgufValue::u32(3)); },
                    {"'llama.attention.head_count_kv'", "3 does not divide"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "llama.rope.scaling.type", GgufValue::string("yarn")); },
                    {"'llama.rope.scaling.type'", "'yarn' is not supported"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "llama.feed_forward_length", GgufValue::u32(640)); },
                    {"tensor 'blk.0.ffn_gate.weight'", "has shape [512, 256]", "expected [640, 256]"});
  expect_load_error(valid,
                    [](KV&, TS& ts) {
                      for (auto& t : ts)
                        if (t.name == "blk.1.attn_q.weight") t.ne = {256, 128}, t.bytes.resize(t.bytes.size() / 2);
                    },
                    {"tensor 'blk.1.attn_q.weight'", "[128, 256]", "expected [256, 256]"});
  expect_load_error(valid, [](KV&, TS& ts) { std::erase_if(ts, [](auto& t) { return t.name == "blk.1.ffn_norm.weight"; }); },
                    {"missing tensor 'blk.1.ffn_norm.weight'"});
  expect_load_error(valid, [](KV&, TS& ts) { ts.push_back({"blk.7.attn_q.weight", formats::GgmlType::F32, {4}, std::vector<uint8_t>(16)}); },
                    {"tensor 'blk.7.attn_q.weight'", "not part of a llama model with 2 blocks"});
  expect_load_error(valid,
                    [](KV&, TS& ts) {
                      for (auto& t : ts)
                        if (t.name == "blk.0.attn_q.weight") t.type = formats::GgmlType::IQ4_NL;  // same 18-byte blocks
                    },
                    {"tensor 'blk.0.attn_q.weight'", "IQ4_NL", "cannot decode"});
  expect_load_error(valid, [](KV& kv, TS&) {
    set_kv(kv, "tokenizer.ggml.tokens", GgufValue::strings(std::vector<std::string>(100, "x")));
  }, {"'tokenizer.ggml.tokens'", "100 tokens", "512 rows"});
  expect_load_error(valid, [](KV& kv, TS&) { set_kv(kv, "tokenizer.ggml.model", GgufValue::string("t5")); },
                    {"'tokenizer.ggml.model'", "'t5' is not supported"}, true);
  expect_load_error(valid,
                    [](KV&, TS& ts) {
                      for (auto& t : ts)
                        if (t.name == "rope_freqs.weight")
                          for (size_t i = 0; i < t.bytes.size(); i += 4) {
                            const float v = 1.0f + static_cast<float>(i % 7);
                            std::memcpy(&t.bytes[i], &v, 4);
                          }
                    },
                    {"rope_freqs.weight", "not Llama-3 rope scaling"});
}

}  // namespace
}  // namespace qs
