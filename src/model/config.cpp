#include "model/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"

namespace qs {

namespace {

using nlohmann::json;

const char* kSupported = "llama, mistral, qwen2, qwen3";

// Typed access to config keys with errors naming the file and the key.
class Keys {
 public:
  Keys(const json& j, const std::string& path) : j_(j), path_(path) {}
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  int64_t integer(const char* key) const {
    if (!has(key)) fail(path_, ": missing key ", quote(key));
    return integer_value(key);
  }
  int64_t integer_or(const char* key, int64_t fallback) const { return has(key) ? integer_value(key) : fallback; }
  double number_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_number()) fail(path_, ": key ", quote(key), " must be a number");
    return j_[key].get<double>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(path_, ": key ", quote(key), " must be true or false");
    return j_[key].get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(path_, ": key ", quote(key), " must be a string");
    return j_[key].get<std::string>();
  }
  void positive(const char* key, int64_t v) const {
    if (v < 1) fail(path_, ": ", quote(key), " = ", v, ", expected >= 1");
  }

 private:
  int64_t integer_value(const char* key) const {
    const json& v = j_[key];
    if (!v.is_number_integer()) fail(path_, ": key ", quote(key), " must be an integer");
    return v.get<int64_t>();
  }
  const json& j_;
  const std::string& path_;
};

}  // namespace

int64_t ModelConfig::parameter_count() const {
  const int64_t attn = hidden_size * q_dim() * 2 + hidden_size * kv_dim() * 2 + (attention_bias ? q_dim() + 2 * kv_dim() : 0) +
                       (qk_norm ? 2 * head_dim : 0);
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t per_layer = attn + mlp + 2 * hidden_size;
  return per_layer * num_hidden_layers + vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + hidden_size;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& path) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail(path, ": invalid JSON at byte ", e.byte);
  } catch (const json::out_of_range&) {  // a number beyond double/int64 range
    fail(path, ": invalid JSON: a number is out of range");
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  Keys k(j, path);
  ModelConfig c;
  if (!k.has("model_type")) fail(path, ": missing key 'model_type' (supported: ", kSupported, ")");
  c.model_type = k.string_or("model_type", "");
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2" && c.model_type != "qwen3")
    fail(path, ": model_type ", quote(c.model_type), " is not supported (supported: ", kSupported, ")");

  c.vocab_size = k.integer("vocab_size");
  c.hidden_size = k.integer("hidden_size");
  c.intermediate_size = k.integer("intermediate_size");
  c.num_hidden_layers = static_cast<int>(k.integer("num_hidden_layers"));
  c.num_attention_heads = static_cast<int>(k.integer("num_attention_heads"));
  k.positive("vocab_size", c.vocab_size);
  k.positive("hidden_size", c.hidden_size);
  k.positive("intermediate_size", c.intermediate_size);
  k.positive("num_hidden_layers", c.num_hidden_layers);
  k.positive("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = static_cast<int>(k.integer_or("num_key_value_heads", c.num_attention_heads));
  k.positive("num_key_value_heads", c.num_key_value_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(path, ": num_attention_heads ", c.num_attention_heads, " is not a multiple of num_key_value_heads ",
         c.num_key_value_heads);
  if (k.has("head_dim")) {
    c.head_dim = static_cast<int>(k.integer("head_dim"));
    k.positive("head_dim", c.head_dim);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(path, ": hidden_size ", c.hidden_size, " is not divisible by num_attention_heads ", c.num_attention_heads,
           " (and no head_dim is given)");
    c.head_dim = static_cast<int>(c.hidden_size / c.num_attention_heads);
  }
  if (c.head_dim % 2 != 0) fail(path, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  c.max_position_embeddings = k.integer_or("max_position_embeddings", 2048);
  k.positive("max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = k.number_or("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) fail(path, ": rms_norm_eps ", c.rms_norm_eps, " must be in (0, 1)");
  c.rope_theta = k.number_or("rope_theta", 10000.0);
  if (!(c.rope_theta > 1)) fail(path, ": rope_theta ", c.rope_theta, " must be > 1");
  c.tie_word_embeddings = k.boolean_or("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases; others declare them (Llama: on q/k/v/o).
  c.attention_bias = c.model_type == "qwen2" ? true : k.boolean_or("attention_bias", false);
  c.qk_norm = c.model_type == "qwen3";
  const std::string act = k.string_or("hidden_act", "silu");
  if (act != "silu") fail(path, ": hidden_act ", quote(act), " is not supported (expected 'silu')");
  if (k.boolean_or("mlp_bias", false)) fail(path, ": mlp_bias = true is not supported");
  if (c.model_type == "mistral" || (c.model_type == "qwen2" && k.boolean_or("use_sliding_window", false)) ||
      (c.model_type == "qwen3" && k.boolean_or("use_sliding_window", false))) {
    if (k.has("sliding_window")) {
      c.sliding_window = k.integer("sliding_window");
      k.positive("sliding_window", *c.sliding_window);
    }
  }
  c.torch_dtype = k.string_or("torch_dtype", "");

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) fail(path, ": rope_scaling must be an object");
    Keys r(rs, path);
    RopeScaling s;
    s.type = r.string_or("rope_type", r.string_or("type", ""));
    if (s.type == "llama3") {
      s.factor = r.number_or("factor", 0);
      s.low_freq_factor = r.number_or("low_freq_factor", 1.0);
      s.high_freq_factor = r.number_or("high_freq_factor", 4.0);
      s.original_max_position_embeddings = r.integer_or("original_max_position_embeddings", 8192);
      if (!(s.factor > 0)) fail(path, ": rope_scaling.factor must be > 0");
      if (!(s.high_freq_factor > s.low_freq_factor))
        fail(path, ": rope_scaling.high_freq_factor must exceed low_freq_factor");
      c.rope_scaling = s;
    } else if (s.type == "linear") {
      s.factor = r.number_or("factor", 0);
      if (!(s.factor > 0)) fail(path, ": rope_scaling.factor must be > 0");
      c.rope_scaling = s;
    } else if (s.type != "default") {
      fail(path, ": rope_scaling type ", quote(s.type), " is not supported (supported: llama3, linear, default)");
    }
  }
  if (k.has("bos_token_id")) c.bos_token_id = static_cast<int32_t>(k.integer("bos_token_id"));
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int32_t>());
    else if (e.is_array()) {
      for (const auto& v : e) {
        if (!v.is_number_integer()) fail(path, ": eos_token_id entries must be integers");
        c.eos_token_ids.push_back(v.get<int32_t>());
      }
    } else {
      fail(path, ": eos_token_id must be an integer or a list of integers");
    }
  }
  return c;
}

