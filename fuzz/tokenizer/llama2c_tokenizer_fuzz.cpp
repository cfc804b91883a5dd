// Fuzz target: arbitrary bytes as a llama2.c tokenizer.bin. Loading either succeeds or throws
// qs::Error; a tokenizer that loads must encode, decode and export without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<qs::Tokenizer> tok;
  try {
    tok = qs::Tokenizer::from_llama2c_bytes(bytes, "fuzz/tokenizer.bin");
  } catch (const qs::Error&) {
    return 0;
  }
  std::vector<int32_t> ids = tok->encode("Once upon a time, naïve 東京 🙂 \n\n  <s></s>", true);
  tok->decode(ids, true);
  tok->decode(ids, false);
  nlohmann::json exported = tok->to_hf_json();
  auto again = qs::Tokenizer::from_hf_json_text(exported.dump(), tok->to_hf_config_json().dump(), "fuzz/exported.json");
  again->encode("Once upon a time", true);
  return 0;
}
