#include "model/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qs {
namespace {

nlohmann::json llama() {
  return {{"model_type", "llama"}, {"vocab_size", 1000}, {"hidden_size", 64}, {"intermediate_size", 128},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0}, {"max_position_embeddings", 2048}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_model_config(j.dump(), "config.json");
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("config.json: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  ADD_FAILURE() << "no error for " << j.dump();
  return "";
}

TEST(Config, ParsesLlama) {
  ModelConfig c = parse_model_config(llama().dump(), "config.json");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
}

TEST(Config, ArchitectureFlags) {
  auto q2 = llama();
  q2["model_type"] = "qwen2";
  EXPECT_TRUE(parse_model_config(q2.dump(), "c").attention_bias);
  auto q3 = llama();
  q3["model_type"] = "qwen3";
  q3["head_dim"] = 32;  // differs from hidden / heads, as in Qwen3
  ModelConfig c = parse_model_config(q3.dump(), "c");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.q_dim(), 128);
  auto m = llama();
  m["model_type"] = "mistral";
  m["sliding_window"] = 4096;
  EXPECT_EQ(parse_model_config(m.dump(), "c").sliding_window.value_or(0), 4096);
  auto e = llama();
  e["eos_token_id"] = {128001, 128009};
  EXPECT_EQ(parse_model_config(e.dump(), "c").eos_token_ids.size(), 2u);
}

TEST(Config, MissingOrNonsensicalValuesAreNamed) {
  struct Case {
    nlohmann::json j;
    const char* expect;
  };
  std::vector<Case> cases;
  auto with = [&](const char* key, nlohmann::json v, const char* expect) {
    auto j = llama();
    if (v.is_null()) j.erase(key);
    else j[key] = v;
    cases.push_back({j, expect});
  };
  with("num_attention_heads", nullptr, "missing key 'num_attention_heads'");
  with("hidden_size", nullptr, "missing key 'hidden_size'");
  with("num_attention_heads", 0, "'num_attention_heads' = 0, expected >= 1");
  with("hidden_size", 66, "hidden_size 66 is not divisible by num_attention_heads 4");
  with("num_key_value_heads", 3, "not a multiple of num_key_value_heads");
  with("vocab_size", -3, "'vocab_size' = -3");
  with("hidden_size", "64", "must be an integer");
  with("model_type", "gpt2", "model_type 'gpt2' is not supported (supported: llama, mistral, qwen2, qwen3)");
  with("model_type", nullptr, "missing key 'model_type'");
  with("hidden_act", "gelu", "hidden_act 'gelu'");
  with("rms_norm_eps", 0, "rms_norm_eps");
  with("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4}}, "rope_scaling type 'yarn'");
  with("rope_scaling", {{"rope_type", "llama3"}, {"factor", 0}}, "rope_scaling.factor");
  with("head_dim", 15, "must be even");
  with("eos_token_id", "x", "eos_token_id");
  for (const auto& c : cases) {
    std::string m = error_of(c.j);
    EXPECT_NE(m.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << m;
  }
  EXPECT_THROW(parse_model_config("{not json", "config.json"), Error);
  EXPECT_THROW(parse_model_config("[]", "config.json"), Error);
}

TEST(Config, JsonRoundTrip) {
  auto j = llama();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  j["tie_word_embeddings"] = true;
  ModelConfig a = parse_model_config(j.dump(), "a");
  ModelConfig b = parse_model_config(model_config_to_json(a), "b");
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.tie_word_embeddings, true);
  ASSERT_TRUE(b.rope_scaling.has_value());
  EXPECT_EQ(b.rope_scaling->factor, 32.0);
  EXPECT_EQ(rope_inv_freq(a), rope_inv_freq(b));
}

TEST(Config, Llama3RopeScalingBands) {
  auto j = llama();
  j["hidden_size"] = 512;
  j["num_attention_heads"] = 4;  // head_dim 128
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  ModelConfig c = parse_model_config(j.dump(), "c");
  auto plain = c;
  plain.rope_scaling.reset();
  auto scaled = rope_inv_freq(c), base = rope_inv_freq(plain);
  // Highest frequencies (wavelength < 8192/4) unchanged; lowest (wavelength > 8192) divided by 8.
  EXPECT_EQ(scaled[0], base[0]);
  EXPECT_FLOAT_EQ(scaled.back(), base.back() / 8.0f);
  int smoothed = 0;
  for (size_t i = 0; i < base.size(); ++i)
    if (scaled[i] < base[i] && scaled[i] > base[i] / 8.0f * 1.0001f) ++smoothed;
  EXPECT_GT(smoothed, 0);
}

}  // namespace
}  // namespace qs
