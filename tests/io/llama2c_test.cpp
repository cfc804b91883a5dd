#include "io/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "testing/testing.h"

namespace qs {
namespace {

const std::string kStories = "/models/stories260K/stories260K.bin";

TEST(Llama2c, ReadsStories260K) {
  auto ck = read_llama2c(testing::shared_dir() + kStories);
  const auto& h = ck.header;
  EXPECT_EQ(h.dim, 64);
  EXPECT_EQ(h.hidden_dim, 172);
  EXPECT_EQ(h.n_layers, 5);
  EXPECT_EQ(h.n_heads, 8);
  EXPECT_EQ(h.n_kv_heads, 4);
  EXPECT_EQ(h.vocab_size, 512);
  EXPECT_EQ(h.seq_len, 512);
  EXPECT_TRUE(h.shared_classifier);
  EXPECT_EQ(ck.tensors.get("model.layers.4.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_FALSE(ck.tensors.contains("lm_head.weight"));
  int64_t params = 0;
  for (const auto& n : ck.tensors.names()) params += ck.tensors.get(n).numel();
  EXPECT_EQ(params, 260032);  // as ../shared/README.md states
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.bin");
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos);
    EXPECT_EQ(m.rfind("m.bin: ", 0), 0u) << m;
    return m;
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string header(std::vector<int32_t> h) {
  std::string s(h.size() * 4, '\0');
  std::memcpy(s.data(), h.data(), s.size());
  return s;
}

TEST(Llama2c, MalformedFiles) {
  auto mf = MappedFile::open(testing::shared_dir() + kStories);
  const std::string real(reinterpret_cast<const char*>(mf->data()), mf->size());
  EXPECT_NE(parse_error(real.substr(0, 20)).find("too short"), std::string::npos);
  EXPECT_NE(parse_error(real.substr(0, real.size() / 2)).find("truncated llama2.c checkpoint"), std::string::npos);
  EXPECT_NE(parse_error(real + "xxxx").find("bytes left after the last tensor"), std::string::npos);
  EXPECT_NE(parse_error(header({64, 172, 5, 0, 4, 512, 512})).find("n_heads"), std::string::npos);
  EXPECT_NE(parse_error(header({64, 172, 5, 8, 3, 512, 512})).find("n_kv_heads"), std::string::npos);
  EXPECT_NE(parse_error(header({-64, 172, 5, 8, 4, 512, 512})).find("dim"), std::string::npos);
  EXPECT_NE(parse_error(header({64, 172, 5, 8, 4, 512, 0})).find("seq_len"), std::string::npos);
  EXPECT_NE(parse_error(header({0x616b3432, 2, 64, 172, 5, 8, 4, 512, 512})).find("version 2"), std::string::npos);
}

TEST(Llama2c, SeparateClassifierWhenVocabIsNegative) {
  // Smallest valid model: dim 2, hidden 2, 1 layer, 1 head, vocab 3 (negative: own classifier), seq 2.
  const int dim = 2, hid = 2, vocab = 3, seq = 2;
  std::string bytes = header({dim, hid, 1, 1, 1, -vocab, seq});
  const size_t floats = vocab * dim + dim + 4 * dim * dim + dim + 3 * hid * dim + dim + 2 * seq * (dim / 2) + vocab * dim;
  bytes += std::string(floats * 4, '\0');
  auto ck = parse_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "tiny.bin");
  EXPECT_FALSE(ck.header.shared_classifier);
  EXPECT_TRUE(ck.tensors.contains("lm_head.weight"));
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

TEST(Llama2c, Version1LayoutNormsFirst) {
  const int dim = 2, hid = 2, vocab = 3;
  std::string bytes(256, '\0');
  const int32_t head[9] = {0x616b3432, 1, dim, hid, 1, 1, 1, vocab, 2};
  std::memcpy(bytes.data(), head, sizeof head);
  bytes[36] = 1;  // shared classifier
  std::vector<float> w;
  for (int i = 0; i < dim; ++i) w.push_back(10);   // attention norm
  for (int i = 0; i < dim; ++i) w.push_back(20);   // ffn norm
  for (int i = 0; i < dim; ++i) w.push_back(30);   // final norm
  for (int i = 0; i < vocab * dim; ++i) w.push_back(40);  // embeddings
  for (int i = 0; i < 4 * dim * dim + 3 * hid * dim; ++i) w.push_back(50);
  bytes.append(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  auto ck = parse_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "v1.bin");
  EXPECT_EQ(ck.header.version, 1);
  EXPECT_EQ(ck.tensors.get("model.layers.0.post_attention_layernorm.weight").as<float>()[0], 20.0f);
  EXPECT_EQ(ck.tensors.get("model.norm.weight").as<float>()[0], 30.0f);
  EXPECT_EQ(ck.tensors.get("model.embed_tokens.weight").as<float>()[0], 40.0f);
}

}  // namespace
}  // namespace qs