ModelConfig read_model_config(const std::string& path) { return parse_model_config(read_file(path), path); }

std::string model_config_to_json(const ModelConfig& c) {
  json j;
  const bool qwen = c.model_type == "qwen2" || c.model_type == "qwen3";
  j["architectures"] = {c.model_type == "llama"     ? "LlamaForCausalLM"
                        : c.model_type == "mistral" ? "MistralForCausalLM"
                        : c.model_type == "qwen2"   ? "Qwen2ForCausalLM"
                                                    : "Qwen3ForCausalLM"};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (!qwen) j["attention_bias"] = c.attention_bias;
  if (c.rope_scaling) {
    const auto& s = *c.rope_scaling;
    if (s.type == "llama3")
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", s.factor},
                           {"low_freq_factor", s.low_freq_factor},
                           {"high_freq_factor", s.high_freq_factor},
                           {"original_max_position_embeddings", s.original_max_position_embeddings}};
    else
      j["rope_scaling"] = {{"rope_type", s.type}, {"factor", s.factor}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (c.sliding_window) {
    j["sliding_window"] = *c.sliding_window;
    if (qwen) j["use_sliding_window"] = true;
  } else if (qwen) {
    j["use_sliding_window"] = false;
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  return j.dump(2);
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    // As transformers: 1 / base ** (arange(0, d, 2).float() / d), computed in float32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), expo);
  }
  if (c.rope_scaling && c.rope_scaling->type == "linear") {
    for (auto& f : inv) f = static_cast<float>(f / c.rope_scaling->factor);
  } else if (c.rope_scaling && c.rope_scaling->type == "llama3") {
    const auto& s = *c.rope_scaling;
    const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
    const double low_wavelen = old_ctx / s.low_freq_factor;
    const double high_wavelen = old_ctx / s.high_freq_factor;
    for (auto& f : inv) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen < high_wavelen) continue;  // high frequency: unchanged
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / s.factor);
      } else {
        const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = static_cast<float>((1 - smooth) * f / s.factor + smooth * f);
      }
    }
  }
  return inv;
}

}  // namespace qs
