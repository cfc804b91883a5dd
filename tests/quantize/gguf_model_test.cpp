// GGUF model files written and read back: synthetic tiny models of each architecture (dense
// BF16/F32, and quantized to q8_0 / q4_0 with quant::quantize_model) and the real stories260K.
// The loaded model must hold bit-identical tensors and blocks (q/k rows in llama.cpp's order for
// arch llama) and give the same logits; saving the loaded model again must reproduce the file
// byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "formats/gguf_blocks.h"
#include "gguf_test_util.h"
#include "model/loader.h"
#include "model/synth.h"
#include "quantize/files/gguf_model.h"
#include "quantize/quantize_model.h"
#include "testing/testing.h"

namespace qs {
namespace {

using namespace gguf_test;

struct Loaded {
  std::string dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded synthetic(const std::string& preset, DType dtype) {
  const SynthPreset& p = find_synth_preset(preset);
  Loaded l;
  l.dir = testing::make_temp_dir("gguf-" + preset);
  SynthOptions o;
  o.dtype = dtype;
  o.seed = 7;
  o.init_std = 0.15;
  o.norm_jitter = 0.2;
  write_synthetic_model(p.config, l.dir, o);
  l.model = load_model(l.dir);
  l.tokenizer = Tokenizer::load(l.dir);
  return l;
}

bool gguf_names_arch_is_llama(const ModelConfig& c) { return c.model_type == "llama" || c.model_type == "mistral"; }

bool file_bytes_equal(const std::string& a, const std::string& b) { return read_file(a) == read_file(b); }

// Saves, loads back, compares weights and logits, saves the loaded model again and compares files.
// Returns the relative logits error (0 when bit-identical).
double round_trip(const Model& model, const Tokenizer& tok, const std::string& dir, bool expect_identical_logits) {
  const std::string path = dir + "/model.gguf", again = dir + "/again.gguf";
  GgufSaveOptions so;
  so.name = "test";
  save_gguf_model(model, tok, path, so);
  GgufLoadReport report;
  auto back = load_gguf_model(path, {}, &report);
  const ModelConfig& a = model.config();
  const ModelConfig& b = back->config();
  const bool permuted = gguf_names_arch_is_llama(a) && a.rope_style == kernels::RopeStyle::Half;
  EXPECT_EQ(b.vocab_size, a.vocab_size);
  EXPECT_EQ(b.hidden_size, a.hidden_size);
  EXPECT_EQ(b.intermediate_size, a.intermediate_size);
  EXPECT_EQ(b.num_hidden_layers, a.num_hidden_layers);
  EXPECT_EQ(b.num_attention_heads, a.num_attention_heads);
  EXPECT_EQ(b.num_key_value_heads, a.num_key_value_heads);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.max_position_embeddings, a.max_position_embeddings);
  EXPECT_EQ(static_cast<float>(b.rms_norm_eps), static_cast<float>(a.rms_norm_eps));
  EXPECT_EQ(b.rope_theta, a.rope_theta);
  // A head quantized apart from a tied embedding is written as output.weight: no longer tied.
  EXPECT_EQ(b.tie_word_embeddings, model.weights().lm_head_is_embed);
  EXPECT_EQ(b.attention_bias, a.attention_bias);
  EXPECT_EQ(b.qk_norm, a.qk_norm);
  EXPECT_EQ(b.rope_style, gguf_names_arch_is_llama(a) ? kernels::RopeStyle::Interleaved : kernels::RopeStyle::Half);
  EXPECT_EQ(b.rope_scaling.has_value(), a.rope_scaling.has_value());
  if (a.rope_scaling && b.rope_scaling) {
    EXPECT_EQ(b.rope_scaling->type, a.rope_scaling->type);
    EXPECT_EQ(b.rope_scaling->factor, a.rope_scaling->factor);
    EXPECT_EQ(b.rope_scaling->low_freq_factor, a.rope_scaling->low_freq_factor);
    EXPECT_EQ(b.rope_scaling->high_freq_factor, a.rope_scaling->high_freq_factor);
    EXPECT_EQ(b.rope_scaling->original_max_position_embeddings, a.rope_scaling->original_max_position_embeddings);
  }
  expect_same_weights(model, *back, permuted);
  for (const auto& t : report.tensors)
    EXPECT_TRUE(t.use.rfind("mapped", 0) == 0 || t.use.rfind("copied", 0) == 0 || t.use.rfind("read into", 0) == 0)
        << t.name << ": " << t.use;
  EXPECT_EQ(report.dequantized_bytes, 0);

