// libFuzzer: arbitrary bytes as config.json. A config that parses must describe a model whose
// shapes are consistent (the invariants the loader relies on).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qs::ModelConfig c = qs::parse_model_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (c.num_attention_heads < 1 || c.num_key_value_heads < 1 || c.head_dim < 2 || c.head_dim % 2 ||
        c.num_attention_heads % c.num_key_value_heads || c.hidden_size < 1 || c.vocab_size < 1)
      std::abort();
    (void)qs::rope_inv_freq(c);
    (void)qs::model_config_to_json(c);
  } catch (const qs::Error&) {
  }
  return 0;
}