  const auto tokens = random_tokens(a.vocab_size, 48, 3);
  const auto want = logits(model, tokens), got = logits(*back, tokens);
  const double err = relative_error(got, want);
  if (expect_identical_logits) {
    EXPECT_TRUE(same_bits(got, want)) << "relative error " << err;
  }
  auto back_tok = load_gguf_tokenizer(path);
  for (const std::string s : {"Once upon a time, there was a little girl.", "The 3 cats ran home!"})
    EXPECT_EQ(back_tok->encode(s), tok.encode(s)) << s;

  save_gguf_model(*back, *back_tok, again, so);
  EXPECT_TRUE(file_bytes_equal(path, again)) << "saving the loaded model does not reproduce " << path;
  return err;
}

class GgufDenseRoundTrip : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

// Logits of `seq` from the independent PyTorch reference (tests/model/ref/llama_ref.py) on a
// Hugging Face directory, with qstudy's bf16 input rounding emulated.
std::vector<float> pytorch_logits(const std::string& dir, const std::vector<int32_t>& seq, int64_t vocab) {
  testing::write_text(dir + "/tokens.json", nlohmann::json(std::vector<std::vector<int32_t>>{seq}).dump());
  auto r = testing::run_command(testing::python() + " " + testing::source_dir() + "/tests/model/ref/llama_ref.py --model " +
                                dir + " --tokens-file " + dir + "/tokens.json --out " + dir + "/ref.f32 --bf16-inputs");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<float> out(seq.size() * static_cast<size_t>(vocab));
  const std::string bytes = read_file(dir + "/ref.f32");
  EXPECT_EQ(bytes.size(), out.size() * 4);
  std::memcpy(out.data(), bytes.data(), std::min(bytes.size(), out.size() * 4));
  return out;
}

TEST_P(GgufDenseRoundTrip, TensorsAndLogits) {
  const auto& [preset, dtype] = GetParam();
  Loaded l = synthetic(preset, dtype);
  // Llama from Hugging Face order: q/k rows are permuted and run with interleaved RoPE, so
  // attention adds the same products in another order: logits agree to f32 rounding, which bf16
  // models amplify where an activation then rounds to the other bf16 neighbour (the noise level
  // of bf16 models against PyTorch, tests/model/reference_test.cpp). Qwen is bit-identical.
  const bool llama = gguf_names_arch_is_llama(l.model->config());
  const double err = round_trip(*l.model, *l.tokenizer, l.dir, !llama);
  EXPECT_LT(err, dtype == DType::F32 ? 1e-5 : 4e-3);
  std::printf("%-16s %-4s dense round trip: logits rel err %.2e\n", preset.c_str(), std::string(dtype_name(dtype)).c_str(), err);
  if (llama && dtype == DType::BF16) {
    // Both the original and the GGUF model stay as close to PyTorch as bf16 models do.
    const auto tokens = random_tokens(l.model->config().vocab_size, 48, 3);
    const auto ref = pytorch_logits(l.dir, tokens, l.model->config().vocab_size);
    const double orig = relative_error(logits(*l.model, tokens), ref);
    const double gguf = relative_error(logits(*load_gguf_model(l.dir + "/model.gguf"), tokens), ref);
    EXPECT_LT(orig, 4e-3);
    EXPECT_LT(gguf, 4e-3);
    std::printf("%-16s vs PyTorch (bf16 inputs): original %.2e, from GGUF %.2e\n", preset.c_str(), orig, gguf);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, GgufDenseRoundTrip,
                         ::testing::Combine(::testing::Values("tiny-llama3", "tiny-llama-tied", "tiny-qwen2", "tiny-qwen3",
                                                              "tiny-mistral"),
                                            ::testing::Values(DType::BF16, DType::F32)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

class GgufQuantizedRoundTrip : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GgufQuantizedRoundTrip, BlocksAndLogits) {
  const auto& [preset, scheme] = GetParam();
  Loaded l = synthetic(preset, DType::BF16);
  quant::QuantizeOptions qo;
  qo.scheme = quant::find_scheme(scheme);
  qo.fallback = true;        // tiny-qwen2's 176-wide down_proj stays bf16, as llama-quantize falls back
  qo.include_head = true;    // the output head too (llama-quantize quantizes output.weight)
  quant::quantize_model(*l.model, qo);
  EXPECT_EQ(l.model->weights().lm_head->format(), scheme);
  const bool llama = gguf_names_arch_is_llama(l.model->config());
  const double err = round_trip(*l.model, *l.tokenizer, l.dir, !llama);
  EXPECT_LT(err, 1e-5);
  GgufFile f = read_gguf(l.dir + "/model.gguf");
  EXPECT_EQ(f.get_int("general.file_type"), scheme == "q4_0" ? 2 : 7);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type,
            scheme == "q4_0" ? formats::GgmlType::Q4_0 : formats::GgmlType::Q8_0);
  EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->type, formats::GgmlType::F32);
  std::printf("%-16s %-4s quantized round trip: logits rel err %.2e\n", preset.c_str(), scheme.c_str(), err);
}

INSTANTIATE_TEST_SUITE_P(Presets, GgufQuantizedRoundTrip,
                         ::testing::Combine(::testing::Values("tiny-llama3", "tiny-qwen2", "tiny-qwen3"),
                                            ::testing::Values("q8_0", "q4_0")),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(GgufModel, MetadataAsConvertWritesIt) {
  Loaded l = synthetic("tiny-llama3", DType::BF16);
  const std::string path = l.dir + "/m.gguf";
  save_gguf_model(*l.model, *l.tokenizer, path);
  GgufFile f = read_gguf(path);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("general.name"), "m");
  EXPECT_EQ(f.get_int("general.file_type"), 32);  // MOSTLY_BF16
  EXPECT_EQ(f.get_int("general.quantization_version"), 2);
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(f.get_int("llama.rope.dimension_count"), 16);
  EXPECT_EQ(f.find("llama.rope.freq_base")->type(), GgufType::F32);
  EXPECT_EQ(f.find("llama.block_count")->type(), GgufType::U32);
  EXPECT_EQ(f.get_int("llama.rope.scaling.original_context_length"), 64);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->size(), 384u);  // padded to the model's vocabulary
  EXPECT_EQ(f.opt_bool("tokenizer.ggml.add_bos_token"), true);
  // Llama-3 rope scaling as convert_hf_to_gguf.py writes it: a rope_freqs tensor of divisors.
  const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight");
  ASSERT_NE(rf, nullptr);
  EXPECT_EQ(rf->type, formats::GgmlType::F32);
  EXPECT_EQ(rf->ne, std::vector<int64_t>{8});
  std::vector<float> factors(8);
  std::memcpy(factors.data(), rf->data, 32);
  EXPECT_EQ(factors[0], 1.0f);  // high frequency: unscaled
  EXPECT_EQ(factors[7], 8.0f);  // low frequency: divided by the factor
  // Tensor names, types and ggml shapes.
  EXPECT_EQ(f.find_tensor("token_embd.weight")->ne, (std::vector<int64_t>{64, 384}));
  EXPECT_EQ(f.find_tensor("blk.1.ffn_down.weight")->ne, (std::vector<int64_t>{160, 64}));
  EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->type, formats::GgmlType::BF16);
  EXPECT_NE(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.bias"), nullptr);
  for (const auto& t : f.tensors) EXPECT_EQ(t.offset % 32, 0u);
}

TEST(GgufModel, Stories260KDenseAndQ8) {
  const std::string bin = testing::shared_dir() + "/models/stories260K/stories260K.bin";
  auto tok = Tokenizer::from_llama2c(testing::shared_dir() + "/models/stories260K/tok512.bin");
  {
    auto model = load_model(bin);  // llama2.c: Meta order already, tied, f32
    const std::string dir = testing::make_temp_dir("gguf-stories");
    EXPECT_EQ(round_trip(*model, *tok, dir, true), 0.0);
    GgufFile f = read_gguf(dir + "/model.gguf");
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(f.get_int("general.file_type"), 0);  // ALL_F32
  }
  {
    auto model = load_model(bin);
    quant::QuantizeOptions qo;
    qo.scheme = quant::find_scheme("q8_0");
    qo.fallback = true;  // hidden 172: down_proj's input is not whole blocks and stays f32
    quant::quantize_model(*model, qo);
    EXPECT_EQ(model->weights().layers[0].down->format(), "f32");
    EXPECT_EQ(model->weights().layers[0].q->format(), "q8_0");
    const std::string dir = testing::make_temp_dir("gguf-stories-q8");
    EXPECT_EQ(round_trip(*model, *tok, dir, true), 0.0);
  }
}

TEST(GgufModel, TiedQ8EmbeddingRunsTheHeadOnItsBlocks) {
  // llama-quantize's pure Q8_0 of a tied model: token_embd holds Q8_0 blocks and is the head.
  const std::string bin = testing::shared_dir() + "/models/stories260K/stories260K.bin";
  auto tok = Tokenizer::from_llama2c(testing::shared_dir() + "/models/stories260K/tok512.bin");
  auto model = load_model(bin);
  const std::string dir = testing::make_temp_dir("gguf-tied-q8");
  save_gguf_model(*model, *tok, dir + "/f32.gguf");
  rewrite_gguf(dir + "/f32.gguf", dir + "/q8.gguf", [](std::vector<GgufKV>&, std::vector<TensorCopy>& ts) {
    for (auto& t : ts) {
      if (t.name != "token_embd.weight") continue;
      std::vector<float> w(t.bytes.size() / 4);
      std::memcpy(w.data(), t.bytes.data(), t.bytes.size());
      auto blocks = formats::quantize_q8_0(w, t.ne[1], t.ne[0], t.name);
      t.type = formats::GgmlType::Q8_0;
      t.bytes.assign(reinterpret_cast<const uint8_t*>(blocks.data()),
                     reinterpret_cast<const uint8_t*>(blocks.data()) + blocks.size() * sizeof(formats::BlockQ8_0));
    }
  });
  GgufLoadReport report;
  auto q = load_gguf_model(dir + "/q8.gguf", {}, &report);
  EXPECT_EQ(q->weights().lm_head->format(), "q8_0");
  EXPECT_FALSE(q->weights().lm_head_is_embed);
  EXPECT_EQ(q->weights().embed.dtype, DType::BF16);
  EXPECT_EQ(report.tensors[0].use, "dequantized to bf16");
  // The head computes with the blocks: its logits are the Q8_0 head's, not the bf16 rows'.
  const auto tokens = random_tokens(512, 30, 5);
  const double err = relative_error(logits(*q, tokens), logits(*model, tokens));
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.05);
  // Saved again, the file carries the Q8_0 blocks as the tied embedding, as it came.
  save_gguf_model(*q, *load_gguf_tokenizer(dir + "/q8.gguf"), dir + "/again.gguf");
  GgufFile a = read_gguf(dir + "/q8.gguf"), b = read_gguf(dir + "/again.gguf");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].type, b.tensors[i].type) << a.tensors[i].name;
    ASSERT_EQ(a.tensors[i].nbytes, b.tensors[i].nbytes) << a.tensors[i].name;
    EXPECT_EQ(std::memcmp(a.tensors[i].data, b.tensors[i].data, a.tensors[i].nbytes), 0) << a.tensors[i].name;
  }
}

TEST(GgufModel, RefusesSchemesGgufCannotHold) {
  auto model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  auto tok = Tokenizer::from_llama2c(testing::shared_dir() + "/models/stories260K/tok512.bin");
  quant::QuantizeOptions qo;
  qo.scheme = quant::find_scheme("w8a16-int8");
  quant::quantize_model(*model, qo);
  const std::string path = testing::make_temp_dir("gguf-refuse") + "/m.gguf";
  try {
    save_gguf_model(*model, *tok, path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.layers.0.self_attn.q_proj"), std::string::npos) << m;
    EXPECT_NE(m.find("q8_0, q4_0"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace qs
